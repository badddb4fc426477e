#!/usr/bin/env python3
"""Gas used by the fullchain transactions a consortium sends most, against the gas goals.

    .venv/bin/python scripts/bench_gas.py                # JSON on stdout
    .venv/bin/python scripts/bench_gas.py --out gas.json # also written to a file
    .venv/bin/python scripts/bench_gas.py --check        # exit 1 when a goal is missed

Starts its own anvil on a free loopback port (stopped by its pid at the end, also on error),
deploys Consortium, DatasetRegistry and DataUseLicensing with the SDK and prints
`{"gas": {...}, "goals": {...}, "met": {...}}`. Each figure is the receipt's gasUsed: the whole
transaction, the 21,000 base cost and calldata included.

- consortium_vote: a second governor's approve() of a pending admission (threshold 2).
- dataset_register: registerDataset with a realistic first version (salted commitment, payload
  and metadata CID digests, size, SDTM, restricted tier, the owner's wrapped-key digest), no
  parents.
- dataset_version: registerVersion of a second version, with the owner's key digest.
- license_request: a disease-specific (DS + MONDO term) request with two modifiers, a 90-day
  term and a justification hash.
- license_grant: its grant as requested, for 60 days, future versions covered, with the digest
  of the licensee's wrapped key bundle.
- record_access: the licensee recording a fetch of the licensed version.
- license_revoke: the owner revoking that license.

- meter_submit: a member's ContributionMeter.submit of a data record about a dataset version.
- meter_attest: the attestation that makes a data record count (one attestation required) for a
  dataset whose patient consented: the member's, the dimension's, the patient's and the
  patients' totals all move.
- pool_fund: BenefitDistributor.fund of an epoch's first deposit (SettlementToken transferFrom,
  the balance measured around it, the epoch's split snapshot taken).
- pool_claim_3 / pool_claim_300: a member's claim of its share of a finalized epoch in which 3,
  resp. 300 members have points (the same kind of member in both: data points only, claiming
  for the first time, after another member's claim of that epoch). claim_gas_ratio_300_vs_3 is
  their ratio: a claim costs the same whatever the number of members.

Measured in steady state: one dataset and one license request exist before the measured ones,
so the registry's and the licensing contract's counters are not written from zero. The first
registration and the first request of a fresh deployment, which pay for that once, are reported
apart under "first_in_deployment" (not held to the goals). The distribution figures come from a
second consortium of 300 hospitals, a governor, an attester and a patient, on the same anvil
(started with a higher block gas limit and enough accounts for them).
"""
from __future__ import annotations

import argparse
import json
import hashlib
import signal
import sys
from pathlib import Path
from typing import Any

from devnodes import ANVIL_MNEMONIC, Anvil

ROOT = Path(__file__).resolve().parent.parent
LICENSING = "DataUseLicensing"
GOALS = {"dataset_register": 200_000, "license_grant": 150_000, "license_revoke": 50_000, "record_access": 60_000}
RATIO_GOALS = {"claim_gas_ratio_300_vs_3": 1.05}
MANY = 300  # members with points in the large epoch
# 300 founders make a constructor larger than the initcode limit: a dev node may lift it.
ANVIL_OPTIONS = ("--gas-limit", "1000000000", "--accounts", str(MANY + 5), "--disable-code-size-limit")
RAW, DAG_PB = 0x55, 0x70
STANDARD_SDTM, TIER_RESTRICTED = 1, 2
DS = 7
DISEASE = b"MONDO:0005015".ljust(32, b"\0")
MODIFIERS = 0b11  # two DUO modifier bits (e.g. non-commercial use, publication required)
DAY = 86400




def digest(label: str) -> bytes:
    """A fixed 32-byte value that looks like a hash, so that the figures are reproducible
    (calldata gas depends on the number of zero bytes)."""
    return hashlib.sha256(label.encode()).digest()


def version_input(tag: str) -> tuple:
    """A VersionInput as the SDK builds it for an encrypted SDTM dataset of ~48 MB."""
    return (digest(f"{tag}:commitment"),  # salted commitment to the plaintext
            digest(f"{tag}:payload"),  # sha2-256 digest of the encrypted payload's CID (dag-pb)
            digest(f"{tag}:metadata"),  # sha2-256 digest of the metadata document's CID (raw)
            48_213_504, DAG_PB, RAW, STANDARD_SDTM, TIER_RESTRICTED,
            digest(f"{tag}:owner-key"))  # digest of the owner's own wrapped key bundle


ORDER = ("consortium_vote", "dataset_register", "dataset_version", "license_request", "license_grant",
         "license_revoke", "record_access", "meter_submit", "meter_attest", "pool_fund", "pool_claim_3",
         "pool_claim_300")


def measure(url: str) -> dict[str, int]:
    """Gas of every transaction in ORDER, plus `first_*`: the same calls as the first of their
    kind in a fresh deployment."""
    from eth_account import Account
    from web3.logs import DISCARD

    from fullchain.backends.rpc import open_rpc
    from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
    from fullchain.contracts import DATASET_REGISTRY, bind, deploy_contract
    from fullchain.models import Role
    from fullchain.transactions import Transactor

    w3 = open_rpc(url)
    Account.enable_unaudited_hdwallet_features()
    accounts = [Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(5)]
    node_accounts = w3.eth.accounts[:5]
    if [a.address for a in accounts] != node_accounts:
        raise RuntimeError(f"anvil's accounts {node_accounts} are not the default mnemonic's")
    hospital, pharma, cro, gov, newcomer = (Transactor(w3, lambda a=a: a, a.address) for a in accounts)

    founders = [Founder(t.address, r, digest(f"hpke:{i}")) for i, (t, r) in enumerate(
        ((hospital, Role.HOSPITAL | Role.GOVERNOR), (gov, Role.REGULATOR | Role.GOVERNOR), (pharma, Role.PHARMA),
         (cro, Role.CRO)))]
    consortium, _ = deploy_consortium(hospital, w3, founders, threshold=2)
    registry_address, _ = deploy_contract(hospital, w3, DATASET_REGISTRY, consortium)
    licensing_address, _ = deploy_contract(hospital, w3, LICENSING, consortium, registry_address)
    registry = bind(w3, DATASET_REGISTRY, registry_address).functions
    licensing = bind(w3, LICENSING, licensing_address)
    gas: dict[str, int] = {}

    def send(tx: Transactor, fn: Any, contract: str, key: str | None = None) -> Any:
        receipt = tx.call_function(fn, contract=contract)
        if key:
            gas[key] = int(receipt["gasUsed"])
        return receipt

    # governance: the proposer's approval counts, the second governor's approve() is measured
    proposal = ConsortiumClient(w3, consortium, hospital).propose_admit(newcomer.address, Role.CRO,
                                                                        digest("hpke:newcomer"))
    send(gov, ConsortiumClient(w3, consortium, gov).contract.functions.approve(proposal), "Consortium",
         "consortium_vote")

    # datasets: a warm-up registration, then the measured ones
    send(hospital, registry.registerDataset(version_input("warm-up"), []), DATASET_REGISTRY, "first_dataset_register")
    receipt = send(hospital, registry.registerDataset(version_input("v1"), []), DATASET_REGISTRY, "dataset_register")
    registered = bind(w3, DATASET_REGISTRY, registry_address).events.DatasetRegistered()
    dataset = registered.process_receipt(receipt, errors=DISCARD)[0]["args"]["datasetId"]
    send(hospital, registry.registerVersion(dataset, version_input("v2")), DATASET_REGISTRY, "dataset_version")

    # licensing: a warm-up request (rejected), then request, grant, use, revoke
    warm = licensing.functions.request(dataset, DS, DISEASE, MODIFIERS, 90 * DAY, digest("justification:cro"))
    send(cro, warm, LICENSING, "first_license_request")
    send(hospital, licensing.functions.reject(1), LICENSING)
    receipt = send(pharma, licensing.functions.request(dataset, DS, DISEASE, MODIFIERS, 90 * DAY,
                                                       digest("justification:pharma")), LICENSING, "license_request")
    requested = licensing.events.LicenseRequested().process_receipt(receipt, errors=DISCARD)
    license_id = requested[0]["args"]["licenseId"]
    expires = w3.eth.get_block("latest")["timestamp"] + 60 * DAY
    terms = (expires, DS, DISEASE, MODIFIERS, True, False)  # futureVersions, batchedAccess
    send(hospital, licensing.functions.grant(license_id, terms, digest("bundle:pharma:v2")), LICENSING, "license_grant")
    version = licensing.functions.license(license_id).call()[5]  # fromVersion
    send(pharma, licensing.functions.recordAccess(license_id, version, 0), LICENSING, "record_access")
    send(hospital, licensing.functions.revoke(license_id), LICENSING, "license_revoke")
    if licensing.functions.isValid(license_id).call():
        raise RuntimeError("the revoked license is still valid")
    return gas


def measure_distribution(url: str) -> dict[str, int]:
    """Gas of the metering and distribution transactions: epoch 0 with 3 members' points,
    epoch 1 with MANY members' points, both finalized, funded and claimed."""
    from eth_account import Account
    from web3.logs import DISCARD

    from fullchain.backends.rpc import open_rpc
    from fullchain.consortium import Founder, deploy_consortium
    from fullchain.contracts import (
        BENEFIT_DISTRIBUTOR,
        CONTRIBUTION_METER,
        DATA_USE_LICENSING,
        DATASET_REGISTRY,
        SETTLEMENT_TOKEN,
        bind,
        deploy_contract,
    )
    from fullchain.metering.meter import dataset_subject, deploy_meter
    from fullchain.models import Role
    from fullchain.transactions import Transactor

    w3 = open_rpc(url)
    Account.enable_unaudited_hdwallet_features()
    keys = [Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(MANY + 3)]
    gov, attester, patient, *members = (Transactor(w3, lambda a=a: a, a.address) for a in keys)
    founders = [Founder(gov.address, Role.GOVERNOR, digest("hpke:gov")),
                Founder(attester.address, Role.ATTESTER, digest("hpke:attester")),
                Founder(patient.address, Role.PATIENT, digest("hpke:patient")),
                *(Founder(m.address, Role.HOSPITAL, digest(f"hpke:m{i}")) for i, m in enumerate(members))]
    consortium, _ = deploy_consortium(gov, w3, founders, threshold=1)
    registry, _ = deploy_contract(gov, w3, DATASET_REGISTRY, consortium)
    licensing, _ = deploy_contract(gov, w3, DATA_USE_LICENSING, consortium, registry)
    receipt = members[0].call_function(bind(w3, DATASET_REGISTRY, registry).functions.registerDataset(
        version_input("consented"), []), contract=DATASET_REGISTRY)
    events = bind(w3, DATASET_REGISTRY, registry).events.DatasetRegistered()
    dataset = events.process_receipt(receipt, errors=DISCARD)[0]["args"]["datasetId"]
    members[0].call_function(bind(w3, DATA_USE_LICENSING, licensing).functions.requireConsent(
        dataset, patient.address), contract=DATA_USE_LICENSING)
    meter_address, _ = deploy_meter(gov, w3, consortium, licensing, epoch_length=3600, dispute_window=3600)
    meter = bind(w3, CONTRIBUTION_METER, meter_address).functions
    split = (gov.address, 1_000, 1_000, 4_000, 2_500, 1_500)
    dist_address, _ = deploy_contract(gov, w3, BENEFIT_DISTRIBUTOR, consortium, meter_address, split, 90 * DAY)
    dist = bind(w3, BENEFIT_DISTRIBUTOR, dist_address).functions
    token_address, _ = deploy_contract(gov, w3, SETTLEMENT_TOKEN, consortium)
    token = bind(w3, SETTLEMENT_TOKEN, token_address).functions
    gas: dict[str, int] = {}
    records = 0

    def send(tx: Transactor, fn: Any, contract: str, key: str | None = None) -> None:
        receipt = tx.call_function(fn, contract=contract)
        if key:
            gas[key] = int(receipt["gasUsed"])

    def contribute(epoch: int, member: Transactor, subject: bytes, submit_key: str | None = None,
                   attest_key: str | None = None) -> None:
        nonlocal records
        send(member, meter.submit(epoch, 0, subject, 1_000 + records, digest(f"evidence:{records}")),
             CONTRIBUTION_METER, submit_key)
        records += 1
        send(attester, meter.attest(records), CONTRIBUTION_METER, attest_key)

    def travel(seconds: int) -> None:
        w3.provider.make_request("evm_increaseTime", [seconds])
        w3.provider.make_request("evm_mine", [])

    # epoch 0: three members; the third's submit and the consented record's attestation measured
    contribute(0, members[1], digest("subject:1"))
    contribute(0, members[0], dataset_subject(dataset, 1), attest_key="meter_attest")
    contribute(0, members[2], dataset_subject(dataset + 1, 1), submit_key="meter_submit")
    travel(3600)
    for i, member in enumerate(members):  # epoch 1: every member
        contribute(1, member, digest(f"subject:{i}"))
    travel(2 * 3600)
    send(gov, meter.finalize(0), CONTRIBUTION_METER)
    send(gov, meter.finalize(1), CONTRIBUTION_METER)

    send(gov, token.mint(gov.address, 10**24), SETTLEMENT_TOKEN)
    send(gov, token.approve(dist_address, 10**24), SETTLEMENT_TOKEN)
    send(gov, dist.fund(0, token_address, 10**21 + 7), BENEFIT_DISTRIBUTOR)
    send(gov, dist.fund(1, token_address, 10**21 + 13), BENEFIT_DISTRIBUTOR, "pool_fund")
    for epoch, claimer, key in ((0, members[2], "pool_claim_3"), (1, members[MANY // 2], "pool_claim_300")):
        send(members[1], dist.claim(epoch, token_address), BENEFIT_DISTRIBUTOR)  # the epoch's first claim
        send(claimer, dist.claim(epoch, token_address), BENEFIT_DISTRIBUTOR, key)
    return gas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is not met")
    args = parser.parse_args(argv)

    def on_term(signum: int, _frame: Any) -> None:  # make `finally` stop anvil on SIGTERM too
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    anvil = Anvil(*ANVIL_OPTIONS)
    try:
        measured = measure(anvil.url)
        measured.update(measure_distribution(anvil.url))
    finally:
        anvil.stop()
    gas = {k: measured[k] for k in ORDER}
    first = {k: measured[f"first_{k}"] for k in ("dataset_register", "license_request")}
    ratios = {"claim_gas_ratio_300_vs_3": round(gas["pool_claim_300"] / gas["pool_claim_3"], 4)}
    met = {k: gas[k] <= goal for k, goal in GOALS.items()} | {k: ratios[k] <= goal for k, goal in RATIO_GOALS.items()}
    result = {"gas": gas, "ratios": ratios, "goals": GOALS | RATIO_GOALS, "met": met, "first_in_deployment": first}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if args.check and not all(result["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
