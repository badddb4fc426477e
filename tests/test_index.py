"""The event index: what it derives equals what the contracts say; it survives kills, deletion,
reorgs and concurrent syncs; pages and filters equal a full scan.

Real events come from the SDK (profiles, a deployment, datasets, licenses, a proposal) on the
embedded chain, built once per module; the reorg test runs on a real anvil node.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import fullchain
from fullchain.backends.rpc import open_rpc
from fullchain.contracts import DATA_USE_LICENSING
from fullchain.duo import parse_purpose
from fullchain.index import EventIndex, open_index
from fullchain.index._schema import STATE_TABLES
from fullchain.metadata import build_metadata
from fullchain.models import Role
from fullchain.transactions import Transactor

from .conftest import ANVIL_MNEMONIC, AnvilNode

PW = "index-tests"
DAY = 24 * 3600
# Datasets of the world: (owner, title, standard, tier, data use)
CATALOG = [
    ("hospital", "Trial A", "sdtm", "public", ["DUO:0000042"]),
    ("hospital", "Trial B", "omop", "restricted", []),
    ("pharma", "Assay C", "adam", "consortium", []),
    ("hospital", "Registry D", "omop", "public", ["DUO:0000004"]),
    ("pharma", "Trial E", "sdtm", "public", ["DUO:0000042", "DUO:0000007"]),
    ("cro", "Cohort F", "fhir", "restricted", []),
    ("hospital", "Trial G", "sdtm", "consortium", []),
    ("hospital", "Withdrawn H", "other", "public", ["DUO:0000042"]),  # its only version is erased
]
ERASED = {2, 8}  # datasets whose latest version is erased


def hpke_key(fc: fullchain.Fullchain) -> bytes:
    return bytes.fromhex(fc.profile.hpke_public_key[2:])


def build_world(home: Path, files: Path, chain: str = "embedded", fund: Any = None) -> dict[str, fullchain.Fullchain]:
    """Three members, seven datasets (versions, lineage, an erasure), licenses in every state,
    a cancelled proposal and an admission: every kind of event the views need."""
    for name in ("hospital", "pharma", "cro"):
        config = fullchain.init(name, home=home, password=PW, chain=chain)
        if fund is not None:
            fund(config.address)
    fc = {name: fullchain.connect(name, home=home, password=PW) for name in ("hospital", "pharma", "cro")}
    hospital, pharma, cro = fc["hospital"], fc["pharma"], fc["cro"]
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, hpke_key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA | Role.GOVERNOR, hpke_key(pharma))], threshold=1)
    pid = hospital.consortium.propose_admit(cro.address, Role.CRO, hpke_key(cro))
    hospital.consortium.execute(pid)
    cancelled = pharma.consortium.propose_threshold(2)
    pharma.consortium.cancel(cancelled)
    for i, (owner, title, standard, tier, data_use) in enumerate(CATALOG, start=1):
        path = files / f"d{i}.bin"
        path.write_bytes(os.urandom(64 + i))
        derived = [1] if title == "Assay C" else []
        fc[owner].datasets.register(path, build_metadata(title=title, standard=standard, tier=tier, data_use=data_use),
                                    derived_from=derived)
    (files / "d1v2.bin").write_bytes(os.urandom(99))
    hospital.datasets.add_version(1, files / "d1v2.bin", build_metadata(title="Trial A", standard="sdtm", tier="public",
                                                                         data_use=["DUO:0000042"]))
    granted = pharma.licensing.request(1, parse_purpose("DUO:0000006"), term_seconds=30 * DAY)
    hospital.licensing.grant(granted)
    hospital.licensing.renew(granted, term_seconds=20 * DAY)
    rejected = cro.licensing.request(1, parse_purpose("DUO:0000042"), term_seconds=10 * DAY)
    hospital.licensing.reject(rejected)
    revoked = cro.licensing.request(2, parse_purpose("DUO:0000006"), term_seconds=10 * DAY)
    hospital.licensing.grant(revoked)
    hospital.licensing.revoke(revoked)
    hospital.licensing.request(3, parse_purpose("DUO:0000042"), term_seconds=5 * DAY)  # left pending
    cro_grant = cro.licensing.request(4, parse_purpose("DUO:0000004"), term_seconds=7 * DAY)
    hospital.licensing.grant(cro_grant)
    pharma.datasets.fetch(1, files / "fetched.bin")  # AccessRecorded
    hospital.datasets.erase(2, 1)
    hospital.datasets.erase(8, 1)
    return fc


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived row of an index (not its bookkeeping), for comparing two indexes."""
    conn = sqlite3.connect(path)
    try:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in (*STATE_TABLES, "events", "public_metadata")}
    finally:
        conn.close()


def fresh_index(fc: fullchain.Fullchain, path: Path) -> EventIndex:
    index = open_index(fc)
    copy = EventIndex(path, w3=fc.w3, contracts=fc.contracts(), store=lambda: fc.store)
    copy.sync()
    index.close()
    return copy


_SHARED: dict[str, dict[str, Any]] = {}


def shared_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The world on the embedded chain, built once per test process (this module and
    test_embedded_logs read it; neither changes it)."""
    if "embedded" not in _SHARED:
        root = tmp_path_factory.mktemp("index-world")
        home, files = root / "home", root / "files"
        files.mkdir()
        fc = build_world(home, files)
        _SHARED["embedded"] = {"home": home, "files": files, "contracts": fc["hospital"].contracts(), **fc}
    return _SHARED["embedded"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def synced(world: dict[str, Any]) -> EventIndex:
    index = open_index(world["hospital"])
    index.sync()
    return index


# ---- the index says what the contracts say ----

def test_datasets_versions_match_the_chain(world: dict[str, Any], synced: EventIndex) -> None:
    hospital = world["hospital"]
    entries = synced.datasets()
    assert [e.info.dataset_id for e in entries] == list(range(1, len(CATALOG) + 1))
    for entry in entries:
        on_chain = hospital.datasets.get(entry.info.dataset_id)
        # Titles come from public metadata only; the rest is the contract's record.
        assert entry.info.model_dump(exclude={"title"}) == on_chain.model_dump(exclude={"title"})
        tier = CATALOG[entry.info.dataset_id - 1][3]
        assert entry.info.title == (on_chain.title if tier == "public" else None)
        assert (entry.info.title is None) == (tier != "public" or entry.info.dataset_id in ERASED)
        versions = hospital.datasets.versions(entry.info.dataset_id)
        assert synced.versions(entry.info.dataset_id) == versions
        assert entry.latest == versions[-1]
        assert entry.erased_versions == [v.version for v in versions if v.erased]
    assert synced.dataset(2).erased_versions == [1]
    assert synced.dataset(3).info.derived_from == [1]
    assert synced.dataset(99) is None


def test_licenses_members_proposals_match_the_chain(world: dict[str, Any], synced: EventIndex) -> None:
    hospital = world["hospital"]
    assert synced.licenses() == hospital.licensing.all()
    assert {lic.status for lic in synced.licenses()} == {"granted", "rejected", "revoked", "requested"}
    for lic in hospital.licensing.all():
        assert synced.license(lic.id) == lic
    on_chain = hospital.consortium.members()
    # Admission events carry the HPKE key and proposals their payload: nothing is left out.
    assert [m.model_dump() for m in synced.members()] == [m.model_dump() for m in on_chain]
    assert [p.model_dump() for p in synced.proposals()] == [p.model_dump() for p in hospital.consortium.proposals()]
    assert synced.threshold() == hospital.consortium.threshold()
    assert synced.governor_count() == hospital.consortium.governor_count()
    assert synced.allowed_accounts() == sorted(hospital.consortium.allowed_accounts())


def test_history_of_a_dataset_in_chain_order(synced: EventIndex) -> None:
    names = [e.name for e in synced.events(dataset_id=1)]
    assert names[:2] == ["DatasetRegistered", "VersionRegistered"]
    for name in ("LicenseRequested", "LicenseGranted", "LicenseRenewed", "LicenseRejected", "AccessRecorded"):
        assert name in names  # license events are part of the dataset's history
    positions = [(e.block, e.tx_index, e.log_index) for e in synced.events(dataset_id=1)]
    assert positions == sorted(positions)
    assert [e.name for e in synced.events(dataset_id=2)][-1] == "VersionErased"


def test_index_file_is_private(world: dict[str, Any], synced: EventIndex) -> None:
    assert stat.S_IMODE(synced.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(synced.path.parent.stat().st_mode) == 0o700
    assert synced.path.parent == world["home"] / "index"
    for extra in ("-wal", "-shm", ".lock"):
        other = Path(str(synced.path) + extra)
        if other.exists():
            assert stat.S_IMODE(other.stat().st_mode) == 0o600, extra


# ---- pages and filters are exactly a full scan ----

DATASET_FILTERS: list[dict[str, Any]] = [
    {}, {"standard": "sdtm"}, {"tier": "public"}, {"standard": "omop", "tier": "public"},
    {"data_use": "DUO:0000042"}, {"data_use": "GRU"}, {"standard": "fhir", "tier": "public"},
]


@pytest.mark.parametrize("filters", DATASET_FILTERS)
@pytest.mark.parametrize("size", [1, 2, 3])
def test_dataset_pages_equal_a_full_scan(world: dict[str, Any], synced: EventIndex, filters: dict[str, Any],
                                         size: int) -> None:
    for who in (None, "hospital", "pharma", "cro"):
        query = dict(filters, **({"owner": world[who].address} if who else {}))
        everything = synced.datasets()
        expected = [e for e in everything if _dataset_matches(e, query, synced)]
        pages, offset = [], 0
        while page := synced.datasets(limit=size, offset=offset, **query):
            assert len(page) <= size
            pages += page
            offset += size
        assert pages == expected == synced.datasets(**query)
        assert synced.count_datasets(**query) == len(expected)
        by_key, after = [], None  # keyset paging gives the same
        while page := synced.datasets(limit=size, after_id=after, **query):
            by_key += page
            after = page[-1].info.dataset_id
        assert by_key == expected


def _dataset_matches(entry: Any, query: dict[str, Any], index: EventIndex) -> bool:
    _, _, standard, tier, data_use = CATALOG[entry.info.dataset_id - 1]
    code = {"GRU": "DUO:0000042"}.get(query.get("data_use", ""), query.get("data_use"))
    return (("owner" not in query or entry.info.owner == query["owner"])
            and ("standard" not in query or entry.latest.standard == query["standard"] == standard)
            and ("tier" not in query or entry.latest.tier == query["tier"] == tier)
            and ("data_use" not in query or (tier == "public" and code in data_use
                                             and entry.info.dataset_id not in ERASED)))


def test_readable_by_lists_own_and_licensed_datasets(world: dict[str, Any], synced: EventIndex) -> None:
    cro = world["cro"]
    ids = [e.info.dataset_id for e in synced.datasets(readable_by=cro.address)]
    assert ids == [4, 6]  # licensed dataset 4 (granted), own dataset 6; 2 was revoked, 1 rejected


@pytest.mark.parametrize("size", [1, 2, 4])
def test_license_pages_and_filters_equal_a_full_scan(world: dict[str, Any], synced: EventIndex, size: int) -> None:
    everything = synced.licenses()
    owners = {e.info.dataset_id: e.info.owner for e in synced.datasets()}
    queries: list[dict[str, Any]] = [{}]
    queries += [{"status": s} for s in ("requested", "granted", "rejected", "revoked", "expired")]
    queries += [{"dataset_id": d} for d in (1, 2, 3, 4, 5)]
    queries += [{"licensee": world[w].address} for w in ("hospital", "pharma", "cro")]
    queries += [{"owner": world[w].address} for w in ("hospital", "pharma", "cro")]
    queries += [{"owner": world["hospital"].address, "status": "granted"}, {"dataset_id": 1, "licensee": world["cro"].address}]
    for query in queries:
        expected = [lic for lic in everything
                    if ("status" not in query or lic.status == query["status"])
                    and ("dataset_id" not in query or lic.dataset_id == query["dataset_id"])
                    and ("licensee" not in query or lic.requester == query["licensee"])
                    and ("owner" not in query or owners[lic.dataset_id] == query["owner"])]
        pages, offset = [], 0
        while page := synced.licenses(limit=size, offset=offset, **query):
            pages += page
            offset += size
        assert pages == expected, query
        assert synced.count_licenses(**query) == len(expected)


def test_an_expired_grant_reads_as_expired(synced: EventIndex) -> None:
    granted = synced.licenses(status="granted")
    later = int(max(lic.expires_at for lic in granted).timestamp()) + 1
    assert synced.licenses(status="granted", now=later) == []
    assert [lic.id for lic in synced.licenses(status="expired", now=later)] == [lic.id for lic in granted]
    assert not any(lic.valid for lic in synced.licenses(now=later))


def test_bad_filters_are_clear_errors(synced: EventIndex) -> None:
    with pytest.raises(fullchain.InvalidInput, match="unknown standard 'cdisc'"):
        synced.datasets(standard="cdisc")
    with pytest.raises(fullchain.InvalidInput, match="unknown license status"):
        synced.licenses(status="valid")
    with pytest.raises(fullchain.InvalidInput, match="unknown DUO code"):
        synced.datasets(data_use="DUO:9999999")


# ---- a cache that survives kills, deletion, concurrency and node limits ----

# Syncs `span` blocks per range (so that a kill lands between ranges, many times over), slowly.
SLOW_SYNC = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import fullchain
    from fullchain.index import EventIndex, _sync
    home, path, pause, span = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    _sync.INITIAL_SPAN = _sync.MAX_SPAN = span
    fc = fullchain.connect("hospital", home=home, password=%r)
    index = EventIndex(path, w3=fc.w3, contracts=fc.contracts(), store=lambda: fc.store)
    def progress(done, target):
        print(done, target, flush=True)
        time.sleep(pause)
    index.sync(progress=progress)
    print("done", flush=True)
""" % PW)


def slow_sync(home: Path, path: Path, pause: float, span: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SLOW_SYNC, str(home), str(path), str(pause), str(span)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """The dump of an index built in one go, to compare every other way of building it with."""
    index = fresh_index(world["hospital"], tmp_path_factory.mktemp("reference") / "index.sqlite")
    index.close()
    return dump(index.path)


def test_fresh_index_equals_the_shared_one(synced: EventIndex, reference: dict[str, Any]) -> None:
    assert dump(synced.path) == reference
    assert len(reference["events"]) > 50 and len(reference["datasets"]) == len(CATALOG)


def test_sync_killed_midway_resumes_to_the_same_index(world: dict[str, Any], reference: dict[str, Any],
                                                      tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    proc = slow_sync(world["home"], path, 0.05)
    assert proc.stdout is not None
    done, target = 0, None
    while target is None or done < target // 2:
        line = proc.stdout.readline()
        assert line and line != "done\n", proc.stderr.read() if proc.stderr else ""
        done, target = map(int, line.split())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    hospital = world["hospital"]
    index = EventIndex(path, w3=hospital.w3, contracts=hospital.contracts(), store=lambda: hospital.store)
    cursor = index.cursor
    assert done <= cursor < target  # stopped midway, at a range boundary
    partial = dump(path)
    assert all(row[0] <= cursor for row in partial["events"])  # nothing beyond the cursor
    assert len(partial["datasets"]) == sum(1 for row in partial["events"] if row[7] == "DatasetRegistered")
    result = index.sync()
    assert result.from_block == cursor + 1
    assert dump(path) == reference
    index.close()


def test_deleted_index_is_rebuilt_identically(world: dict[str, Any], reference: dict[str, Any], tmp_path: Path) -> None:
    hospital = world["hospital"]
    index = fresh_index(hospital, tmp_path / "index.sqlite")
    index.close()
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    index = EventIndex(tmp_path / "index.sqlite", w3=hospital.w3, contracts=hospital.contracts(),
                       store=lambda: hospital.store)
    assert index.datasets() == [] and index.cursor == -1
    index.sync()
    assert dump(index.path) == reference
    assert index.sync().events == 0  # and a second sync finds nothing new
    index.close()


def test_two_processes_syncing_at_once_give_one_index(world: dict[str, Any], reference: dict[str, Any],
                                                      tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    procs = [slow_sync(world["home"], path, 0.01, span=4) for _ in range(2)]
    # Meanwhile a reader only ever sees whole ranges: events never beyond the cursor, and one
    # dataset row per registration event.
    checks = 0
    while any(p.poll() is None for p in procs):
        time.sleep(0.02)
        if not path.exists():
            continue
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.execute("BEGIN")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if {"meta", "events", "datasets"} <= tables:
                cursor = int((conn.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone() or ["-1"])[0])
                assert conn.execute("SELECT count(*) FROM events WHERE block > ?", (cursor,)).fetchone()[0] == 0
                registered = conn.execute("SELECT count(*) FROM events WHERE name = 'DatasetRegistered'").fetchone()[0]
                assert conn.execute("SELECT count(*) FROM datasets").fetchone()[0] == registered
                checks += 1
            conn.execute("COMMIT")
        finally:
            conn.close()
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert checks > 0
    assert dump(path) == reference


class RangeCap:
    """Middleware acting as a node that refuses eth_getLogs over more than `cap` blocks, with
    geth's message, and counts the refusals."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.refused = 0

    def __call__(self, w3: Any) -> Any:
        from web3.middleware.base import Web3Middleware

        cap = self

        class _Cap(Web3Middleware):
            def wrap_make_request(self, make_request: Any) -> Any:
                def request(method: str, params: Any) -> Any:
                    if method == "eth_getLogs":
                        low, high = (_number(params[0][k]) for k in ("fromBlock", "toBlock"))
                        if high - low + 1 > cap.cap:
                            cap.refused += 1
                            return {"jsonrpc": "2.0", "id": 0,
                                    "error": {"code": -32005, "message": f"query exceeds max block range {cap.cap}"}}
                    return make_request(method, params)
                return request

        return _Cap(w3)


def _number(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def test_ranges_shrink_when_the_node_refuses_them(world: dict[str, Any], reference: dict[str, Any],
                                                  tmp_path: Path) -> None:
    from fullchain.backends.embedded import open_embedded

    hospital = world["hospital"]
    w3, _ = open_embedded(world["home"] / "chain")
    cap = RangeCap(4)
    w3.middleware_onion.add(cap)
    index = EventIndex(tmp_path / "capped.sqlite", w3=w3, contracts=hospital.contracts(),
                       store=lambda: hospital.store)
    result = index.sync()
    assert cap.refused > 0 and result.ranges >= result.to_block // 4
    assert dump(index.path) == reference
    index.close()


def test_another_deployment_on_the_same_chain_starts_over(world: dict[str, Any], tmp_path: Path) -> None:
    hospital = world["hospital"]
    contracts = hospital.contracts()
    index = EventIndex(tmp_path / "index.sqlite", w3=hospital.w3, contracts=contracts)
    index.sync()
    assert index.count_datasets() == len(CATALOG)
    index.close()
    only = {"Consortium": contracts["Consortium"]}  # e.g. a profile pointing at other contracts
    index = EventIndex(tmp_path / "index.sqlite", w3=hospital.w3, contracts=only)
    index.sync()
    assert index.count_datasets() == 0 and len(index.members()) == 3
    index.close()


# ---- reorgs on a real node ----

def test_reorg_on_anvil_rewinds_and_reindexes(anvil: AnvilNode, tmp_path: Path) -> None:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/3")
    rpc = open_rpc(anvil.url)
    funding = Transactor(rpc, lambda: funder, funder.address)
    home, files = tmp_path / "home", tmp_path / "files"
    files.mkdir()
    config = fullchain.init("solo", home=home, password=PW, chain=anvil.url)
    funding.transfer(config.address, 10**20)
    solo = fullchain.connect("solo", home=home, password=PW)
    solo.deploy([fullchain.Founder(solo.address, Role.HOSPITAL | Role.GOVERNOR, hpke_key(solo))], threshold=1)

    connection = [solo]

    def register(title: str, tier: str = "public") -> int:
        path = files / f"{title}.bin"
        path.write_bytes(os.urandom(50))
        return connection[0].datasets.register(path, build_metadata(title=title, standard="omop", tier=tier)).dataset_id

    def revert(snapshot: str) -> None:
        assert rpc.provider.make_request("evm_revert", [snapshot])["result"] is True
        connection[0] = fullchain.connect("solo", home=home, password=PW)  # its nonce was reverted too

    register("kept")
    index = open_index(solo)
    index.sync()
    snapshot = rpc.provider.make_request("evm_snapshot", [])["result"]
    register("lost-1")
    register("lost-2", tier="restricted")
    index.sync()
    assert [e.info.title for e in index.datasets()] == ["kept", "lost-1", None]
    before = index.cursor

    # The node drops those blocks and mines others in their place (a longer chain).
    revert(snapshot)
    register("replacement", tier="consortium")
    rpc.provider.make_request("anvil_mine", [hex(5)])
    assert rpc.eth.block_number > before
    result = index.sync()
    assert result.rewound_to is not None and result.rewound_to < before
    entries = index.datasets()
    assert [(e.info.dataset_id, e.info.title, e.latest.tier) for e in entries] == \
        [(1, "kept", "public"), (2, None, "consortium")]
    assert [v for e in entries for v in index.versions(e.info.dataset_id)] == \
        [v for i in (1, 2) for v in solo.datasets.versions(i)]
    fresh = fresh_index(solo, tmp_path / "fresh.sqlite")
    assert dump(index.path) == dump(fresh.path)

    # And a chain that became shorter than the index (reverted, nothing mined yet).
    snapshot = rpc.provider.make_request("evm_snapshot", [])["result"]
    register("short-lived")
    index.sync()
    assert index.count_datasets() == 3
    revert(snapshot)
    result = index.sync()
    assert result.rewound_to is not None and index.cursor <= rpc.eth.block_number
    assert index.count_datasets() == 2
    assert dump(index.path) == dump(fresh.path)

    # Erasing a version whose public metadata is cached hides it from then on.
    assert index.dataset(1).info.title == "kept"
    connection[0].datasets.erase(1, 1)
    index.sync()
    assert index.dataset(1).info.title is None and index.datasets(tier="public")[0].erased_versions == [1]
    index.close()
    fresh.close()


def test_public_metadata_missing_from_the_store_is_asked_again_later(world: dict[str, Any], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fullchain.index import _index
    from fullchain.storage import open_store

    hospital = world["hospital"]
    empty = open_store("embedded", tmp_path / "elsewhere")  # a store that has none of the documents
    index = EventIndex(tmp_path / "index.sqlite", w3=hospital.w3, contracts=hospital.contracts(), store=lambda: empty)
    index.sync()
    assert [e.info.title for e in index.datasets()] == [None] * len(CATALOG)
    assert index.datasets(data_use="DUO:0000042") == []
    index._store = lambda: hospital.store
    index.sync()  # asked a moment ago: not again yet
    assert index.dataset(1).info.title is None
    monkeypatch.setattr(_index, "METADATA_RETRY_S", 0)
    index.sync()
    assert [e.info.title for e in index.datasets(tier="public")] == ["Trial A", "Registry D", "Trial E", None]
    index.close()


def test_a_damaged_index_file_is_started_afresh(world: dict[str, Any], reference: dict[str, Any],
                                                tmp_path: Path) -> None:
    hospital = world["hospital"]
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not what it was" * 100)
    index = EventIndex(path, w3=hospital.w3, contracts=hospital.contracts(), store=lambda: hospital.store)
    index.sync()
    assert dump(path) == reference
    index.close()


def test_an_index_that_cannot_be_created_is_a_clear_error(world: dict[str, Any], tmp_path: Path) -> None:
    hospital = world["hospital"]
    (tmp_path / "index").write_text("a file where the index directory should be")
    with pytest.raises(fullchain.ConfigError, match="cannot be used") as err:
        EventIndex(tmp_path / "index" / "1-ab.sqlite", w3=hospital.w3, contracts=hospital.contracts())
    assert "deleting the file is safe" in err.value.diagnostics()


# ---- validity as the contracts judge it: membership, consent through lineage, governor terms ----

GRU, HMB = parse_purpose("DUO:0000042"), parse_purpose("DUO:0000006")
# Datasets of the validity world, all the hospital's: name -> parents (by name), in registration order.
LINEAGE = {"plain": [], "a1": [], "a2": ["a1"], "a3": ["a2"], "b1": [], "b2": ["b1"], "b3": ["b2"],
           "f1": [], "f2": ["f1"], "own": [], "back": [], "multi": ["plain", "a2"]}


def build_validity_world(home: Path, files: Path) -> dict[str, Any]:
    """Licenses valid and invalid for every reason `isValid` has, delegations in force and
    ended, and proposals whose approvals a demotion voided; `cases` names each license by what
    happened to it."""
    names = ("hospital", "pharma", "cro", "lab", "patient")
    for name in names:
        fullchain.init(name, home=home, password=PW)
    fc = {name: fullchain.connect(name, home=home, password=PW) for name in names}
    hospital, pharma, cro, lab, patient = (fc[n] for n in names)
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, hpke_key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA | Role.GOVERNOR, hpke_key(pharma))], threshold=1)

    def governed(pid: int) -> None:
        hospital.consortium.execute(pid)

    for who, roles in ((cro, Role.CRO), (lab, Role.CRO), (patient, Role.PATIENT)):
        governed(hospital.consortium.propose_admit(who.address, roles, hpke_key(who)))
    ids: dict[str, int] = {}
    for name, parents in LINEAGE.items():
        path = files / f"{name}.bin"
        path.write_bytes(os.urandom(40))
        ids[name] = hospital.datasets.register(path, build_metadata(title=name, standard="omop", tier="restricted"),
                                               derived_from=[ids[p] for p in parents]).dataset_id
    cases: dict[str, int] = {}

    def grant(case: str, who: fullchain.Fullchain, dataset: str, purpose: Any = GRU, **kw: Any) -> int:
        cases[case] = who.licensing.request(ids[dataset], purpose, term_seconds=30 * DAY)
        hospital.licensing.grant(cases[case], **kw)
        return cases[case]

    expired = grant("expired", pharma, "plain", HMB, expires_in=5)
    hospital.licensing.revoke(grant("revoked", cro, "plain", HMB))
    grant("superseded", pharma, "plain")
    grant("superseding", pharma, "plain")
    cases["rejected"] = cro.licensing.request(ids["plain"], GRU, term_seconds=DAY)
    hospital.licensing.reject(cases["rejected"])
    cases["pending"] = pharma.licensing.request(ids["own"], HMB, term_seconds=DAY)
    grant("requester removed", cro, "plain")
    grant("before re-admission", lab, "plain")
    cases["asked before re-admission"] = lab.licensing.request(ids["own"], GRU, term_seconds=DAY)
    for name in LINEAGE:
        if name != "plain":
            grant(f"on {name}", pharma, name)
    # The patient's consent, required after the licenses were granted (and, for f1, after its
    # copy f2 was registered): a grant checks it, a license already held is bound by it too.
    for name in ("a1", "b2", "f1", "own", "back"):
        hospital.licensing.require_consent(ids[name], patient.address)
    for name in ("a1", "b2", "f1", "own", "back"):
        patient.licensing.set_consent(ids[name], given=False)
    patient.licensing.set_consent(ids["back"], given=True)

    def delegate(dataset: str, who: fullchain.Fullchain, allowed: bool = True) -> None:
        fn = hospital.licensing.contract.functions.setDelegate(ids[dataset], who.address, allowed)
        hospital.transactor.call_function(fn, contract=DATA_USE_LICENSING)

    delegate("plain", pharma)
    delegate("plain", lab)  # ended by lab's removal, not revived by its re-admission
    delegate("own", cro)  # ended by cro's removal
    delegate("a1", pharma)
    delegate("a1", pharma, allowed=False)
    governed(hospital.consortium.propose_remove(cro.address))
    governed(hospital.consortium.propose_remove(lab.address))
    governed(hospital.consortium.propose_admit(lab.address, Role.CRO, hpke_key(lab)))
    grant("after re-admission", lab, "plain", HMB)
    delegate("b1", lab)

    # Approvals count only within the approver's governor term: pharma approves two proposals,
    # is demoted and promoted again, then approves only the second one anew.
    voided, renewed = hospital.consortium.propose_threshold(2), hospital.consortium.propose_threshold(2)
    pharma.consortium.approve(voided)
    pharma.consortium.approve(renewed)
    governed(hospital.consortium.propose_roles(pharma.address, Role.PHARMA))
    governed(hospital.consortium.propose_roles(pharma.address, Role.PHARMA | Role.GOVERNOR))
    pharma.consortium.approve(renewed)
    # Let chain time pass the short grant's expiry (each embedded block is a second later at least).
    while hospital.w3.eth.get_block("latest")["timestamp"] <= hospital.licensing.get(expired).expires_at.timestamp() + 2:
        hospital.transactor.transfer(hospital.address, 0)
    return {"home": home, "cases": cases, "ids": ids, "proposals": {"voided": voided, "renewed": renewed}, **fc}


@pytest.fixture(scope="module")
def validity_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("validity-world")
    (root / "files").mkdir()
    return build_validity_world(root / "home", root / "files")


def test_license_validity_equals_the_contracts(validity_world: dict[str, Any], tmp_path: Path) -> None:
    hospital, cases = validity_world["hospital"], validity_world["cases"]
    index = fresh_index(hospital, tmp_path / "index.sqlite")
    contract = hospital.licensing.contract.functions
    valid = {case for case, lid in cases.items() if contract.isValid(lid).call()}
    # The world has each case it claims to have: b1 is above the withdrawn b2, back's consent
    # was given again; everything else is invalid for the reason its name says.
    assert valid == {"superseding", "on b1", "on back", "after re-admission"}
    count = contract.licenseCount().call()
    assert sorted(cases.values()) == list(range(1, count + 1))
    indexed = {lid: index.license(lid) for lid in cases.values()}
    differ = {case: indexed[lid].valid for case, lid in cases.items()  # type: ignore[union-attr]
              if indexed[lid].valid != contract.isValid(lid).call()}  # type: ignore[union-attr]
    assert differ == {}
    for case, lid in cases.items():
        assert indexed[lid] == hospital.licensing.get(lid), case
    assert index.licenses() == hospital.licensing.all()
    statuses = {lic.id: lic.status for lic in index.licenses()}
    assert statuses[cases["expired"]] == "expired" and statuses[cases["superseded"]] == "superseded"
    assert statuses[cases["requester removed"]] == statuses[cases["before re-admission"]] == "granted"
    index.close()


def test_members_and_approvals_equal_the_contract(validity_world: dict[str, Any], tmp_path: Path) -> None:
    hospital, lab = validity_world["hospital"], validity_world["lab"]
    index = fresh_index(hospital, tmp_path / "index.sqlite")
    assert [m.model_dump() for m in index.members()] == [m.model_dump() for m in hospital.consortium.members()]
    assert index.member(lab.address).status == "active"
    on_chain = hospital.consortium.proposals()
    assert [p.model_dump() for p in index.proposals()] == [p.model_dump() for p in on_chain]
    approvals = {p.id: p.approvals for p in index.proposals()}
    ids = validity_world["proposals"]
    assert (approvals[ids["voided"]], approvals[ids["renewed"]]) == (1, 2)
    consortium = hospital.consortium.contract.functions
    admissions = {name: index.active_admission(validity_world[name].address)
                  for name in ("hospital", "pharma", "cro", "lab", "patient")}
    assert admissions == {name: consortium.activeAdmission(validity_world[name].address).call()
                          for name in admissions}
    assert admissions["lab"] == 2 and admissions["cro"] == 0


def test_delegations_equal_the_contract(validity_world: dict[str, Any], tmp_path: Path) -> None:
    hospital, ids = validity_world["hospital"], validity_world["ids"]
    index = fresh_index(hospital, tmp_path / "index.sqlite")
    contract = hospital.licensing.contract.functions
    in_force = {(dataset, name) for dataset in ids for name in ("hospital", "pharma", "cro", "lab", "patient")
                if contract.isDelegate(ids[dataset], validity_world[name].address).call()}
    assert in_force == {("plain", "pharma"), ("b1", "lab")}
    assert {(dataset, name) for dataset in ids for name in ("hospital", "pharma", "cro", "lab", "patient")
            if index.is_delegate(ids[dataset], validity_world[name].address)} == in_force
    index.close()
    index.close()
