"""Local state: private permissions, and damaged files reported (never replaced)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import fullchain
from fullchain.backends import open_chain
from fullchain.demo import run_demo
from fullchain.deployments import load_deployment
from fullchain.errors import ChainDamaged, ConfigError
from fullchain.transactions import Transactor

from .conftest import Chain, run_cli

PW = "local-state-pw"


def test_everything_under_a_new_home_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Directories 0700 and files 0600 (keys, chain DB and its WAL, blocks, pins, journal, the
    demo's plaintext sample), whatever the umask."""
    monkeypatch.setenv("FULLCHAIN_PASSWORD", PW)
    old = os.umask(0o022)
    try:
        home = tmp_path / "new" / "home"
        run_demo(home)
    finally:
        os.umask(old)
    seen = {"dirs": 0, "files": 0}
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            seen["dirs"] += 1
            assert mode == 0o700, f"directory {path} is {oct(mode)}"
        else:
            seen["files"] += 1
            assert mode == 0o600, f"file {path} is {oct(mode)}"
    names = {p.name for p in home.rglob("*")}
    assert {"chain.sqlite", "keystore.json", "hpke-key.json", "dm.csv"} <= names
    assert seen["files"] > 20  # blocks, pins, profiles, deployment: the walk saw real state


def _fresh_chain(home: Path) -> Path:
    connection = open_chain("embedded", home)
    assert connection.w3.eth.block_number == 0
    connection.w3.provider._backend._disk_db.close()
    return home / "chain" / "chain.sqlite"


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_damaged_chain_db_is_reported_and_kept(tmp_path: Path, damage: str) -> None:
    db = _fresh_chain(tmp_path)
    original = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 200)
    elif damage == "empty":
        db.write_bytes(b"")
    else:
        db.write_bytes(original[: len(original) // 3])
    for sidecar in ("chain.sqlite-wal", "chain.sqlite-shm"):
        (db.parent / sidecar).unlink(missing_ok=True)
    before = db.read_bytes()
    with pytest.raises(ChainDamaged, match="damaged") as info:
        connection = open_chain("embedded", tmp_path)
        connection.w3.eth.get_block("latest")  # a page damaged further in shows on first read
    assert str(db) in str(info.value) and "backup" in info.value.hint
    assert db.read_bytes() == before, "the damaged database was modified"


def test_damaged_chain_db_is_one_line_in_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = _fresh_chain(home)
    db.write_bytes(b"\x00" * 4096)
    env = {"FULLCHAIN_HOME": str(home), "FULLCHAIN_PASSWORD": PW}
    assert run_cli("init", "--profile", "kim", env=env).returncode == 1
    result = run_cli("init", "--profile", "kim", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and str(db) in lines[0]
    assert db.read_bytes() == b"\x00" * 4096


def test_corrupt_deployment_record_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FULLCHAIN_PASSWORD", PW)
    fullchain.init("lena", home=tmp_path)
    fc = fullchain.connect("lena", home=tmp_path)
    deployment = fc.deploy([fullchain.Founder(fc.address, fullchain.Role.GOVERNOR,
                                              bytes.fromhex(fc.profile.hpke_public_key[2:]))], threshold=1)
    record = next((tmp_path / "deployments").glob("*.json"))
    record.write_text('{"chain_id": ')
    with pytest.raises(ConfigError, match="malformed") as info:
        load_deployment(tmp_path, deployment.chain_id, deployment.genesis_hash)
    assert str(record) in str(info.value)
    assert record.read_text() == '{"chain_id": '


def test_a_stale_nonce_is_resynchronised_on_both_backends(chain: Chain) -> None:
    """Two processes on one account: the second one's cached nonce is stale after the first
    sent; the node refuses it (py-evm: "Invalid transaction nonce: Expected N, but got M";
    anvil: "nonce too low") and the transactor asks the node again and sends."""
    acct, first = chain.account()
    second = Transactor(chain.w3, lambda: acct, acct.address)
    second.transfer(acct.address, 0)  # caches its nonce
    first.transfer(acct.address, 0)
    first.transfer(acct.address, 0)  # the node is now two ahead of `second`'s cache
    receipt = second.transfer(acct.address, 0)
    assert receipt["status"] == 1
    assert chain.w3.eth.get_transaction_count(acct.address) == 4
