"""Attacks on the offline audit-bundle verifier found by an adversarial review, kept as tests of
the defence each now meets: a hostile member hands an auditor a bundle that would verify against
the block the auditor trusts (--trust-block) yet show a trail the chain does not hold, or one that
would make verify-bundle crash instead of refusing in one line.

- Contracts left out: a bundle must name the whole deployment, or a bundle whose `contracts`
  omits DataUseLicensing would prove a dataset that was never licensed nor accessed.
- Contracts swapped: the contracts must be wired to each other by their constructor arguments,
  or a second copy of DataUseLicensing (this SDK's code, deployed by any member on the same chain)
  could stand in for the real one, the real licenses, revocation and accesses gone.
- A report made from a bundle shows the same lineage as the node's (descendants' registrations
  are carried, though only ancestors are proven complete).
- JSON the parser cannot take (nesting deeper than the recursion limit, an integer of more than
  4300 digits) is a one-line refusal; a deeply nested access-batch records document, anchored on
  chain by a hostile licensee, would otherwise kill `verify-bundle` with SIGSEGV once py_ecc has
  raised the recursion limit to 100000.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fullchain
from fullchain.audit import qbft
from fullchain.audit.bundle import (
    _event_record,
    _fetch_block,
    _find_creation,
    _ProvenIndex,
    build_bundle,
    subject_events,
    verify_bundle,
)
from fullchain.audit.anchor import records_digest
from fullchain.audit.headers import BlockHeader
from fullchain.audit.report import build_report_data
from fullchain.contracts import deploy_contract
from fullchain.duo import parse_purpose
from fullchain.errors import VerificationFailed
from fullchain.metadata import build_metadata

from .conftest import DEMO_PASSWORD, fullchain_cli, run_cli

PW = {"FULLCHAIN_PASSWORD": DEMO_PASSWORD}
DATASET = 1  # the hospital's: two licenses, three accesses, one revocation


def _head_hash(bundle: dict) -> bytes:
    head = BlockHeader.from_rlp(bytes.fromhex(bundle["headers"][-1][2:]))
    return qbft.block_hash(head) if bundle["consensus"] == "qbft" else head.hash()


def _rederive(bundle: dict) -> dict:
    """Restate `events` as the verifier derives them from the bundle's (possibly edited)
    contracts and blocks: what a forger does after choosing which contracts to show."""
    headers = [BlockHeader.from_rlp(bytes.fromhex(h[2:])) for h in bundle["headers"]]
    blocks = {int(n): ([bytes.fromhex(t[2:]) for t in b["transactions"]], [bytes.fromhex(r[2:]) for r in b["receipts"]])
              for n, b in bundle["blocks"].items()}
    addresses = {name: entry["address"] for name, entry in bundle["contracts"].items()}
    with _ProvenIndex(headers, blocks, addresses) as proven:
        bundle["events"] = [_event_record(e) for e in subject_events(proven.index, int(bundle["dataset_id"]))]
    return bundle


def _names(bundle: dict) -> set[str]:
    return {e["name"] for e in bundle["events"]}


@pytest.fixture(scope="module")
def world(demo_home: Path) -> dict:
    home = demo_home
    hospital = fullchain.connect("hospital", home=home, password=PW["FULLCHAIN_PASSWORD"])
    pharma = fullchain.connect("pharma", home=home, password=PW["FULLCHAIN_PASSWORD"])
    contracts = hospital.contracts()
    # pharma (a licensee of dataset 1, whose license was revoked) deploys its own DataUseLicensing,
    # this SDK's code wired to the consortium's own Consortium and DatasetRegistry: it holds no event.
    fake, _ = deploy_contract(pharma.transactor, pharma.w3, "DataUseLicensing", contracts["Consortium"],
                              contracts["DatasetRegistry"])
    # the hospital derives a dataset from the clinic's dataset 2 (after a plain one: dataset ids are
    # also license ids, and id 4 is a license of dataset 2, whose topic would be in the bundle's bloom query)
    data = home.parent / "result.csv"
    data.write_text("site,count\nA,3\nB,4\n")
    meta = build_metadata(title="a result", domain="cardiometabolic", data_use=["HMB"], tier="restricted")
    hospital.datasets.register(data, meta)
    child = hospital.datasets.register(data, meta, derived_from=[2]).dataset_id
    head = hospital.w3.eth.block_number
    fake_block, fake_position = _find_creation(hospital.w3, fake, head)
    index = hospital.read_index()
    bundle = build_bundle(hospital.w3, index, contracts, DATASET, store=hospital.store)
    bundle_2 = build_bundle(hospital.w3, index, contracts, 2, store=hospital.store)
    # a hostile licensee anchors an access batch whose records document is JSON nested 100000 deep:
    # the hospital, licensed on pharma's dataset 3 with batched access records, anchors its digest
    # (the contract checks the license, not the document)
    batched = hospital.licensing.request(3, parse_purpose("HMB"), term_seconds=30 * 86400)
    pharma.licensing.grant(batched, batched_access=True)
    nested = "[" * 100_000 + "]" * 100_000
    fn = hospital.anchor.contract.functions.anchorAccesses(batched, 1, 0, b"\1" * 32, 1,
                                                           records_digest(nested.encode()))
    hospital.transactor.call_function(fn, contract="ProvenanceAnchor")
    bundle_3 = build_bundle(hospital.w3, hospital.read_index(), contracts, 3, store=hospital.store)
    batch_id = next(e["args"]["batchId"] for e in bundle_3["events"] if e["name"] == "AccessBatchAnchored")
    bundle_3["batches"] = [{"batch_id": str(batch_id), "document": nested}]
    return {"home": home, "bundle": bundle, "contracts": contracts, "fake": (fake, fake_block, fake_position),
            "fake_block": _fetch_block(hospital.w3, fake_block), "index": index, "child": child,
            "bundle_2": bundle_2, "bundle_3": bundle_3}


@pytest.fixture
def bundle(world: dict) -> dict:
    return copy.deepcopy(world["bundle"])


def _accepted(bundle: dict) -> str | None:
    """None if verify_bundle (anchored at the real head) refuses `bundle`, else what it showed."""
    try:
        with verify_bundle(bundle, trust_block=_head_hash(bundle)) as verified:
            return f"accepted: {len(verified.events)} events, checks {dict(verified.report.checks)}"
    except VerificationFailed:
        return None


def test_the_real_bundle_holds_licenses_accesses_and_a_revocation(bundle: dict) -> None:
    """The baseline the attacks remove things from (it verifies)."""
    assert {"LicenseRequested", "LicenseGranted", "AccessRecorded", "LicenseRevoked"} <= _names(bundle)
    assert _accepted(bundle) is not None


def test_a_bundle_leaving_out_the_licensing_contract_is_refused(bundle: dict) -> None:
    """Attack: drop DataUseLicensing from `contracts` (blocks and headers untouched, events restated).
    Without the deployment check the bundle verified against the trusted head: 'license at time of use: no recorded
    accesses to check', a trail with no license, access or revocation."""
    del bundle["contracts"]["DataUseLicensing"]
    _rederive(bundle)
    assert not {"LicenseRequested", "AccessRecorded", "LicenseRevoked"} & _names(bundle)
    assert _accepted(bundle) is None


def test_a_bundle_leaving_out_the_licensing_contract_is_refused_by_the_cli(bundle: dict, tmp_path: Path) -> None:
    """The same forgery through `fullchain audit verify-bundle --trust-block`: exit 0 without the deployment check."""
    del bundle["contracts"]["DataUseLicensing"]
    _rederive(bundle)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(bundle))
    out = run_cli("audit", "verify-bundle", str(path), "--trust-block", "0x" + _head_hash(bundle).hex(),
                  env={"FULLCHAIN_HOME": str(tmp_path / "auditor")})
    assert out.returncode == 1, out.stdout


def test_a_bundle_naming_another_deployment_of_a_contract_is_refused(bundle: dict, world: dict) -> None:
    """Attack: `contracts` names pharma's own DataUseLicensing (this SDK's code, created by a proven
    transaction on the same chain, wired to the real Consortium and DatasetRegistry) instead of the
    consortium's. Without the wiring check it verified: seven contracts as always, and none of dataset 1's licenses,
    accesses or its revocation of pharma's license."""
    fake, block, position = world["fake"]
    txs, receipts = world["fake_block"]
    bundle["blocks"][str(block)] = {"transactions": ["0x" + t.hex() for t in txs],
                                    "receipts": ["0x" + r.hex() for r in receipts]}
    bundle["contracts"]["DataUseLicensing"] = {"address": fake, "block": block, "tx_index": position}
    _rederive(bundle)
    assert len(bundle["contracts"]) == len(world["contracts"])
    assert not {"LicenseRequested", "AccessRecorded", "LicenseRevoked"} & _names(bundle)
    assert _accepted(bundle) is None


_LOAD = """
import sys
{imports}
from fullchain.audit.bundle import load_bundle
from fullchain.duo import parse_purpose
from fullchain.errors import VerificationFailed
from fullchain.metadata import build_metadata
try:
    load_bundle(sys.argv[1])
except VerificationFailed as exc:
    print(exc.message)
    sys.exit(3)
"""


def test_a_report_from_a_bundle_shows_the_lineage_the_chain_holds(world: dict) -> None:
    """Not a forgery: the honest bundle of dataset 2. `audit report --bundle` draws the lineage in
    both directions from the bundle's blocks, but only ancestors are proven complete: a child's
    DatasetRegistered names its parents in unindexed data, so its block is in the bundle only when
    its logsBloom happens to share a topic with the trail. Before descendants were carried, the report made from the bundle
    shows dataset 3 (its owner, pharma, is also a licensee of 2) and omits the hospital's child,
    while the report from the node shows both, and both say the lineage is what the chain holds."""
    live = build_report_data(world["index"], 2)
    assert world["child"] in [box.dataset_id for box in live.lineage]
    b = world["bundle_2"]
    with verify_bundle(b, trust_block=_head_hash(b)) as verified:
        offline = build_report_data(verified.index, 2)
    assert [box.dataset_id for box in offline.lineage] == [box.dataset_id for box in live.lineage]


def test_a_deeply_nested_batch_document_anchored_on_chain_is_a_one_line_refusal(world: dict,
                                                                               tmp_path: Path) -> None:
    """Attack: the bundle carries the anchored (digest-correct) records document of a hostile
    licensee's batch, JSON nested 100000 deep. By the time `_verify_batches` parses it, verifying
    has imported py_ecc, which raised the recursion limit to 100000: without the depth limit `fullchain audit
    verify-bundle --trust-block` dies with SIGSEGV (exit -11), no message."""
    b = world["bundle_3"]
    path = tmp_path / "bundle-3.json"
    path.write_text(json.dumps(b))
    out = subprocess.run([*fullchain_cli(), "audit", "verify-bundle", str(path), "--trust-block",
                          "0x" + _head_hash(b).hex()], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "FULLCHAIN_HOME": str(tmp_path / "auditor")})
    assert out.returncode == 1, (out.returncode, out.stdout[-1000:], out.stderr[-1000:])
    assert out.stderr.startswith("error: ") and "bug in fullchain" not in out.stderr, out.stderr


@pytest.mark.parametrize("text", [
    pytest.param('{"format": ' + "[" * 100_000 + "]" * 100_000 + "}", id="nested-deeper-than-the-recursion-limit"),
    pytest.param('{"format": "fullchain-audit-bundle/1", "chain_id": ' + "9" * 5000 + "}", id="a-5000-digit-integer"),
])
@pytest.mark.parametrize("after", [
    pytest.param("", id="alone"),
    # what `fullchain.connect` of an embedded chain imports: py-evm and py_ecc raise the recursion
    # limit (to 100000), and the JSON decoder then overflows the C stack instead of raising
    pytest.param("import eth, py_ecc", id="after-the-embedded-chain"),
])
def test_json_the_parser_cannot_take_is_a_one_line_refusal(text: str, after: str, tmp_path: Path) -> None:
    """Attack: a bundle file json.loads refuses with RecursionError / ValueError rather than
    JSONDecodeError. Without the guard load_bundle let them through: the CLI says 'unexpected RecursionError
    ... (this is a bug in fullchain; ...)', and in a process that has imported the embedded chain
    the nesting kills the interpreter with SIGSEGV (run in subprocesses here for that reason)."""
    path = tmp_path / "hostile.json"
    path.write_text(text)
    loaded = subprocess.run([sys.executable, "-c", _LOAD.format(imports=after), str(path)], capture_output=True,
                            text=True, timeout=120)
    assert loaded.returncode == 3, (loaded.returncode, loaded.stderr[-500:])
    out = subprocess.run([*fullchain_cli(), "audit", "verify-bundle", str(path)], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "FULLCHAIN_HOME": str(tmp_path / "auditor")})
    assert out.returncode == 1
    assert "bug in fullchain" not in out.stderr, out.stderr
