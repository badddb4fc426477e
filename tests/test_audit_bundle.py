"""Audit bundles: built from the demo's chain (and from anvil), verified with no node, and refused
for every kind of tampering: an edited event, a removed event (with or without its block), an edited
header, receipts moved to another block, a batch record not under its root, a forged commit seal,
a license-time violation on a chain whose validators signed it; and any value changed anywhere."""
from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import fullchain
from fullchain.audit import qbft
from fullchain.audit.bundle import (
    _event_record,
    _ProvenIndex,
    _trie_root,
    build_bundle,
    load_validators,
    subject_events,
    verify_bundle,
)
from fullchain.audit.headers import BlockHeader
from fullchain.audit.receipts import Receipt, logs_bloom
from fullchain.duo import parse_purpose
from fullchain.errors import AuditError, VerificationFailed

from .conftest import ANVIL_MNEMONIC, DEMO_PASSWORD, AnvilNode, run_cli
from .test_audit_qbft import Network

PW = {"FULLCHAIN_PASSWORD": DEMO_PASSWORD}
DATASET = 1  # the hospital's: licensed, accessed, used by the derived dataset 3


def _head_hash(bundle: dict) -> bytes:
    head = BlockHeader.from_rlp(bytes.fromhex(bundle["headers"][-1][2:]))
    return qbft.block_hash(head) if bundle["consensus"] == "qbft" else head.hash()


def refused(bundle: dict, fragment: str, **kwargs: Any) -> str:
    with pytest.raises(VerificationFailed) as caught:
        verify_bundle(bundle, **kwargs).close()
    assert fragment in caught.value.message, caught.value.message
    return caught.value.message


@pytest.fixture(scope="module")
def demo(demo_home: Path) -> dict:
    home = demo_home
    hospital = fullchain.connect("hospital", home=home, password=PW["FULLCHAIN_PASSWORD"])
    pharma = fullchain.connect("pharma", home=home, password=PW["FULLCHAIN_PASSWORD"])
    # pharma's many reads of dataset 1 under a license that allows recording them in a batch
    batched = pharma.licensing.request(DATASET, parse_purpose("GRU"), term_seconds=30 * 86400)
    hospital.licensing.grant(batched, batched_access=True)
    now = pharma.w3.eth.get_block("latest")["timestamp"]
    pharma.anchor.record_access_batch(batched, 1, 1, [(now, bytes([i]) * 32) for i in range(5)])
    index = hospital.read_index()
    bundles = {d: build_bundle(hospital.w3, index, hospital.contracts(), d, store=hospital.store) for d in (1, 3)}
    return {"home": home, "bundles": bundles, "index": index, "contracts": hospital.contracts()}


@pytest.fixture
def bundle(demo: dict) -> dict:
    return copy.deepcopy(demo["bundles"][DATASET])


def test_the_demo_bundle_verifies_and_holds_the_trail_the_index_shows(demo: dict) -> None:
    b = demo["bundles"][DATASET]
    with verify_bundle(b, trust_block=_head_hash(b)) as verified:
        checks = dict(verified.report.checks)
        assert verified.report.trusted_by == "--trust-block"
        # the proven events are exactly the index's trail of the dataset and the check's evidence
        assert [e.position for e in verified.events] == [e.position for e in subject_events(demo["index"], DATASET)]
        assert verified.report.check is not None and verified.report.check.accesses >= 1
        assert verified.report.check.ok
    assert set(checks) == {"headers", "blocks", "contracts", "events", "completeness", "batches",
                           "license at time of use"}
    assert "1 access batches, 5 records" in checks["batches"]
    assert f"{len(b['events'])} events" in checks["events"]
    names = {e["name"] for e in b["events"]}
    assert {"DatasetRegistered", "LicenseGranted", "AccessRecorded", "MemberAdmitted", "PointsCounted"} <= names
    # the pool claim the dataset's meter record earned its owner is part of its trail, and proven
    hospital = next(e.account for e in subject_events(demo["index"], DATASET) if e.name == "DatasetRegistered")
    claims = [e for e in b["events"] if e["name"] == "Claimed"]
    assert [c["args"]["account"] for c in claims] == [hospital] and claims[0]["args"]["epoch"] == "0"
    [claim] = [e for e in subject_events(demo["index"], DATASET) if e.name == "Claimed"]
    assert claim.summary == f"{hospital} claimed {claim.args['amount']} base units from the pool of epoch 0"
    # each contract's creation is proven: its address follows from the creating transaction
    assert set(b["contracts"]) == set(demo["contracts"])


def test_an_untampered_demo_bundle_verifies_from_the_cli_with_the_chain_stopped(demo: dict, tmp_path: Path) -> None:
    env = {**PW, "FULLCHAIN_HOME": str(demo["home"]), "FULLCHAIN_PROFILE": "hospital"}
    path = tmp_path / "d1.json"
    made = run_cli("audit", "bundle", "1", "-o", str(path), "--json", env=env)
    assert made.returncode == 0, made.stderr
    head = json.loads(made.stdout)["head_hash"]
    chain_dir = demo["home"] / "chain"
    chain_dir.rename(demo["home"] / "chain-stopped")  # no node: the embedded chain cannot be opened
    try:
        out = run_cli("audit", "verify-bundle", str(path), "--trust-block", head,
                      env={"FULLCHAIN_HOME": str(tmp_path / "nobody"), "FULLCHAIN_PASSWORD": None})
        assert out.returncode == 0, out.stdout + out.stderr
        assert "ok    headers:" in out.stdout and "ok    license at time of use:" in out.stdout
        assert f"Bundle verified: dataset 1, trusted block {head} (given with --trust-block)" in out.stdout
        data = json.loads(path.read_text())
        data["events"][-1]["args"] = {**data["events"][-1]["args"], "licensee": "0x" + "11" * 20}
        path.write_text(json.dumps(data))
        bad = run_cli("audit", "verify-bundle", str(path), "--trust-block", head,
                      env={"FULLCHAIN_HOME": str(tmp_path / "nobody")})
        assert bad.returncode == 1
        assert bad.stderr.startswith("error: event") and "args differs from the proven log's" in bad.stderr
        assert "ok    events" not in bad.stdout and "ok    blocks:" in bad.stdout  # what held is shown first
    finally:
        (demo["home"] / "chain-stopped").rename(chain_dir)


def test_a_report_is_made_from_a_verified_bundle_alone(demo: dict, tmp_path: Path) -> None:
    from html.parser import HTMLParser

    path, html = tmp_path / "d1.json", tmp_path / "d1.html"
    path.write_text(json.dumps(demo["bundles"][DATASET]))
    env = {"FULLCHAIN_HOME": str(tmp_path / "nobody"), "FULLCHAIN_PASSWORD": None}
    out = run_cli("audit", "report", "1", "--bundle", str(path), "-o", str(html), "--json", env=env)
    assert out.returncode == 0, out.stderr
    lines = dict((v["check"], v["result"]) for v in json.loads(out.stdout)["verification"])
    assert lines["source of the events"].startswith("the bundle d1.json, verified offline up to block 0x")
    assert {"bundle: headers", "bundle: contracts", "bundle: completeness", "bundle: batches"} <= set(lines)
    assert lines["license at time of use"].startswith("passed")
    text: list[str] = []
    parser = HTMLParser()
    parser.handle_data = text.append  # type: ignore[method-assign]
    parser.feed(html.read_text())
    assert "bundle: completeness" in text
    wrong = run_cli("audit", "report", "3", "--bundle", str(path), "-o", str(html), env=env)
    assert wrong.returncode == 2 and "is the bundle of dataset 1, not 3" in wrong.stderr
    data = json.loads(path.read_text())
    data["headers"] = data["headers"][1:]
    path.write_text(json.dumps(data))
    refused_cli = run_cli("audit", "report", "1", "--bundle", str(path), "-o", str(tmp_path / "no.html"), env=env)
    assert refused_cli.returncode == 1 and not (tmp_path / "no.html").exists()  # nothing made of a bad bundle


def test_an_edited_event_field_is_refused(bundle: dict) -> None:
    access = next(e for e in bundle["events"] if e["name"] == "AccessRecorded")
    access["args"]["version"] += 1
    refused(bundle, "its args differs from the proven log's")


def test_a_removed_event_is_refused(bundle: dict) -> None:
    bundle["events"] = [e for e in bundle["events"] if e["name"] != "LicenseRevoked" and e["name"] != "AccessRecorded"]
    refused(bundle, "missing from the bundle's events")


def test_a_removed_event_with_its_block_is_refused_by_the_headers_bloom(bundle: dict) -> None:
    access = next(e for e in bundle["events"] if e["name"] == "AccessRecorded")
    del bundle["blocks"][str(access["block"])]
    bundle["events"] = [e for e in bundle["events"] if e["block"] != access["block"]]
    refused(bundle, f"block {access['block']}'s logsBloom shows it may hold an event about dataset {DATASET}")


def test_an_edited_header_is_refused(bundle: dict) -> None:
    middle = len(bundle["headers"]) // 2
    header = BlockHeader.from_rlp(bytes.fromhex(bundle["headers"][middle][2:]))
    bundle["headers"][middle] = "0x" + replace(header, timestamp=header.timestamp + 1).rlp().hex()
    refused(bundle, "parentHash")
    last = BlockHeader.from_rlp(bytes.fromhex(bundle["headers"][-1][2:]))
    original = last.hash()
    bundle["headers"] = copy.deepcopy(bundle["headers"])
    bundle["headers"][middle] = "0x" + header.rlp().hex()
    bundle["headers"][-1] = "0x" + replace(last, gasUsed=last.gasUsed + 1).rlp().hex()
    refused(bundle, "not the trusted", trust_block=original)  # the last header: caught by the trusted hash


def test_receipts_of_another_block_are_refused(bundle: dict) -> None:
    singles = [n for n, b in bundle["blocks"].items() if len(b["receipts"]) == 1]
    a, b = singles[0], singles[1]
    bundle["blocks"][a]["receipts"], bundle["blocks"][b]["receipts"] = (bundle["blocks"][b]["receipts"],
                                                                       bundle["blocks"][a]["receipts"])
    refused(bundle, f"block {min(int(a), int(b))}'s receipts do not build its receiptsRoot")


def test_a_contract_that_is_not_the_one_created_is_refused(bundle: dict) -> None:
    bundle["contracts"]["Consortium"], bundle["contracts"]["DatasetRegistry"] = (
        bundle["contracts"]["DatasetRegistry"], bundle["contracts"]["Consortium"])
    refused(bundle, "with other code than this SDK's")


def test_a_license_time_violation_in_the_chain_itself_is_refused(bundle: dict) -> None:
    """A chain whose validators sign a history in which an access has no grant (a colluding
    majority, or a node running other contract code): every proof holds, the rules do not."""
    net = Network()

    def drop_grants(b: dict) -> None:
        for number, block in b["blocks"].items():
            receipts = []
            for encoded in block["receipts"]:
                receipt = Receipt.decode(bytes.fromhex(encoded[2:]))
                logs = tuple(log for log in receipt.logs if log.topics[0] != _topic("LicenseGranted"))
                receipts.append("0x" + replace(receipt, logs=logs, logs_bloom=logs_bloom(logs)).encode().hex())
            block["receipts"] = receipts

    forged = reforge(bundle, net, drop_grants)
    refused(forged, "license at time of use: the access at block", validators=net.validators)


def test_qbft_bundles_verify_with_their_validators_and_a_forged_seal_is_refused(bundle: dict) -> None:
    net = Network()
    sealed = reforge(bundle, net)
    with verify_bundle(sealed, validators=net.validators) as verified:
        assert verified.report.trusted_by == "validators"
        assert "every header sealed by at least 3 of the 4 validators" in dict(verified.report.checks)["commit seals"]
    with verify_bundle(sealed) as verified:
        assert dict(verified.report.checks)["commit seals"].startswith("not checked")
    with verify_bundle(sealed, trust_block=_head_hash(sealed)) as verified:  # the trusted header names its set
        assert "validators listed in the trusted block" in dict(verified.report.checks)["commit seals"]
    swapped = copy.deepcopy(sealed)
    swapped["validators"] = Network().validators
    refused(swapped, "not those its last header lists")
    forged = copy.deepcopy(sealed)
    middle = len(forged["headers"]) // 2
    header = BlockHeader.from_rlp(bytes.fromhex(forged["headers"][middle][2:]))
    keys = list(net.keys.values())
    unsealed = net.sealed(header, [])
    forged["headers"][middle] = "0x" + net.seal(unsealed, [*keys[:2], net.outsider]).rlp().hex()
    refused(forged, f"block {header.number}: commit seal 2 is by", validators=net.validators)
    refused(bundle, "the bundle's chain is not QBFT", validators=net.validators)
    refused(sealed, "lists validators", validators=Network().validators)


def test_a_batch_record_not_under_its_root_is_refused(bundle: dict) -> None:
    from fullchain.audit.anchor import ACCESS_RECORD_ENCODING, records_document
    from fullchain.audit.merkle import StandardMerkleTree

    [entry] = bundle["batches"]
    document = json.loads(entry["document"])
    values = [v["value"] for v in document["values"]]
    edited = copy.deepcopy(bundle)
    edited["batches"][0]["document"] = entry["document"].replace(str(values[0][3]), str(int(values[0][3]) - 1), 1)
    refused(edited, f"batch {entry['batch_id']}: its records document is not the one anchored")
    # a record set that is not the anchored one, even when its own tree is consistent
    values[0][3] = str(int(values[0][3]) - 1)
    other = StandardMerkleTree.of([[int(x) if i < 4 else bytes.fromhex(x[2:]) for i, x in enumerate(v)]
                                   for v in values], ACCESS_RECORD_ENCODING)
    edited["batches"][0]["document"] = records_document(other).decode()
    refused(edited, "is not the one anchored")
    dropped = copy.deepcopy(bundle)
    dropped["batches"] = []
    with verify_bundle(dropped) as verified:  # records not carried: said so, roots still proven
        assert "1 anchored batches whose records the bundle does not carry" in dict(verified.report.checks)[
            "batches not included"]
    forged = copy.deepcopy(bundle)
    forged["batches"].append(copy.deepcopy(entry))
    refused(forged, f"batch {entry['batch_id']} is not a proven access batch of this trail")


def test_any_changed_value_makes_the_bundle_fail(demo: dict) -> None:
    """Every leaf of the bundle (and every key naming a block or a contract), changed one at a
    time, is refused: nothing in it is taken on trust once the head block is."""
    original = demo["bundles"][DATASET]
    trust = _head_hash(original)
    rng = random.Random(11)
    paths = [p for p in _leaves(original) if p[0] not in ("headers", "blocks", "events")]
    for section, k in (("events", 30), ("headers", 8), ("blocks", 8)):
        paths += rng.sample([p for p in _leaves(original) if p[0] == section], k)
    keys = [("blocks", k) for k in rng.sample(sorted(original["blocks"]), 3)] + [("contracts", k) for k in
                                                                                 original["contracts"]]
    assert len(paths) > 60
    survived = []
    for path in paths:
        changed = copy.deepcopy(original)
        holder = changed
        for step in path[:-1]:
            holder = holder[step]
        holder[path[-1]] = _mutate(holder[path[-1]])
        if _verifies(changed, trust):
            survived.append(path)
    for section, key in keys:
        changed = copy.deepcopy(original)
        changed[section][_mutate(key)] = changed[section].pop(key)
        if _verifies(changed, trust):
            survived.append((section, key, "key"))
    assert survived == []


def test_the_validator_set_is_read_from_a_list_a_genesis_or_lines(tmp_path: Path) -> None:
    from fullchain.nodeconfig.extradata import encode_genesis_extra_data

    net = Network()
    (tmp_path / "v.json").write_text(json.dumps([v.upper().replace("0X", "0x") for v in net.validators]))
    (tmp_path / "genesis.json").write_text(json.dumps({"extraData": "0x" + encode_genesis_extra_data(
        net.validators).hex()}))
    (tmp_path / "v.txt").write_text("# validators\n" + "\n".join(net.validators) + "\n")
    for name in ("v.json", "genesis.json", "v.txt"):
        assert load_validators(tmp_path / name) == net.validators
    (tmp_path / "bad.json").write_text('{"nothing": 1}')
    with pytest.raises(AuditError, match="holds no validator list"):
        load_validators(tmp_path / "bad.json")


def test_bundles_of_an_anvil_chain_verify_and_refuse_tampering(anvil: AnvilNode, tmp_path: Path) -> None:
    from eth_account import Account

    from fullchain.backends.rpc import open_rpc
    from fullchain.transactions import Transactor

    from .test_index import build_world

    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/7")
    funding = Transactor(open_rpc(anvil.url), lambda: funder, funder.address)
    files = tmp_path / "files"
    files.mkdir()
    fc = build_world(tmp_path / "home", files, chain=anvil.url, fund=lambda a: funding.transfer(a, 10**20))
    hospital = fc["hospital"]
    made = build_bundle(hospital.w3, hospital.read_index(), hospital.contracts(), 1)
    assert made["consensus"] == "ethereum" and made["chain_id"] == 31337
    with verify_bundle(made, trust_block=bytes(hospital.w3.eth.get_block("latest")["hash"])) as verified:
        names = [e.name for e in verified.events]
        assert names.count("AccessRecorded") == 1 and "LicenseRenewed" in names
    made["events"] = [e for e in made["events"] if e["name"] != "LicenseRenewed"]
    refused(made, "LicenseRenewed event at block")


# ---- helpers ----

def _topic(name: str) -> bytes:
    from fullchain.index._decode import event_types

    return next(t for t, e in event_types("DataUseLicensing").items() if e.name == name)


def reforge(bundle: dict, net: Network, edit: Callable[[dict], None] | None = None) -> dict:
    """The bundle's chain as a QBFT chain sealed by `net` (after `edit` changed its blocks):
    headers re-linked and re-sealed, roots and blooms recomputed, events re-derived."""
    b = copy.deepcopy(bundle)
    if edit is not None:
        edit(b)
    headers: list[BlockHeader] = []
    for i, encoded in enumerate(b["headers"]):
        h = BlockHeader.from_rlp(bytes.fromhex(encoded[2:]))
        block = b["blocks"].get(str(h.number))
        if block is not None:
            receipts = [bytes.fromhex(r[2:]) for r in block["receipts"]]
            bloom = 0
            for r in receipts:
                bloom |= int.from_bytes(Receipt.decode(r).logs_bloom, "big")
            h = replace(h, receiptsRoot=_trie_root(receipts), logsBloom=bloom.to_bytes(256, "big"))
        parent = qbft.block_hash(headers[-1]) if headers else h.parentHash
        unsealed = net.unsealed(h.number, parent)
        unsealed = replace(h, parentHash=parent, miner=unsealed.miner, mixHash=qbft.MIX_HASH, difficulty=1,
                           extraData=unsealed.extraData)
        headers.append(net.seal(unsealed, list(net.keys.values())[i % 2:][:3]))
    b["headers"] = ["0x" + h.rlp().hex() for h in headers]
    b["consensus"] = "qbft"
    b["validators"] = net.validators
    blocks = {int(n): ([bytes.fromhex(t[2:]) for t in v["transactions"]], [bytes.fromhex(r[2:]) for r in v["receipts"]])
              for n, v in b["blocks"].items()}
    addresses = {name: c["address"] for name, c in b["contracts"].items()}
    with _ProvenIndex(headers, blocks, addresses) as proven:
        b["events"] = [_event_record(e) for e in subject_events(proven.index, int(b["dataset_id"]))]
    return b


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*path, i))]
    return [path]


def _mutate(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if value is None:
        return 0
    if isinstance(value, str) and value.startswith("0x") and len(value) > 2:
        last = value[-1]
        return value[:-1] + format((int(last, 16) + 1) % 16, "x")
    if isinstance(value, str) and value.isdigit():
        return str(int(value) + 1)
    return value + "x"


def _verifies(bundle: dict, trust: bytes) -> bool:
    try:
        verify_bundle(bundle, trust_block=trust).close()
    except VerificationFailed:
        return False
    return True
