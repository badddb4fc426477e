"""Reading without the chain library: a view is opened only when the index provably holds the
chain up to its head, and then shows exactly what a synced index shows; the keystore is opened
by our own v3 decryption exactly as eth-account opens it."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

import fullchain
from fullchain.backends.rpc import open_rpc
from fullchain.duo import parse_purpose
from fullchain.errors import WrongPassword
from fullchain.keys import address_of, decrypt_keystore, load_signing_key
from fullchain.metadata import build_metadata
from fullchain.models import Role
from fullchain.transactions import Transactor
from fullchain.view import open_view

from .conftest import ANVIL_MNEMONIC, AnvilNode

PW = "view-tests"
DAY = 24 * 3600


def hpke_key(fc: fullchain.Fullchain) -> bytes:
    return bytes.fromhex(fc.profile.hpke_public_key[2:])


def register(fc: fullchain.Fullchain, files: Path, title: str, tier: str) -> int:
    path = files / f"{title}.bin"
    path.write_bytes(os.urandom(80))
    return fc.datasets.register(path, build_metadata(title=title, standard="sdtm", tier=tier)).dataset_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("view-world")
    home, files = root / "home", root / "files"
    files.mkdir()
    for name in ("hospital", "pharma"):
        fullchain.init(name, home=home, password=PW)
    hospital = fullchain.connect("hospital", home=home, password=PW)
    pharma = fullchain.connect("pharma", home=home, password=PW)
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, hpke_key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA | Role.GOVERNOR, hpke_key(pharma))], threshold=1)
    register(hospital, files, "open trial", "public")
    secret = register(hospital, files, "sealed trial", "restricted")
    register(pharma, files, "assay", "consortium")
    lic = pharma.licensing.request(secret, parse_purpose("DUO:0000042"), term_seconds=30 * DAY)
    hospital.licensing.grant(lic)
    hospital.read_index()
    return {"home": home, "files": files, "hospital": hospital, "pharma": pharma}


def test_a_fresh_index_gives_a_view_equal_to_the_synced_one(world: dict[str, Any]) -> None:
    hospital, pharma = world["hospital"], world["pharma"]
    hospital.read_index()
    view = open_view("hospital", home=world["home"], password=PW)
    assert view is not None
    synced = hospital.view()
    assert view.datasets() == synced.datasets() == hospital.datasets.list()
    # Titles of encrypted metadata are decrypted for whoever holds a key bundle, and only then.
    assert [e.info.title for e in view.datasets()] == ["open trial", "sealed trial", None]
    theirs = open_view("pharma", home=world["home"], password=PW)
    assert theirs is not None
    assert [e.info.title for e in theirs.datasets()] == ["open trial", "sealed trial", "assay"]
    assert view.index.members() == synced.index.members()
    assert view.index.licenses() == synced.index.licenses() == pharma.licensing.list()
    assert view.count_datasets(owner=hospital.address) == 2
    assert view.local_names() == {hospital.address: "hospital", pharma.address: "pharma"}


def test_no_view_while_the_index_is_behind_the_chain(world: dict[str, Any]) -> None:
    hospital = world["hospital"]
    hospital.read_index()
    assert open_view("hospital", home=world["home"], password=PW) is not None
    new = register(hospital, world["files"], f"late {os.urandom(2).hex()}", "public")
    assert open_view("hospital", home=world["home"], password=PW) is None  # a block the index lacks
    hospital.read_index()
    view = open_view("hospital", home=world["home"], password=PW)
    assert view is not None and view.index.dataset(new) is not None


def test_no_view_when_the_indexed_head_has_another_hash(world: dict[str, Any]) -> None:
    """Same height, different block: what a reorg looks like to the probe."""
    hospital = world["hospital"]
    index = hospital.read_index()
    cursor = index.cursor
    conn = sqlite3.connect(index.path)
    try:
        (real,) = conn.execute("SELECT hash FROM blocks WHERE number = ?", (cursor,)).fetchone()
        with conn:
            conn.execute("UPDATE blocks SET hash = ? WHERE number = ?", ("0x" + "ab" * 32, cursor))
        assert open_view("hospital", home=world["home"], password=PW) is None
    finally:
        with conn:
            conn.execute("UPDATE blocks SET hash = ? WHERE number = ?", (real, cursor))
        conn.close()
    assert open_view("hospital", home=world["home"], password=PW) is not None


def test_no_view_without_an_index_or_a_profile(world: dict[str, Any], tmp_path: Path) -> None:
    assert open_view("nobody", home=world["home"], password=PW) is None
    fullchain.init("lonely", home=tmp_path, password=PW)  # a chain with nothing deployed or indexed
    assert open_view("lonely", home=tmp_path, password=PW) is None


def test_a_view_loads_no_chain_library(world: dict[str, Any]) -> None:
    world["hospital"].read_index()
    script = textwrap.dedent(f"""
        import json, sys
        from fullchain.view import open_view
        view = open_view("hospital", home={str(world["home"])!r}, password={PW!r})
        titles = [e.info.title for e in view.datasets()]
        members = len(view.index.members())
        heavy = sorted(m for m in ("web3", "eth_account", "eth_keyfile", "eth", "eth_tester", "py_ecc")
                       if m in sys.modules)
        print(json.dumps({{"titles": titles, "members": members, "heavy": heavy}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(done.stdout)
    assert out["heavy"] == []
    assert out["titles"][:2] == ["open trial", "sealed trial"] and out["members"] == 2


def test_a_wrong_password_leaves_encrypted_titles_unread(world: dict[str, Any]) -> None:
    world["hospital"].read_index()
    view = open_view("hospital", home=world["home"], password="not it")
    assert view is not None
    titles = [e.info.title for e in view.datasets()]
    assert titles[:2] == ["open trial", None]


@pytest.mark.parametrize("kdf", ["scrypt", "pbkdf2"])
def test_keystore_decryption_agrees_with_eth_account(kdf: str) -> None:
    for password in ("pässwörd ✓", "x"):
        account = Account.create()
        keystore = Account.encrypt(account.key, password, kdf=kdf, iterations=2**10 if kdf == "scrypt" else 1000)
        assert decrypt_keystore(keystore, password) == Account.decrypt(keystore, password) == account.key
        assert address_of(account.key) == account.address
        with pytest.raises(ValueError, match="MAC"):
            decrypt_keystore(keystore, password + "!")
        tampered = json.loads(json.dumps(keystore))
        ct = tampered["crypto"]["ciphertext"]
        tampered["crypto"]["ciphertext"] = ct[:-2] + ("00" if ct[-2:] != "00" else "01")
        with pytest.raises(ValueError, match="MAC"):
            decrypt_keystore(tampered, password)


def test_a_wrong_password_is_named_for_the_profile(tmp_path: Path) -> None:
    account = Account.create()
    (tmp_path / "keystore.json").write_text(json.dumps(Account.encrypt(account.key, "right", kdf="pbkdf2",
                                                                       iterations=1000)))
    assert load_signing_key(tmp_path, "right", profile="p") == account.key
    with pytest.raises(WrongPassword, match="profile 'p'"):
        load_signing_key(tmp_path, "wrong", profile="p")


@pytest.mark.anvil
def test_a_node_profile_gets_a_view_only_at_the_head(anvil: AnvilNode, tmp_path: Path) -> None:
    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/5")
    rpc = open_rpc(anvil.url)
    home, files = tmp_path / "home", tmp_path / "files"
    files.mkdir()
    config = fullchain.init("solo", home=home, password=PW, chain=anvil.url)
    Transactor(rpc, lambda: funder, funder.address).transfer(config.address, 10**20)
    solo = fullchain.connect("solo", home=home, password=PW)
    solo.deploy([fullchain.Founder(solo.address, Role.HOSPITAL | Role.GOVERNOR, hpke_key(solo))], threshold=1)
    register(solo, files, "on a node", "restricted")
    solo.read_index()
    view = open_view("solo", home=home, password=PW)
    assert view is not None and [e.info.title for e in view.datasets()] == ["on a node"]
    rpc.provider.make_request("anvil_mine", [hex(1)])
    assert open_view("solo", home=home, password=PW) is None
    solo.read_index()
    assert open_view("solo", home=home, password=PW) is not None


def test_a_second_index_connection_in_one_process_leaves_the_first_working(world: dict[str, Any]) -> None:
    """Opening (and closing) another connection to the same index file must not drop the POSIX
    locks of the one already open: a view and a client share a process."""
    from fullchain.index import EventIndex

    hospital = world["hospital"]
    index = hospital.read_index()
    EventIndex(index.path, contracts=hospital.contracts()).close()
    # Another process reads and leaves: with this process's locks gone it would think itself the
    # last connection, and checkpoint and remove the WAL under the one still open here.
    reader = f"import sqlite3; c = sqlite3.connect({str(index.path)!r}); c.execute('SELECT count(*) FROM meta'); c.close()"
    subprocess.run([sys.executable, "-c", reader], check=True, timeout=60)
    new = register(hospital, world["files"], f"after {os.urandom(2).hex()}", "public")
    assert hospital.read_index().dataset(new) is not None  # a sync writes through the first connection
