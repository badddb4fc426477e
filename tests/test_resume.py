"""A registration killed between upload and anchoring is finished by running the same command
again: no second upload, exactly one registered version. Uses a real anvil node whose mining is
paused, so the CLI is deterministically stuck after sending its transaction when it is killed."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

import fullchain
from fullchain.backends.rpc import open_rpc
from fullchain.contracts import DATASET_REGISTRY, bind
from fullchain.journal import Journal, JournalEntry
from fullchain.metadata import build_metadata
from fullchain.models import Registration, Role
from fullchain.storage import cid as cids
from fullchain.transactions import Transactor
from web3.middleware import Web3Middleware

from .conftest import ANVIL_MNEMONIC, AnvilNode, fullchain_cli, run_cli

ENV = {"FULLCHAIN_PASSWORD": "resume-tests"}


@pytest.fixture
def node() -> AnvilNode:
    n = AnvilNode()
    yield n
    n.stop()


@pytest.mark.parametrize("fate", ["dropped", "mined"])
def test_kill_between_upload_and_anchor_then_rerun(home: Path, node: AnvilNode, tmp_path: Path, fate: str) -> None:
    w3 = open_rpc(node.url)
    out = run_cli("init", "--profile", "hospital", "--chain", node.url, "--json", env=ENV)
    assert out.returncode == 0, out.stderr
    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC)
    Transactor(w3, lambda: funder, funder.address).transfer(json.loads(out.stdout)["address"], 10**18)
    deployed = run_cli("-p", "hospital", "chain", "deploy", "--founder", "hospital:hospital,governor", "--json", env=ENV)
    assert deployed.returncode == 0, deployed.stderr
    registry = bind(w3, DATASET_REGISTRY, json.loads(deployed.stdout)["contracts"][DATASET_REGISTRY])

    data = tmp_path / "trial.bin"
    data.write_bytes(os.urandom(3_000_000))
    command = ["-p", "hospital", "dataset", "register", str(data), "--title", "Trial", "--json"]
    w3.provider.make_request("evm_setAutomine", [False])
    proc = subprocess.Popen([*fullchain_cli(), *command], env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while int(w3.provider.make_request("txpool_status", [])["result"]["pending"], 16) == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the CLI never sent its transaction"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # uploaded and sent, not yet anchored
    proc.wait()
    if fate == "dropped":
        w3.provider.make_request("anvil_dropAllTransactions", [])
    else:
        w3.provider.make_request("evm_mine", [])
    w3.provider.make_request("evm_setAutomine", [True])

    blocks_before = len(list((home / "blocks").rglob("*")))
    again = run_cli(*command, env=ENV)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["resumed"] is True and result["uploaded"] is False
    assert len(list((home / "blocks").rglob("*"))) == blocks_before  # nothing stored twice
    assert registry.functions.datasetCount().call() == 1
    assert registry.functions.dataset(1).call()[2] == 1  # exactly one version
    fetched = tmp_path / "back.bin"
    assert run_cli("-p", "hospital", "dataset", "fetch", "1", "-o", str(fetched), env=ENV).returncode == 0
    assert fetched.read_bytes() == data.read_bytes()


# ---- the journal through the SDK, on the embedded chain ----

PW = "resume-sdk-tests"


@pytest.fixture
def world(home: Path) -> tuple[fullchain.Fullchain, fullchain.Fullchain]:
    """hospital (governor) and pharma (member) on a fresh embedded chain."""
    for name in ("hospital", "pharma"):
        fullchain.init(name, password=PW)
    hospital, pharma = (fullchain.connect(name, password=PW) for name in ("hospital", "pharma"))
    key = lambda fc: bytes.fromhex(fc.profile.hpke_public_key[2:])  # noqa: E731
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA, key(pharma))], threshold=1)
    return hospital, pharma


class Interrupted(Exception):
    """Stands for Ctrl-C or a crash at a given phase (raised from the progress callback)."""


def interrupt_at(phase: str):  # noqa: ANN201
    def progress(p: str, n: int, total: int) -> None:
        if p == phase:
            raise Interrupted(phase)
    return progress


def interrupted_entry(fc: fullchain.Fullchain, src: Path, meta) -> tuple[str, JournalEntry]:  # noqa: ANN001
    with pytest.raises(Interrupted):
        fc.datasets.register(src, meta, progress=interrupt_at("encrypting"))
    [(key, entry)] = Journal(fc.home / "journal" / fc.profile.name).entries()
    return key, entry


def test_the_journal_holds_nothing_that_confirms_a_guess_of_the_file(world, tmp_path: Path) -> None:  # noqa: ANN001
    """Item 7.11: neither the plaintext's SHA-256 nor any unkeyed hash of it (the old entry name
    was one) is left in the journal by an interrupted registration; the rerun still resumes."""
    hospital, _ = world
    src = tmp_path / "trial.bin"
    src.write_bytes(os.urandom(600_000))
    meta = build_metadata(title="Trial")
    interrupted_entry(hospital, src, meta)
    digest = hashlib.sha256(src.read_bytes()).digest()
    unkeyed_name = hashlib.sha256(digest + hashlib.sha256(meta.to_bytes()).digest() + b"None|").hexdigest()[:32]
    journal = hospital.home / "journal" / "hospital"
    stored = b"".join(p.name.encode() + p.read_bytes() for p in journal.iterdir() if p.is_file())
    for leak in (digest.hex().encode(), digest, unkeyed_name.encode()):
        assert leak not in stored

    again = fullchain.connect("hospital", password=PW).datasets.register(src, meta)
    assert (again.dataset_id, again.resumed) == (1, True)
    assert hospital.datasets.contract.functions.datasetCount().call() == 1
    assert not list(journal.glob("*.json"))


def test_an_entry_written_by_an_older_version_is_resumed_and_rewritten(world, tmp_path: Path) -> None:  # noqa: ANN001
    """Old entries (named by, and holding, the plain digest; no recorded block) still resume,
    and are rewritten without the digest; reading them never crashes."""
    hospital, _ = world
    src = tmp_path / "trial.bin"
    src.write_bytes(os.urandom(1000))
    meta = build_metadata(title="Trial")
    key, entry = interrupted_entry(hospital, src, meta)
    journal = hospital.home / "journal" / "hospital"
    digest = hashlib.sha256(src.read_bytes()).digest()
    meta_digest = hashlib.sha256(meta.to_bytes()).digest()
    old = json.loads(entry.model_dump_json())
    del old["from_block"]
    old.update(plaintext_sha256=digest.hex(), metadata_sha256=meta_digest.hex())
    old_name = hashlib.sha256(digest + meta_digest + b"None|").hexdigest()[:32]
    (journal / f"{key}.json").unlink()
    (journal / f"{old_name}.json").write_text(json.dumps(old))
    assert [e.commitment for _, e in Journal(journal).entries()] == [entry.commitment]

    again = hospital.datasets.register(src, meta)
    assert (again.dataset_id, again.resumed, again.commitment) == (1, True, entry.commitment)
    assert not list(journal.glob("*.json"))
    assert digest.hex().encode() not in b"".join(p.read_bytes() for p in journal.iterdir() if p.is_file())


def test_a_copy_of_our_commitment_by_another_member_is_not_taken_as_ours(world, tmp_path: Path) -> None:  # noqa: ANN001
    """Item 7.15: another member front-runs our interrupted registration with the same
    commitment; the rerun registers our own dataset instead of claiming theirs."""
    hospital, pharma = world
    src = tmp_path / "trial.bin"
    src.write_bytes(os.urandom(1000))
    meta = build_metadata(title="Trial")
    _, entry = interrupted_entry(hospital, src, meta)
    copy = (bytes.fromhex(entry.commitment[2:]), b"\1" * 32, b"\2" * 32, 1000, cids.RAW, cids.RAW, 0, 1, b"\0" * 32)
    pharma.transactor.call_function(pharma.datasets.contract.functions.registerDataset(copy, []),
                                    contract=DATASET_REGISTRY)
    assert pharma.datasets.owner_of(1) == pharma.address

    again = hospital.datasets.register(src, meta)
    assert again.dataset_id == 2 and hospital.datasets.owner_of(2) == hospital.address
    hospital.datasets.fetch(2, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_only_a_rerun_looks_for_its_anchor_and_only_from_its_recorded_block(world, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 8.4: a first registration asks the node for no logs at all; a rerun asks once, from
    the block recorded in its entry, not from block 0 (a cost independent of chain length)."""
    hospital, _ = world
    for _ in range(3):
        hospital.transactor.transfer(hospital.address, 0)
    calls: list[tuple[str, object]] = []

    class Recorder(Web3Middleware):  # observes the requests; the node still answers them
        def request_processor(self, method, params):  # noqa: ANN001, ANN202
            calls.append((method, params))
            return method, params

    hospital.w3.middleware_onion.add(Recorder, "recorder")
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(1000))
    hospital.datasets.register(src, build_metadata(title="a"))
    assert any(m.startswith("eth_sendRawTransaction") for m, _ in calls)  # the recorder sees the requests
    assert [m for m, _ in calls if m == "eth_getLogs"] == []

    _, entry = interrupted_entry(hospital, src, build_metadata(title="b"))
    assert entry.from_block is not None and entry.from_block >= 4
    for _ in range(3):
        hospital.transactor.transfer(hospital.address, 0)
    calls.clear()
    assert hospital.datasets.register(src, build_metadata(title="b")).resumed
    [params] = [p for m, p in calls if m == "eth_getLogs"]
    assert int(params[0]["fromBlock"], 16) == entry.from_block


def test_two_identical_registrations_at_once_register_the_file_once(world, tmp_path: Path) -> None:  # noqa: ANN001
    """Item 7.20: the second run waits for the first (held here mid-upload until the second is
    seen waiting on the entry's lock) and takes its result."""
    src = tmp_path / "trial.bin"
    src.write_bytes(os.urandom(2_000_000))
    meta = build_metadata(title="Trial")
    first, second = (fullchain.connect("hospital", password=PW) for _ in range(2))
    results: dict[str, object] = {}
    started = threading.Event()

    def waiting_on_the_journal(thread: threading.Thread) -> bool:
        frame = sys._current_frames().get(thread.ident or -1)
        while frame is not None:
            if frame.f_code.co_name == "lock" and frame.f_locals.get("waited") is True:
                return True
            frame = frame.f_back
        return False

    def hold_until_the_other_waits(phase: str, n: int, total: int) -> None:
        if phase == "encrypting" and not started.is_set():
            started.set()
            give_up = time.monotonic() + 30  # without a lock the other never waits: fail below
            while not waiting_on_the_journal(other) and time.monotonic() < give_up:
                time.sleep(0.01)

    def run(name: str, fc: fullchain.Fullchain, progress) -> None:  # noqa: ANN001
        try:
            results[name] = fc.datasets.register(src, meta, progress=progress)
        except Exception as exc:  # reported by the assertions below
            results[name] = exc

    one = threading.Thread(target=run, args=("first", first, hold_until_the_other_waits))
    other = threading.Thread(target=run, args=("second", second, lambda *a: None))
    one.start()
    started.wait(60)
    other.start()
    one.join(120)
    other.join(120)
    a, b = results["first"], results["second"]
    assert isinstance(a, Registration) and isinstance(b, Registration), results
    assert a.dataset_id == b.dataset_id == 1
    assert first.datasets.contract.functions.datasetCount().call() == 1
    assert not list((first.home / "journal" / "hospital").glob("*.json"))
