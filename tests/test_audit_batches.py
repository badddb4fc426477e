"""Batched access records: a license granted with `batchedAccess` lets its holder record many
uses as one Merkle batch through ProvenanceAnchor.anchorAccesses, under the rules of
DataUseLicensing.recordAccess (checkAccess). On the embedded chain and on anvil: the batch is
anchored and every record's proof verifies on chain and in Python; it is refused without
batchedAccess, for a non-licensee, after revocation or expiry, for an unknown kind, and kind 1
through plain `anchor`; the gas does not depend on the number of records. Through the SDK and the
CLI: the records go to the content store and come back by CID, the index files the batch under
its dataset, license and licensee, and the license-at-time-of-use check flags a batch under a
license without batchedAccess."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

import fullchain
from fullchain.audit.anchor import (
    ACCESS_RECORD_ENCODING,
    PROVENANCE_ANCHOR,
    AnchorClient,
    BatchKind,
    access_batch_tree,
    deploy_anchor,
    load_access_batch,
    parse_access_log,
    records_cid,
    records_digest,
    records_document,
)
from fullchain.audit.check import check_dataset, check_events, evidence
from fullchain.audit.merkle import verify_proof
from fullchain.audit.trail import dataset_trail, member_trail
from fullchain.contracts import DATA_USE_LICENSING, decode_revert, revert_bytes
from fullchain.duo import parse_purpose
from fullchain.errors import InvalidInput, NotAuthorized, NotDeployed, TransactionReverted, VerificationFailed
from fullchain.metadata import build_metadata
from fullchain.models import Role
from fullchain.storage import EmbeddedStore
from fullchain.storage import cid as cids

from .conftest import DEMO_PASSWORD, run_cli
from .test_licensing_contract import BATCHED, DAY, GRU, Lic
from .test_licensing_contract import lic as lic  # noqa: F401 (the fixture)

PW = DEMO_PASSWORD
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def records(n: int, detail: str = "read") -> list[tuple[int, bytes]]:
    return [(T0 + i, hashlib.sha256(f"{detail} {i}".encode()).digest()) for i in range(n)]


@dataclass
class World:
    lic: Lic
    anchor: str  # the ProvenanceAnchor's address
    store: EmbeddedStore

    def client(self, tx, records_dir: Path | None = None) -> AnchorClient:  # noqa: ANN001
        return AnchorClient(self.lic.w3, self.anchor, tx, store=self.store, records_dir=records_dir)


@pytest.fixture
def world(lic: Lic, tmp_path: Path) -> World:  # noqa: F811
    address, _ = deploy_anchor(lic.hospital, lic.w3, lic.consortium.address, lic.address)
    return World(lic, address, EmbeddedStore(tmp_path / "blocks"))


def revert_of(w: World, tx, *args: object) -> tuple[str, dict]:  # noqa: ANN001
    """The error anchorAccesses reverts with, decoded against either contract's ABI (checkAccess's
    errors come through from DataUseLicensing)."""
    fn = w.client(tx).contract.functions.anchorAccesses(*args)
    with pytest.raises(ContractLogicError) as info:
        fn.call({"from": tx.address}, block_identifier="pending")
    data = revert_bytes(info.value)
    name, found = decode_revert(PROVENANCE_ANCHOR, data)
    return decode_revert(DATA_USE_LICENSING, data) if name == "UnknownError" else (name, found)


def check_access_error(w: World, license_id: int, licensee: str, version: int, kind: int) -> str:
    with pytest.raises(ContractLogicError) as info:
        w.lic.contract.functions.checkAccess(license_id, licensee, version, kind).call(block_identifier="pending")
    return decode_revert(DATA_USE_LICENSING, revert_bytes(info.value))[0]


# ---- the contracts ----

def test_a_batch_under_a_batched_license_is_anchored_and_every_record_proves(world: World, tmp_path: Path) -> None:
    lic = world.lic
    lid = lic.licensed(batched=True)
    assert lic.view("license", lid)[BATCHED] is True
    assert tuple(lic.view("checkAccess", lid, lic.pharma.address, 1, 0)) == (lic.dataset, True)
    pharma = world.client(lic.pharma, tmp_path / "copies")
    batch = records(7)  # not a power of two: the OpenZeppelin layout
    batch_id, receipt = pharma.record_access_batch(lid, 1, 1, batch)

    anchored = pharma.contract.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)[0]["args"]
    access = pharma.contract.events.AccessBatchAnchored().process_receipt(receipt, errors=DISCARD)[0]["args"]
    tree = access_batch_tree(lid, 1, 1, batch)
    digest = records_digest(records_document(tree))
    assert dict(anchored) == {"batchId": batch_id, "member": lic.pharma.address, "kind": BatchKind.ACCESS,
                              "root": tree.root, "count": 7, "metadataDigest": digest}
    assert dict(access) == {"batchId": batch_id, "licenseId": lid, "datasetId": lic.dataset,
                            "licensee": lic.pharma.address, "version": 1, "kind": 1}
    stored = pharma.batch(batch_id)
    assert (stored.member, stored.kind, stored.count, stored.root, stored.metadata_digest) == \
        (lic.pharma.address, 1, 7, tree.root, digest)

    # The records come back from the store by the anchored digest, and each proves on chain and here.
    loaded = load_access_batch(world.store, stored.metadata_digest, root=stored.root)
    assert loaded.leaf_encoding == ACCESS_RECORD_ENCODING and len(loaded) == 7
    assert pharma.access_batch(batch_id).dump() == tree.dump()
    for i, (value, _) in enumerate(loaded.values):
        proof = loaded.proof(i)
        leaf = verify_proof(stored.root, ACCESS_RECORD_ENCODING, value, proof)
        assert pharma.verify_on_chain(batch_id, proof, leaf)
        other = list(value)
        other[3] += 1  # another time
        assert not pharma.verify_on_chain(batch_id, proof, loaded.leaf_hash(other))
        with pytest.raises(VerificationFailed):
            verify_proof(stored.root, ACCESS_RECORD_ENCODING, other, proof)
    assert [v[3:] for v, _ in loaded.values] == [[t, d] for t, d in batch]  # the order given
    assert (tmp_path / "copies" / f"{digest.hex()}.json").read_bytes() == records_document(tree)
    assert records_cid(digest) == world.store.add([records_document(tree)])

    # Renewal keeps the term.
    lic.call(lic.hospital, "renew", lid, lic.now() + 60 * DAY)
    assert lic.view("license", lid)[BATCHED] is True


def test_refusals_match_record_access_and_leave_nothing(world: World, tmp_path: Path) -> None:
    lic = world.lic
    plain = lic.licensed(purpose=GRU)  # granted without batchedAccess
    assert tuple(lic.view("checkAccess", plain, lic.pharma.address, 1, 0)) == (lic.dataset, False)
    root = b"\x42" * 32
    assert revert_of(world, lic.pharma, plain, 1, 0, root, 5, root) == \
        ("ProvenanceAnchorBatchedAccessNotAllowed", {"licenseId": plain})
    copies = tmp_path / "copies"
    with pytest.raises(NotAuthorized, match=f"license {plain} does not allow batched access") as info:
        world.client(lic.pharma, copies).record_access_batch(plain, 1, 0, records(3))
    assert "--batched-access" in info.value.hint
    refused = records_document(access_batch_tree(plain, 1, 0, records(3)))
    assert not copies.exists() and not world.store.has(records_cid(records_digest(refused)))  # nothing stored

    batched = lic.licensed(lic.cro, batched=True)
    # The same errors as checkAccess (and recordAccess), for each rule.
    assert revert_of(world, lic.pharma, batched, 1, 0, root, 5, root) == \
        ("DataUseLicensingNotLicensee", {"licenseId": batched, "caller": lic.pharma.address})
    assert check_access_error(world, batched, lic.pharma.address, 1, 0) == "DataUseLicensingNotLicensee"
    assert revert_of(world, lic.stranger, batched, 1, 0, root, 5, root)[0] == "DataUseLicensingNotLicensee"
    assert revert_of(world, lic.cro, batched, 1, 3, root, 5, root) == ("DataUseLicensingInvalidKind", {"kind": 3})
    assert revert_of(world, lic.cro, batched, 2, 0, root, 5, root)[0] == "DataUseLicensingVersionNotCovered"
    assert revert_of(world, lic.cro, batched, 1, 0, b"\0" * 32, 5, root) == \
        ("ProvenanceAnchorInvalidRoot", {"root": b"\0" * 32})
    assert revert_of(world, lic.cro, batched, 1, 0, root, 0, root) == ("ProvenanceAnchorInvalidCount", {"count": 0})
    with pytest.raises(NotAuthorized, match="is not held by"):
        world.client(lic.pharma).record_access_batch(batched, 1, 0, records(2))
    world.client(lic.cro).record_access_batch(batched, 1, 2, records(2))  # allowed: the holder

    lic.call(lic.hospital, "revoke", batched)
    assert revert_of(world, lic.cro, batched, 1, 0, root, 5, root) == ("DataUseLicensingNotValid", {"licenseId": batched})
    assert check_access_error(world, batched, lic.cro.address, 1, 0) == "DataUseLicensingNotValid"
    with pytest.raises(NotAuthorized, match="not valid now"):
        world.client(lic.cro).record_access_batch(batched, 1, 0, records(2))

    # Access batches never go through plain anchor, whatever the license says.
    with pytest.raises(TransactionReverted) as reverted:
        world.client(lic.pharma).anchor_root(root, 5, BatchKind.ACCESS)
    assert (reverted.value.error_name, reverted.value.error_args) == ("ProvenanceAnchorInvalidKind", {"kind": 1})


def test_an_expired_license_anchors_no_batch(world: World, chain) -> None:  # noqa: ANN001
    lic = world.lic
    lid = lic.licensed(batched=True, expires_in=20)
    world.client(lic.pharma).record_access_batch(lid, 1, 0, records(1))
    chain.advance_time(21)
    assert revert_of(world, lic.pharma, lid, 1, 0, b"\x42" * 32, 1, b"\x42" * 32) == \
        ("DataUseLicensingNotValid", {"licenseId": lid})
    with pytest.raises(NotAuthorized, match="not valid now"):
        world.client(lic.pharma).record_access_batch(lid, 1, 0, records(1))


def test_gas_of_an_access_batch_does_not_depend_on_its_size(world: World) -> None:
    """10, 1k and 100k records: the same execution gas; the receipts differ only by the calldata
    cost of the count's bytes (EIP-2028)."""
    lic = world.lic
    lid = lic.licensed(batched=True)
    pharma = world.client(lic.pharma)
    root, digest = b"\x42" * 32, b"\x17" * 32
    fn = pharma.contract.functions.anchorAccesses
    lic.pharma.call_function(fn(lid, 1, 0, root, 1, digest), contract=PROVENANCE_ANCHOR)  # warm
    used = {}
    for count in (10, 1_000, 100_000):
        receipt = lic.pharma.call_function(fn(lid, 1, 0, root, count, digest), contract=PROVENANCE_ANCHOR)
        data = bytes(lic.w3.eth.get_transaction(receipt["transactionHash"])["input"])
        used[count] = receipt["gasUsed"] - sum(4 if b == 0 else 16 for b in data)
    assert used[10] == used[1_000] == used[100_000], used


# ---- records, off chain ----

def test_the_access_log_format_and_its_errors(tmp_path: Path) -> None:
    lines = ['{"time": 1767225600, "detail": "cohort query 1"}', "",
             '{"time": "2026-01-01T01:00:00Z"}', '{"time": "2026-01-01T02:00:00", "detail": ""}']
    got = parse_access_log(lines)
    assert got == [(T0, hashlib.sha256(b"cohort query 1").digest()), (T0 + 3600, b"\0" * 32), (T0 + 7200, b"\0" * 32)]
    for bad, says in (("not json", "line 1: not JSON"), ('{"detail": "x"}', 'line 1: no "time"'),
                      ('{"time": "yesterday"}', "line 1: time 'yesterday'"), ('{"time": -1}', "line 1: time -1"),
                      ('{"time": 1, "who": "me"}', "unknown field 'who'"), ('{"time": 1, "detail": 5}', "detail must")):
        with pytest.raises(InvalidInput, match=says):
            parse_access_log([bad])
    with pytest.raises(InvalidInput, match="line 2: not JSON"):
        parse_access_log(['{"time": 1}', "{"])
    with pytest.raises(InvalidInput, match="holds no access records"):
        parse_access_log(["", "  "])
    with pytest.raises(InvalidInput, match="access kind 3"):
        access_batch_tree(1, 1, 3, records(1))


def test_tampered_or_foreign_records_are_refused(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "blocks")
    tree = access_batch_tree(5, 1, 0, records(4))
    document = records_document(tree)
    assert document == json.dumps(json.loads(document), sort_keys=True, separators=(",", ":")).encode()
    digest = records_digest(document)
    assert cids.digest_of(cids.parse(store.add([document]))) == digest
    assert load_access_batch(store, digest, root=tree.root).root == tree.root
    with pytest.raises(VerificationFailed, match="not the anchored"):
        load_access_batch(store, digest, root=b"\x01" * 32)
    # An edited record no longer re-derives its leaf (stored under its own, other digest).
    data = json.loads(document)
    data["values"][0]["value"][3] += 1
    edited = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    store.add([edited])
    with pytest.raises(VerificationFailed, match="record 0"):
        load_access_batch(store, records_digest(edited))
    # Another tree's dump is not an access batch.
    from fullchain.audit.merkle import StandardMerkleTree
    foreign = json.dumps(StandardMerkleTree.of([[1]], ["uint256"]).dump()).encode()
    store.add([foreign])
    with pytest.raises(VerificationFailed, match="not an access batch"):
        load_access_batch(store, records_digest(foreign))
    # Records larger than one chunk are a UnixFS file: found under their dag-pb CID.
    big = access_batch_tree(5, 1, 0, records(3000))
    big_doc = records_document(big)
    assert len(big_doc) > 256 * 1024
    big_digest = records_digest(big_doc)
    assert store.add([big_doc]) == records_cid(big_digest, cids.DAG_PB)
    assert len(load_access_batch(store, big_digest, root=big.root)) == 3000


# ---- SDK, index, check, CLI ----

def _world(home: Path) -> dict[str, fullchain.Fullchain]:
    names = {"hospital": Role.HOSPITAL | Role.GOVERNOR, "pharma": Role.PHARMA, "cro": Role.CRO}
    for name in names:
        fullchain.init(name, password=PW)
    fcs = {name: fullchain.connect(name, password=PW) for name in names}
    fcs["hospital"].deploy([fullchain.Founder(fc.address, names[n], bytes.fromhex(fc.profile.hpke_public_key[2:]))
                            for n, fc in fcs.items()], threshold=1)
    return fcs


def test_sdk_index_trail_and_check(home: Path, tmp_path: Path) -> None:
    fcs = _world(home)
    hospital, pharma, cro = fcs["hospital"], fcs["pharma"], fcs["cro"]
    assert hospital.anchor.contract.functions.licensing().call() == hospital.contracts()["DataUseLicensing"]
    src = tmp_path / "v1.bin"
    src.write_bytes(os.urandom(1000))
    dataset = hospital.datasets.register(src, build_metadata(title="trial")).dataset_id
    gru = parse_purpose("GRU")
    batched = hospital.licensing.grant(pharma.licensing.request(dataset, gru, term_seconds=30 * DAY),
                                       batched_access=True)
    plain = hospital.licensing.grant(cro.licensing.request(dataset, gru, term_seconds=30 * DAY))
    assert batched.batched_access and not plain.batched_access
    assert pharma.licensing.get(batched.id).batched_access

    batch_id, _ = pharma.anchor.record_access_batch(batched.id, 1, 0, records(5))
    with pytest.raises(NotAuthorized, match="does not allow batched access"):
        cro.anchor.record_access_batch(plain.id, 1, 0, records(5))
    assert len(hospital.anchor.access_batch(batch_id)) == 5  # anyone with the store reads them back
    digest = pharma.anchor.batch(batch_id).metadata_digest
    assert (home / "access-batches" / "pharma" / f"{digest.hex()}.json").exists()

    index = hospital.read_index()
    listed = {lic.id: lic.batched_access for lic in index.licenses(dataset_id=dataset)}
    assert listed == {batched.id: True, plain.id: False}
    trail = dataset_trail(index, dataset, limit=None)
    access = [e for e in trail.events if e.name == "AccessBatchAnchored"]
    assert len(access) == 1 and access[0].license_id == batched.id and access[0].account == pharma.address
    assert "recorded a batch of accesses to version 1 (fetch)" in access[0].summary
    mine = member_trail(index, pharma.address, limit=None).events
    assert [e.name for e in mine if "Batch" in e.name] == ["BatchAnchored", "AccessBatchAnchored"]
    assert "batch 1 of 5 access records anchored" in next(e for e in mine if e.name == "BatchAnchored").summary

    report = check_dataset(index, dataset)
    assert report.ok and report.accesses == 1 and report.verdicts[0].access.name == "AccessBatchAnchored"
    # The same batch under a grant edited to say no batches: flagged.
    events = evidence(index, dataset)
    edited = [e.model_copy(update={"args": {**e.args, "batchedAccess": False}})
              if e.name == "LicenseGranted" and e.args["licenseId"] == batched.id else e for e in events]
    verdict = check_events(edited, dataset).verdicts[0]
    assert [v.rule for v in verdict.violations] == ["batch-not-allowed"]
    # And a revoked license's batch is judged like a recorded access.
    late = next(e for e in events if e.name == "AccessBatchAnchored")
    revoked = late.model_copy(update={"name": "LicenseRevoked", "log_index": 0,
                                      "args": {"licenseId": batched.id, "by": hospital.address}})
    assert "revoked" in [v.rule for v in check_events([*events, revoked], dataset).verdicts[0].violations]


def test_an_older_deployment_gets_its_anchor(home: Path) -> None:
    fullchain.init("solo", password=PW)
    fc = fullchain.connect("solo", password=PW)
    fc.deploy([fullchain.Founder(fc.address, Role.GOVERNOR, bytes.fromhex(fc.profile.hpke_public_key[2:]))],
              threshold=1)
    assert "ProvenanceAnchor" in fc.deployment().contracts
    path = next((home / "deployments").glob("*.json"))
    record = json.loads(path.read_text())
    del record["contracts"]["ProvenanceAnchor"]
    path.write_text(json.dumps(record))
    fc = fullchain.connect("solo", password=PW)
    with pytest.raises(NotDeployed, match="has no ProvenanceAnchor"):
        _ = fc.anchor
    added = fc.deploy_meter().contracts
    assert fc.anchor.address == added["ProvenanceAnchor"]
    assert fc.anchor.contract.functions.licensing().call() == added["DataUseLicensing"]


def test_cli_round_trip_on_the_demo(demo_copy, tmp_path: Path) -> None:  # noqa: ANN001
    demo_copy(PW)
    env = {"FULLCHAIN_PASSWORD": PW}

    def cli(*args: str) -> object:
        return run_cli(*args, env=env)

    fc = fullchain.connect("pharma", password=PW)
    old = next(lic for lic in fc.licensing.mine() if lic.status == "granted")  # the demo's, without batches
    dataset = old.dataset_id
    owner = fc.local_names()[fc.datasets.owner_of(dataset)]
    out = cli("-p", "pharma", "license", "request", str(dataset), "--purpose", "GRU", "--term", "30d", "--json")
    assert out.returncode == 0, out.stderr
    request = json.loads(out.stdout)["request_id"]
    out = cli("-p", owner, "license", "grant", str(request), "--batched-access")
    assert out.returncode == 0, out.stderr
    show = cli("-p", "pharma", "license", "show", str(request))
    assert "batched access" in show.stdout and "yes" in show.stdout.split("batched access")[1].splitlines()[0]
    assert json.loads(cli("-p", "pharma", "license", "show", str(old.id), "--json").stdout)["batched_access"] is False

    log = tmp_path / "reads.jsonl"
    log.write_text('{"time": "2026-01-01T00:00:00Z", "detail": "cohort count by age"}\n'
                   '{"time": 1767229200, "detail": "survival curve"}\n\n'
                   '{"time": 1767232800}\n')
    version = str(old.from_version)
    out = cli("-p", "pharma", "license", "record-batch", str(request), "--version", version, "--kind", "compute",
              str(log), "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["count"] == 3 and made["records_cid"] and made["root"].startswith("0x")
    assert "cohort count" not in out.stdout
    tree = fc.anchor.access_batch(made["batch_id"])
    assert sorted(v[3] for v, _ in tree.values) == [T0, T0 + 3600, T0 + 7200]
    assert records_cid(fc.anchor.batch(made["batch_id"]).metadata_digest) == made["records_cid"]
    out = cli("-p", "pharma", "license", "record-batch", str(request), "--version", version, "--kind", "fetch", str(log))
    assert out.returncode == 0 and f"batch {made['batch_id'] + 1}: 3 fetch records" in out.stdout, out.stderr
    assert "records CID" in out.stdout

    # Clear one-line refusals, and nothing anchored by them.
    count = fc.anchor.batch_count()
    out = cli("-p", "pharma", "license", "record-batch", str(old.id), "--version", version, "--kind", "fetch",
              str(log))
    assert out.returncode == 1 and "does not allow batched access records" in out.stderr
    assert "--batched-access" in out.stderr and "Traceback" not in out.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    out = cli("-p", "pharma", "license", "record-batch", str(request), "--version", version, "--kind", "fetch",
              str(empty))
    assert out.returncode == 1 and "holds no access records" in out.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"time": 1}\n{"time": "soon"}\n')
    out = cli("-p", "pharma", "license", "record-batch", str(request), "--version", version, "--kind", "fetch", str(bad))
    assert out.returncode == 1 and "line 2" in out.stderr
    out = cli("-p", "pharma", "license", "record-batch", str(request), "--version", version, "--kind", "peek", str(log))
    assert out.returncode == 2
    assert fc.anchor.batch_count() == count

    trail = cli("-p", "pharma", "audit", "trail", str(dataset))
    assert trail.returncode == 0 and "recorded a batch of accesses" in trail.stdout, trail.stderr
    assert cli("-p", "pharma", "audit", "check", str(dataset)).returncode == 0
