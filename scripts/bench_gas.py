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

Measured in steady state: one dataset and one license request exist before the measured ones,
so the registry's and the licensing contract's counters are not written from zero. The first
registration and the first request of a fresh deployment, which pay for that once, are reported
apart under "first_in_deployment" (not held to the goals).
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
         "license_revoke", "record_access")


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
    terms = (expires, DS, DISEASE, MODIFIERS, True)
    send(hospital, licensing.functions.grant(license_id, terms, digest("bundle:pharma:v2")), LICENSING, "license_grant")
    version = licensing.functions.license(license_id).call()[4]  # fromVersion
    send(pharma, licensing.functions.recordAccess(license_id, version, 0), LICENSING, "record_access")
    send(hospital, licensing.functions.revoke(license_id), LICENSING, "license_revoke")
    if licensing.functions.isValid(license_id).call():
        raise RuntimeError("the revoked license is still valid")
    return gas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is not met")
    args = parser.parse_args(argv)

    def on_term(signum: int, _frame: Any) -> None:  # make `finally` stop anvil on SIGTERM too
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    anvil = Anvil()
    try:
        measured = measure(anvil.url)
    finally:
        anvil.stop()
    gas = {k: measured[k] for k in ORDER}
    first = {k: measured[f"first_{k}"] for k in ("dataset_register", "license_request")}
    result = {"gas": gas, "goals": GOALS, "met": {k: gas[k] <= goal for k, goal in GOALS.items()},
              "first_in_deployment": first}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if args.check and not all(result["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
