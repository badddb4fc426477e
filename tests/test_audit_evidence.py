"""Compute job records and measurement evidence anchored as Merkle batches (ProvenanceAnchor kinds
2 and 3): the records go to the content store, their root on chain; each record proves its
inclusion on chain (OpenZeppelin MerkleProof) and offline, and altered records are refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import fullchain
from fullchain.audit.anchor import (
    BatchKind,
    _record_digest,
    evidence_document,
    load_evidence_batch,
    records_cid,
    records_digest,
)
from fullchain.audit.merkle import verify_proof
from fullchain.audit.trail import member_trail
from fullchain.errors import InvalidInput, VerificationFailed

from .conftest import DEMO_PASSWORD, run_cli

PW = {"FULLCHAIN_PASSWORD": DEMO_PASSWORD}
JOBS = [{"job_id": f"slurm-{i}", "member": "hospital", "gpu_seconds": 3600 * i, "started": 1_800_000_000 + i}
        for i in range(1, 8)]


@pytest.fixture(scope="module")
def world(demo_home: Path) -> dict:
    home = demo_home
    hospital = fullchain.connect("hospital", home=home, password=PW["FULLCHAIN_PASSWORD"])
    batch_id, receipt, cid = hospital.anchor.record_batch(BatchKind.COMPUTE, JOBS)
    return {"home": home, "fc": hospital, "batch": batch_id, "receipt": receipt, "cid": cid}


def test_a_compute_batch_is_anchored_and_each_record_proves_on_chain_and_offline(world: dict) -> None:
    fc, batch_id = world["fc"], world["batch"]
    anchored = fc.anchor.batch(batch_id)
    assert (anchored.kind, anchored.count, anchored.member) == (BatchKind.COMPUTE, len(JOBS), fc.address)
    records, tree = fc.anchor.evidence_batch(batch_id)
    assert records == JOBS and tree.root == anchored.root
    for i, record in enumerate(JOBS):
        proof = tree.proof(i)
        leaf = tree.leaf_hash([_record_digest(record)])
        assert fc.anchor.verify_on_chain(batch_id, proof, leaf)
        assert verify_proof(anchored.root, ["bytes32"], [_record_digest(record)], proof) == leaf
    forged = tree.leaf_hash([_record_digest({**JOBS[0], "gpu_seconds": 1})])
    assert not fc.anchor.verify_on_chain(batch_id, tree.proof(0), forged)
    assert records_cid(anchored.metadata_digest) == world["cid"]  # the records are found from the chain alone
    trail = member_trail(fc.read_index(), fc.address, limit=None).events
    assert [e.args["batchId"] for e in trail if e.name == "BatchAnchored"] == [batch_id]


def test_altered_records_are_refused(world: dict) -> None:
    fc = world["fc"]
    anchored = fc.anchor.batch(world["batch"])
    _, document = evidence_document(JOBS)
    data = json.loads(document)
    data["records"][2]["gpu_seconds"] += 1  # the tree still holds the original record's digest
    edited = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    cid = fc.store.add([edited])
    assert cid
    with pytest.raises(VerificationFailed, match="not the leaves of its tree"):
        load_evidence_batch(fc.store, records_digest(edited), root=anchored.root)
    other, other_document = evidence_document(JOBS[:3])
    fc.store.add([other_document])
    with pytest.raises(VerificationFailed, match="lead to root"):
        load_evidence_batch(fc.store, records_digest(other_document), root=anchored.root)


def test_bad_batches_are_refused_before_anything_is_sent(world: dict) -> None:
    fc = world["fc"]
    before = fc.anchor.batch_count()
    with pytest.raises(InvalidInput, match="not compute"):
        fc.anchor.record_batch(BatchKind.ACCESS, JOBS)
    with pytest.raises(InvalidInput, match="at least one record"):
        fc.anchor.record_batch(BatchKind.METERING, [])
    with pytest.raises(InvalidInput, match="record 2 is not a JSON object"):
        fc.anchor.record_batch(BatchKind.METERING, [{"a": 1}, [1, 2]])
    assert fc.anchor.batch_count() == before


def test_meter_anchor_from_the_cli(world: dict, tmp_path: Path) -> None:
    env = {**PW, "FULLCHAIN_HOME": str(world["home"]), "FULLCHAIN_PROFILE": "hospital"}
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in JOBS[:4]) + "\n\n")
    out = run_cli("meter", "anchor", str(jobs), "--kind", "metering", "--json", env=env)
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["count"] == 4 and made["kind"] == "metering"
    records, _ = world["fc"].anchor.evidence_batch(int(made["batch_id"]))
    assert records == JOBS[:4]
    jobs.write_text('{"job_id": 1}\n{not json}\n')
    bad = run_cli("meter", "anchor", str(jobs), "--kind", "compute", env=env)
    assert bad.returncode == 1 and "line 2 is not JSON" in bad.stderr
