"""BenefitDistributor and SettlementToken, on the embedded chain and on anvil (the `chain` fixture),
with a real ContributionMeter, DataUseLicensing and Consortium behind them.

Every restricted function is called by someone not entitled to it and must revert with the named
custom error; the pool rules (split snapshot, funding window, claims, sweep) are checked with exact
amounts from a Python model of the rules; and on the embedded chain hypothesis drives random members,
points, splits, deposits and claim orders against the money invariants.

Speed: transactions expected to succeed are sent with a fixed gas limit (no estimate: it runs the
call again, tripling the cost on the embedded chain) and must succeed; transactions expected to fail
go through Transactor.call_function, whose preflight decodes the custom error. Each test runs between
an evm_snapshot and an evm_revert, so its time travel does not move the shared chains' clocks.
"""
from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import solcx

import fullchain
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.logs import DISCARD

from fullchain.consortium import Founder, deploy_consortium
from fullchain.contracts import (
    BENEFIT_DISTRIBUTOR,
    CONSORTIUM,
    CONTRIBUTION_METER,
    DATA_USE_LICENSING,
    DATASET_REGISTRY,
    SETTLEMENT_TOKEN,
    artifact,
    bind,
    decode_revert,
    deploy_contract,
)
from fullchain.errors import TransactionReverted
from fullchain.metering.meter import dataset_subject
from fullchain.models import Role
from fullchain.transactions import Transactor
from scripts.devnodes import ANVIL_MNEMONIC, Anvil

ROOT = Path(__file__).resolve().parent.parent
GAS = 2_000_000
DEPLOY_GAS = 6_000_000
EVIDENCE = b"\x11" * 32
SCALE = 10**18
BPS = 10_000
EPOCH = 60  # the shortest epoch and dispute window the meter allows: finalizable two minutes on
WINDOW = 60
CLAIM_WINDOW = 3600  # BenefitDistributor.MIN_CLAIM_WINDOW
DATA, ALGORITHM, COMPUTE = 0, 1, 2  # dimensions; with all weights 1e18 the kinds 0, 1, 2 give points = amount
MEMBERS = 6
BIG = 10**40


class Actor:
    """An account with its own transactor, calling the contracts directly (past the SDK)."""

    def __init__(self, name: str, account: LocalAccount, w3: Web3) -> None:
        self.name = name
        self.account = account
        self.address = account.address
        self.w3 = w3
        self.reset()

    def reset(self) -> None:
        """A fresh transactor: after an evm_revert the local nonce is ahead of the chain's."""
        self.tx = Transactor(self.w3, lambda: self.account, self.address)

    def deploy(self, name: str, *args: object) -> str:
        """Deploy contract `name` (fixed gas, no preflight); its address."""
        art = artifact(name)
        ctor = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args)
        receipt = self.tx.send({"from": self.address, "gas": DEPLOY_GAS, "data": ctor.data_in_transaction})
        assert receipt["status"] == 1, f"{self.name}: deploying {name}{args} reverted"
        return receipt["contractAddress"]

    def send(self, contract: Any, fn: str, *args: object) -> Any:
        """A transaction that must succeed (fixed gas, no preflight)."""
        call = getattr(contract.functions, fn)(*args)
        receipt = self.tx.send({"from": self.address, "to": contract.address, "gas": GAS,
                                "data": call._encode_transaction_data()})
        assert receipt["status"] == 1, f"{self.name}: {fn}{args} reverted"
        return receipt

    def reverts(self, error: str, contract_name: str, contract: Any, fn: str, *args: object) -> dict:
        """The call must revert with the custom error `error`; its arguments."""
        with pytest.raises(TransactionReverted) as info:
            self.tx.call_function(getattr(contract.functions, fn)(*args), contract=contract_name)
        assert info.value.error_name == error, info.value
        return info.value.error_args


@dataclass
class Pools:
    """One meter and the distributor paying out its epochs (fresh per test or example)."""

    meter: Any
    dist: Any
    split: tuple
    records: int = 0


@dataclass
class World:
    chain: Any
    gov: Actor  # the only governor (threshold 1): its call proposals execute at once
    att: Actor  # attester
    members: list[Actor]  # hospitals that submit contributions
    patients: list[Actor]
    ops: Actor  # the operations account (not a member)
    funder: Actor  # not a member: anyone may fund
    stranger: Actor
    consortium: Any = None
    token: Any = None
    datasets: list[int] = field(default_factory=list)  # datasets[i] needs patients[i]'s consent
    licensing: str = ""

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    def actors(self) -> list[Actor]:
        return [self.gov, self.att, *self.members, *self.patients, self.ops, self.funder, self.stranger]

    def default_split(self) -> tuple:
        return (self.ops.address, 1_000, 1_000, 4_000, 2_500, 1_500)

    def pools(self, split: tuple | None = None) -> Pools:
        """A new meter (epoch 0 starts now; every kind weighs 1e18: points = amount) and distributor."""
        split = split or self.default_split()
        meter = self.gov.deploy(CONTRIBUTION_METER, self.consortium.address, self.licensing, EPOCH, WINDOW, 1,
                                [SCALE] * 4)
        dist = self.gov.deploy(BENEFIT_DISTRIBUTOR, self.consortium.address, meter, split, CLAIM_WINDOW)
        return Pools(bind(self.w3, CONTRIBUTION_METER, meter), bind(self.w3, BENEFIT_DISTRIBUTOR, dist), split)

    def contribute(self, p: Pools, member: Actor, dimension: int, amount: int, subject: bytes | None = None,
                   epoch: int = 0) -> int:
        """A counted record of `amount` points; subject: a digest unless a dataset subject is given."""
        subject = subject or secrets.token_bytes(32)
        member.send(p.meter, "submit", epoch, dimension, subject, amount, EVIDENCE)
        p.records += 1
        self.att.send(p.meter, "attest", p.records)
        return p.records

    def finalize(self, p: Pools, epoch: int = 0) -> int:
        """Travel past the epoch's dispute window and finalize it; the finalization time."""
        _, _, closes = p.meter.functions.epochBounds(epoch).call()
        travel(self.chain, closes)
        receipt = self.stranger.send(p.meter, "finalize", epoch)
        return self.w3.eth.get_block(receipt["blockNumber"])["timestamp"]

    def fund(self, p: Pools, amount: int, epoch: int = 0) -> Any:
        self.funder.send(self.token, "approve", p.dist.address, amount)
        return self.funder.send(p.dist, "fund", epoch, self.token.address, amount)

    def govern(self, contract: Any, fn: str, *args: object) -> Any:
        """A call proposal of the governor, executed at once (threshold 1); the execution receipt."""
        data = bytes.fromhex(getattr(contract.functions, fn)(*args)._encode_transaction_data()[2:])
        receipt = self.gov.send(self.consortium, "proposeCall", contract.address, data)
        pid = self.consortium.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["proposalId"]
        return self.gov.send(self.consortium, "execute", pid)

    def govern_fails(self, contract: Any, fn: str, *args: object) -> tuple[str, dict]:
        """The call proposal's execution fails: the target's decoded error."""
        data = bytes.fromhex(getattr(contract.functions, fn)(*args)._encode_transaction_data()[2:])
        receipt = self.gov.send(self.consortium, "proposeCall", contract.address, data)
        pid = self.consortium.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["proposalId"]
        err = self.gov.reverts("ConsortiumCallFailed", CONSORTIUM, self.consortium, "execute", pid)
        return decode_revert(BENEFIT_DISTRIBUTOR, err["reason"])

    def remove(self, member: Actor) -> None:
        receipt = self.gov.send(self.consortium, "proposeRemove", member.address)
        pid = self.consortium.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)[0]["args"]["proposalId"]
        self.gov.send(self.consortium, "execute", pid)

    def balance(self, actor: Actor | str) -> int:
        address = actor if isinstance(actor, str) else actor.address
        return self.token.functions.balanceOf(address).call()


def travel(chain: Any, timestamp: int) -> None:
    """The next blocks are stamped at `timestamp` or later."""
    if timestamp <= chain.w3.eth.get_block("latest")["timestamp"]:
        return
    if chain.kind == "embedded":
        answer = chain.w3.provider.make_request("testing_timeTravel", [timestamp])
    else:
        chain.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
        answer = chain.w3.provider.make_request("evm_mine", [])
    assert not answer.get("error"), answer


def events(contract: Any, receipt: Any, name: str) -> list[dict]:
    return [dict(e["args"]) for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)]


_WORLDS: dict[str, World] = {}


def make_world(chain: Any) -> World:
    names = ["gov", "att", *(f"m{i}" for i in range(MEMBERS)), "p0", "p1", "ops", "funder", "stranger"]
    accounts = {n: chain.account()[0] for n in names}
    actors = {n: Actor(n, a, chain.w3) for n, a in accounts.items()}
    roles = {"gov": Role.GOVERNOR, "att": Role.ATTESTER, "p0": Role.PATIENT, "p1": Role.PATIENT,
             **{f"m{i}": Role.HOSPITAL for i in range(MEMBERS)}}
    founders = [Founder(accounts[n].address, r, secrets.token_bytes(32)) for n, r in roles.items()]
    w = World(chain=chain, gov=actors["gov"], att=actors["att"], members=[actors[f"m{i}"] for i in range(MEMBERS)],
              patients=[actors["p0"], actors["p1"]], ops=actors["ops"], funder=actors["funder"],
              stranger=actors["stranger"])
    consortium, _ = deploy_consortium(w.gov.tx, chain.w3, founders, threshold=1, voting_period=3600)
    w.consortium = bind(chain.w3, CONSORTIUM, consortium)
    registry, _ = deploy_contract(w.gov.tx, chain.w3, DATASET_REGISTRY, consortium)
    w.licensing, _ = deploy_contract(w.gov.tx, chain.w3, DATA_USE_LICENSING, consortium, registry)
    token, _ = deploy_contract(w.gov.tx, chain.w3, SETTLEMENT_TOKEN, consortium)
    w.token = bind(chain.w3, SETTLEMENT_TOKEN, token)
    w.gov.send(w.token, "mint", w.funder.address, BIG)
    registry_c = bind(chain.w3, DATASET_REGISTRY, registry)
    licensing_c = bind(chain.w3, DATA_USE_LICENSING, w.licensing)
    for patient in w.patients:
        version = (secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32), 1234, 0x70, 0x55, 1, 2,
                   secrets.token_bytes(32))
        receipt = w.members[0].send(registry_c, "registerDataset", version, [])
        dataset = events(registry_c, receipt, "DatasetRegistered")[0]["datasetId"]
        w.members[0].send(licensing_c, "requireConsent", dataset, patient.address)
        w.datasets.append(dataset)
    return w


def snapshot(w3: Web3) -> Any:
    return w3.provider.make_request("evm_snapshot", [])["result"]


def revert(world: World, snap: Any) -> None:
    answer = world.w3.provider.make_request("evm_revert", [snap])
    assert not answer.get("error"), answer
    for actor in world.actors():
        actor.reset()


@pytest.fixture
def world(chain: Any) -> Iterator[World]:
    """One consortium, licensing and token per backend for the module; each test runs on a
    snapshot of it that is reverted afterwards (its own meter and distributor, its own clock)."""
    if chain.kind not in _WORLDS:
        _WORLDS[chain.kind] = make_world(chain)
    w = _WORLDS[chain.kind]
    snap = snapshot(w.w3)
    yield w
    revert(w, snap)


# ---- the rules as a Python model ----

def budgets(pool: int, split: tuple) -> dict[str, int]:
    _, ops, patients, data, algorithm, compute = split
    return {k: pool * bps // BPS for k, bps in
            (("operations", ops), ("patients", patients), (DATA, data), (ALGORITHM, algorithm), (COMPUTE, compute))}


def entitlements(pool: int, split: tuple, points: dict, patient_points: dict) -> dict[str, int]:
    """account -> entitlement; points: dimension -> {account: points}; patient_points: {account: points}."""
    b = budgets(pool, split)
    due: dict[str, int] = defaultdict(int)
    for dimension, per_account in points.items():
        total = sum(per_account.values())
        for account, pts in per_account.items():
            if pts:
                due[account] += b[dimension] * pts // total
    total = sum(patient_points.values())
    for account, pts in patient_points.items():
        if pts:
            due[account] += b["patients"] * pts // total
    due[split[0]] += b["operations"]
    return dict(due)


# ---- access control and validation (both backends) ----

def test_restricted_functions_refuse_the_wrong_caller(world: World) -> None:
    p = world.pools()
    other = (world.gov.address, 0, 0, 10_000, 0, 0)
    # Governance answers to the Consortium contract only, not even to a governor.
    for fn, args in [("setSplit", (other,)), ("setClaimWindow", (7200,)), ("sweep", (0, world.token.address, 1))]:
        for who in (world.gov, world.stranger):
            err = who.reverts("BenefitDistributorNotConsortium", BENEFIT_DISTRIBUTOR, p.dist, fn, *args)
            assert err == {"caller": who.address}
    # Minting: active governors only.
    for who in (world.members[0], world.stranger, world.ops):
        err = who.reverts("SettlementTokenNotGovernor", SETTLEMENT_TOKEN, world.token, "mint", who.address, 1)
        assert err == {"caller": who.address}
    world.gov.send(world.token, "mint", world.stranger.address, 5)
    assert world.balance(world.stranger) == 5
    # The same calls pass through an executed proposal.
    receipt = world.govern(p.dist, "setClaimWindow", 7200)
    assert events(p.dist, receipt, "ClaimWindowChanged") == [{"window": 7200}]
    assert p.dist.functions.claimWindow().call() == 7200
    receipt = world.govern(p.dist, "setSplit", other)
    assert events(p.dist, receipt, "SplitChanged")[0]["dataBps"] == 10_000
    assert p.dist.functions.consortium().call() == world.consortium.address
    assert p.dist.functions.meter().call() == p.meter.address
    assert (world.token.functions.name().call(), world.token.functions.symbol().call(),
            world.token.functions.decimals().call()) == ("Fullchain Settlement", "FCS", 18)


def test_split_and_window_validation(world: World) -> None:
    consortium, meter = world.consortium.address, world.consortium.address  # never reached: validation first
    ops = world.ops.address
    for split, error, args in [
        ((ops, 1_000, 1_000, 4_000, 2_500, 1_499), "BenefitDistributorInvalidSplit", {"totalBps": 9_999}),
        ((ops, 10_000, 1, 0, 0, 0), "BenefitDistributorInvalidSplit", {"totalBps": 10_001}),
        ((ops, 0, 0, 0, 0, 0), "BenefitDistributorInvalidSplit", {"totalBps": 0}),
        (("0x" + "00" * 20, 1, 0, 9_999, 0, 0), "BenefitDistributorInvalidOperations",
         {"operations": "0x" + "00" * 20, "operationsBps": 1}),
    ]:
        with pytest.raises(TransactionReverted) as info:
            deploy_contract(world.gov.tx, world.w3, BENEFIT_DISTRIBUTOR, consortium, meter, split, CLAIM_WINDOW)
        assert (info.value.error_name, info.value.error_args) == (error, args)
    for window in (3599, 10 * 365 * 86400 + 1):
        with pytest.raises(TransactionReverted) as info:
            deploy_contract(world.gov.tx, world.w3, BENEFIT_DISTRIBUTOR, consortium, meter, world.default_split(),
                            window)
        assert info.value.error_name == "BenefitDistributorInvalidClaimWindow"
        assert info.value.error_args == {"window": window, "min": 3600, "max": 10 * 365 * 86400}
    # No operations address is fine when operations get nothing.
    deploy_contract(world.gov.tx, world.w3, BENEFIT_DISTRIBUTOR, consortium, meter,
                    ("0x" + "00" * 20, 0, 0, 10_000, 0, 0), CLAIM_WINDOW)

    p = world.pools()
    assert world.govern_fails(p.dist, "setSplit", (ops, 5_000, 5_000, 1, 0, 0)) == (
        "BenefitDistributorInvalidSplit", {"totalBps": 10_001})
    assert world.govern_fails(p.dist, "setClaimWindow", 59) == (
        "BenefitDistributorInvalidClaimWindow", {"window": 59, "min": 3600, "max": 10 * 365 * 86400})
    assert tuple(p.dist.functions.currentSplit().call()) == world.default_split()


# ---- funding, split snapshot, claims ----

def test_split_snapshot_and_funding_window(world: World) -> None:
    p = world.pools()
    world.contribute(p, world.members[0], DATA, 10)
    token = world.token.address
    err = world.funder.reverts("BenefitDistributorInvalidAmount", BENEFIT_DISTRIBUTOR, p.dist, "fund", 0, token, 0)
    assert err == {"amount": 0}
    receipt = world.fund(p, 1_000)
    assert events(p.dist, receipt, "SplitFixed") == [{"epoch": 0}]
    assert events(p.dist, receipt, "Funded") == [{"epoch": 0, "token": token, "funder": world.funder.address,
                                                  "amount": 1_000}]
    # A later split applies to epochs not yet funded; the funded epoch keeps its snapshot.
    new = (world.members[1].address, 2_000, 0, 8_000, 0, 0)
    world.govern(p.dist, "setSplit", new)
    assert tuple(p.dist.functions.splitOf(0).call()) == world.default_split()
    assert tuple(p.dist.functions.splitOf(1).call()) == new
    assert tuple(p.dist.functions.currentSplit().call()) == new
    receipt = world.fund(p, 500)  # a second funding does not fix it again
    assert events(p.dist, receipt, "SplitFixed") == []

    err = world.members[0].reverts("BenefitDistributorEpochNotFinal", BENEFIT_DISTRIBUTOR, p.dist, "claim", 0, token)
    assert err == {"epoch": 0}
    assert p.dist.functions.claimDeadline(0).call() == 0
    assert p.dist.functions.claimable(0, token, world.members[0].address).call() == 0
    finalized = world.finalize(p)
    deadline = finalized + CLAIM_WINDOW
    assert p.dist.functions.claimDeadline(0).call() == deadline
    assert p.meter.functions.finalizedAt(0).call() == finalized
    # Funding a final epoch before its deadline adds to the pool; entitlements follow.
    world.fund(p, 1_001)
    assert p.dist.functions.deposited(0, token).call() == 2_501
    assert p.dist.functions.entitlement(0, token, world.members[0].address).call() == [2_501 * 4_000 // BPS, 0, 0, 0, 0]
    assert p.dist.functions.claimable(0, token, world.ops.address).call() == 250

    travel(world.chain, deadline)
    world.funder.send(world.token, "approve", p.dist.address, 1)
    err = world.funder.reverts("BenefitDistributorEpochClosed", BENEFIT_DISTRIBUTOR, p.dist, "fund", 0, token, 1)
    assert err == {"epoch": 0, "deadline": deadline}
    err = world.ops.reverts("BenefitDistributorEpochClosed", BENEFIT_DISTRIBUTOR, p.dist, "claim", 0, token)
    assert err == {"epoch": 0, "deadline": deadline}
    assert p.dist.functions.claimable(0, token, world.ops.address).call() == 0
    # Epochs not yet final are still funded.
    world.funder.send(p.dist, "fund", 3, token, 1)
    assert p.dist.functions.deposited(3, token).call() == 1


def test_claims_pay_members_patients_and_operations_exactly(world: World) -> None:
    split = (world.members[2].address, 700, 1_300, 4_000, 2_500, 1_500)  # m2 also runs operations
    p = world.pools(split)
    m0, m1, m2, m3 = world.members[:4]
    p0, p1 = world.patients
    subject0, subject1 = (dataset_subject(d, 1) for d in world.datasets)
    world.contribute(p, m0, DATA, 300, subject0)  # p0's consent: also 300 patient points for p0
    world.contribute(p, m1, DATA, 100, subject1)
    world.contribute(p, m1, ALGORITHM, 50)
    world.contribute(p, m2, COMPUTE, 7)
    world.contribute(p, m3, ALGORITHM, 3)
    # p1 withdraws consent before m3's record about its dataset counts: no patient points for it.
    licensing = bind(world.w3, DATA_USE_LICENSING, world.licensing)
    p1.send(licensing, "setConsent", world.datasets[1], False)
    world.contribute(p, m3, DATA, 1_000, subject1)
    assert p.meter.functions.patientPoints(0, p0.address).call() == 300
    assert p.meter.functions.patientPoints(0, p1.address).call() == 100
    assert p.meter.functions.totalPatientPoints(0).call() == 400

    pool = 1_000_003  # divisible by nothing the split makes
    world.fund(p, pool)
    world.finalize(p)
    world.remove(m1)  # removed after the epoch: keeps what it earned
    points = {DATA: {m0.address: 300, m1.address: 100, m3.address: 1_000}, ALGORITHM: {m1.address: 50, m3.address: 3},
              COMPUTE: {m2.address: 7}}
    want = entitlements(pool, split, points, {p0.address: 300, p1.address: 100})
    token = world.token.address
    ent = p.dist.functions.entitlement(0, token, m2.address).call()
    assert ent == [0, 0, budgets(pool, split)[COMPUTE], 0, budgets(pool, split)["operations"]]
    assert p.dist.functions.entitlement(0, token, p0.address).call()[3] == budgets(pool, split)["patients"] * 3 // 4

    paid = 0
    for actor in (m1, p0, m0, m2, p1, m3):
        assert p.dist.functions.claimable(0, token, actor.address).call() == want[actor.address]
        before = world.balance(actor)
        receipt = actor.send(p.dist, "claim", 0, token)
        assert events(p.dist, receipt, "Claimed") == [{"epoch": 0, "token": token, "account": actor.address,
                                                       "amount": want[actor.address]}]
        assert world.balance(actor) - before == want[actor.address]
        assert p.dist.functions.claimed(0, token, actor.address).call() == want[actor.address]
        paid += want[actor.address]
        # Claiming twice pays nothing.
        err = actor.reverts("BenefitDistributorNothingToClaim", BENEFIT_DISTRIBUTOR, p.dist, "claim", 0, token)
        assert err == {"epoch": 0, "account": actor.address}
    err = world.stranger.reverts("BenefitDistributorNothingToClaim", BENEFIT_DISTRIBUTOR, p.dist, "claim", 0, token)
    assert err == {"epoch": 0, "account": world.stranger.address}
    assert p.dist.functions.claimedTotal(0, token).call() == paid
    assert 0 <= pool - paid <= 5 + 6 * 4
    assert world.balance(p.dist.address) == pool - paid


def test_fee_on_transfer_tokens_are_refused(world: World) -> None:
    p = world.pools()
    abi, bytecode = fee_token()
    receipt = world.gov.tx.call_function(world.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(),
                                         contract="FeeOnTransferToken")
    fee = world.w3.eth.contract(address=receipt["contractAddress"], abi=abi)
    world.funder.send(fee, "mint", world.funder.address, 10_000)
    world.funder.send(fee, "approve", p.dist.address, 10_000)
    err = world.funder.reverts("BenefitDistributorTransferAmountMismatch", BENEFIT_DISTRIBUTOR, p.dist, "fund", 0,
                               fee.address, 1_000)
    assert err == {"expected": 1_000, "received": 990}
    assert p.dist.functions.deposited(0, fee.address).call() == 0
    assert tuple(p.dist.functions.splitOf(0).call()) == world.default_split()


@cache
def fee_token() -> tuple[list, str]:
    """The test-only fee-on-transfer token, compiled with the project's solc-js front."""
    source = "tests/contracts/FeeOnTransferToken.sol"
    std_input = {"language": "Solidity", "sources": {source: {"content": (ROOT / source).read_text()}},
                 "settings": {"evmVersion": "cancun", "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    output = solcx.compile_standard(std_input, base_path=ROOT, solc_binary=ROOT / "scripts" / "solc-js.cjs")
    compiled = output["contracts"][source]["FeeOnTransferToken"]
    return compiled["abi"], "0x" + compiled["evm"]["bytecode"]["object"]


def test_fund_with_permit(world: World) -> None:
    p = world.pools()
    token = world.token
    owner = world.funder

    def permit(amount: int, deadline: int) -> tuple[int, bytes, bytes]:
        message = {
            "domain": {"name": "Fullchain Settlement", "version": "1", "chainId": world.w3.eth.chain_id,
                       "verifyingContract": token.address},
            "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                       {"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}],
                      "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                                 {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                                 {"name": "deadline", "type": "uint256"}]},
            "primaryType": "Permit",
            "message": {"owner": owner.address, "spender": p.dist.address, "value": amount,
                        "nonce": token.functions.nonces(owner.address).call(), "deadline": deadline},
        }
        signed = Account.sign_typed_data(owner.account.key, full_message=message)
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    deadline = world.w3.eth.get_block("latest")["timestamp"] + 3600
    v, r, s = permit(777, deadline)
    receipt = owner.send(p.dist, "fundWithPermit", 0, token.address, 777, deadline, v, r, s)
    assert events(p.dist, receipt, "Funded")[0]["amount"] == 777
    assert token.functions.allowance(owner.address, p.dist.address).call() == 0
    # Someone submits the signed permit first (it is public): the funding still goes through.
    v, r, s = permit(5, deadline)
    world.stranger.send(token, "permit", owner.address, p.dist.address, 5, deadline, v, r, s)
    owner.send(p.dist, "fundWithPermit", 0, token.address, 5, deadline, v, r, s)
    assert p.dist.functions.deposited(0, token.address).call() == 782
    # The permit is submitted for the amount funded: one signed for another value is refused.
    v, r, s = permit(1, deadline)
    err = owner.reverts("ERC2612InvalidSigner", SETTLEMENT_TOKEN, p.dist, "fundWithPermit", 0, token.address, 2,
                        deadline, v, r, s)
    assert err["owner"] == owner.address


# ---- sweep and claimMany ----

def test_sweep_moves_the_remainder_into_a_later_epoch(world: World) -> None:
    p = world.pools()
    m0, m1 = world.members[:2]
    token = world.token.address
    world.contribute(p, m0, DATA, 2)
    world.contribute(p, m1, DATA, 1)
    pool = 10_007
    world.fund(p, pool)
    err = world.govern_fails(p.dist, "sweep", 0, token, 5)
    assert err == ("BenefitDistributorEpochNotFinal", {"epoch": 0})
    finalized = world.finalize(p)
    deadline = finalized + CLAIM_WINDOW
    assert world.govern_fails(p.dist, "sweep", 0, token, 5) == (
        "BenefitDistributorClaimsStillOpen", {"epoch": 0, "deadline": deadline})
    m0.send(p.dist, "claim", 0, token)  # m1 and operations never claim
    paid = world.balance(m0)
    assert paid == pool * 4_000 // BPS * 2 // 3

    travel(world.chain, deadline)
    world.stranger.send(p.meter, "finalize", 1)  # epoch 1: final, so no sweep target
    for target in (0, 1):
        assert world.govern_fails(p.dist, "sweep", 0, token, target) == (
            "BenefitDistributorInvalidSweepTarget", {"fromEpoch": 0, "toEpoch": target})
    receipt = world.govern(p.dist, "sweep", 0, token, 5)
    remainder = pool - paid
    assert events(p.dist, receipt, "Swept") == [{"epoch": 0, "token": token, "toEpoch": 5, "amount": remainder}]
    assert events(p.dist, receipt, "Funded") == [{"epoch": 5, "token": token, "funder": p.dist.address,
                                                  "amount": remainder}]
    assert events(p.dist, receipt, "SplitFixed") == [{"epoch": 5}]
    assert p.dist.functions.deposited(5, token).call() == remainder
    assert p.dist.functions.swept(0, token).call()
    assert world.balance(p.dist.address) == remainder
    assert world.govern_fails(p.dist, "sweep", 0, token, 6) == (
        "BenefitDistributorAlreadySwept", {"epoch": 0, "token": token})
    # A pool nobody funded (another token) sweeps nothing: no funding of the target.
    other = world.stranger.address
    receipt = world.govern(p.dist, "sweep", 0, other, 6)
    assert events(p.dist, receipt, "Swept") == [{"epoch": 0, "token": other, "toEpoch": 6, "amount": 0}]
    assert events(p.dist, receipt, "Funded") == [] and events(p.dist, receipt, "SplitFixed") == []
    # A longer window later does not reopen a swept pool, for claims or funding.
    world.govern(p.dist, "setClaimWindow", 365 * 86400)
    err = m1.reverts("BenefitDistributorAlreadySwept", BENEFIT_DISTRIBUTOR, p.dist, "claim", 0, token)
    assert err == {"epoch": 0, "token": token}
    assert p.dist.functions.claimable(0, token, m1.address).call() == 0
    world.funder.send(world.token, "approve", p.dist.address, 1)
    world.funder.reverts("BenefitDistributorAlreadySwept", BENEFIT_DISTRIBUTOR, p.dist, "fund", 0, token, 1)


def test_claim_many(world: World) -> None:
    p = world.pools()
    m0, m1 = world.members[:2]
    token = world.token.address
    world.contribute(p, m0, DATA, 1, epoch=0)
    world.contribute(p, m1, DATA, 1, epoch=0)
    world.fund(p, 1_000, epoch=0)
    world.fund(p, 2_000, epoch=1)
    world.fund(p, 3_000, epoch=2)
    world.finalize(p, 0)
    travel(world.chain, p.meter.functions.epochBounds(2).call()[0])
    world.contribute(p, m1, COMPUTE, 5, epoch=2)
    world.contribute(p, m0, DATA, 5, epoch=2)
    world.finalize(p, 1)  # epoch 1: m0 has nothing in it
    world.finalize(p, 2)
    want = 1_000 * 4_000 // BPS // 2 + 3_000 * 4_000 // BPS
    receipt = m0.send(p.dist, "claimMany", [0, 1, 2], token)
    assert [(e["epoch"], e["amount"]) for e in events(p.dist, receipt, "Claimed")] == [
        (0, 1_000 * 4_000 // BPS // 2), (2, 3_000 * 4_000 // BPS)]
    assert world.balance(m0) == want
    err = m0.reverts("BenefitDistributorNothingToClaim", BENEFIT_DISTRIBUTOR, p.dist, "claimMany", [0, 1, 2], token)
    assert err == {"epoch": 0, "account": m0.address}
    m0.reverts("BenefitDistributorNothingToClaim", BENEFIT_DISTRIBUTOR, p.dist, "claimMany", [], token)
    # Every listed epoch must be claimable; a duplicate pays once.
    err = m1.reverts("BenefitDistributorEpochNotFinal", BENEFIT_DISTRIBUTOR, p.dist, "claimMany", [0, 9], token)
    assert err == {"epoch": 9}
    m1.send(p.dist, "claimMany", [2, 0, 2], token)
    assert world.balance(m1) == 1_000 * 4_000 // BPS // 2 + 3_000 * 1_500 // BPS


# ---- deployment through the SDK ----

def deploy_solo(chain: str, funder: Any = None) -> fullchain.Fullchain:
    """A one-governor deployment made by `Fullchain.deploy` on `chain` (in $FULLCHAIN_HOME)."""
    fullchain.init("solo", password="pw", chain=chain)
    fc = fullchain.connect("solo", password="pw")
    if funder is not None:
        funder.transfer(fc.address, 10 * 10**18)
    fc.deploy([fullchain.Founder(fc.address, Role.GOVERNOR, bytes.fromhex(fc.profile.hpke_public_key[2:]))],
              threshold=1)
    return fc


@pytest.mark.parametrize("kind", ["embedded", "anvil"])
def test_deploy_adds_the_distributor_and_on_dev_chains_the_token(kind: str, home: Path, anvil: Any) -> None:
    if kind == "embedded":
        fc = deploy_solo("embedded")
    else:  # anvil's chain id is 31337: a development chain
        Account.enable_unaudited_hdwallet_features()  # the session's funder is account 0: use another
        dev = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/9")
        fc = deploy_solo(anvil.url, Transactor(Web3(Web3.HTTPProvider(anvil.url)), lambda: dev, dev.address))
    c = fc.contracts()
    dist = bind(fc.w3, BENEFIT_DISTRIBUTOR, c[BENEFIT_DISTRIBUTOR])
    assert dist.functions.meter().call() == c[CONTRIBUTION_METER]
    assert dist.functions.consortium().call() == c[CONSORTIUM]
    assert tuple(dist.functions.currentSplit().call()) == (fc.address, 1_000, 1_000, 4_000, 2_500, 1_500)
    assert dist.functions.claimWindow().call() == 90 * 86400
    assert bind(fc.w3, SETTLEMENT_TOKEN, c[SETTLEMENT_TOKEN]).functions.consortium().call() == c[CONSORTIUM]
    assert bind(fc.w3, CONTRIBUTION_METER, c[CONTRIBUTION_METER]).functions.licensing().call() == c[DATA_USE_LICENSING]
    if kind == "anvil":
        return
    # Adding a meter to a deployment that has none adds the distributor paying out its epochs.
    token = c[SETTLEMENT_TOKEN]
    deployment = fc.deploy_meter()
    assert deployment.contracts[CONTRIBUTION_METER] != c[CONTRIBUTION_METER]
    dist = bind(fc.w3, BENEFIT_DISTRIBUTOR, deployment.contracts[BENEFIT_DISTRIBUTOR])
    assert dist.functions.meter().call() == deployment.contracts[CONTRIBUTION_METER]
    assert deployment.contracts[SETTLEMENT_TOKEN] == token  # kept, not a second token


def test_no_settlement_token_outside_dev_chains(home: Path) -> None:
    node = Anvil("--chain-id", "4242")
    try:
        Account.enable_unaudited_hdwallet_features()
        dev = Account.from_mnemonic(ANVIL_MNEMONIC)
        fc = deploy_solo(node.url, Transactor(Web3(Web3.HTTPProvider(node.url)), lambda: dev, dev.address))
        assert BENEFIT_DISTRIBUTOR in fc.contracts() and SETTLEMENT_TOKEN not in fc.contracts()
    finally:
        node.stop()


# ---- the money invariants (embedded chain, random pools) ----

points_or_none = st.one_of(st.just(0), st.integers(1, 10**12))
member_points = st.tuples(
    points_or_none,  # data
    st.sampled_from([None, 0, 1]),  # data subject: a digest, or the dataset needing patient 0's / 1's consent
    points_or_none,  # algorithm
    points_or_none,  # compute
)
split_parts = st.lists(st.integers(0, BPS), min_size=4, max_size=4).map(
    lambda cuts: [b - a for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), BPS])])
amount = st.one_of(st.integers(1, 10**6), st.integers(1, 10**27), st.sampled_from([1, 7, 10**18 + 1, 2**96 - 1]))
_SHARED: dict[str, Pools] = {}


@pytest.fixture
def embedded_world(embedded_chain: Any) -> tuple[World, Pools]:
    """The embedded world with one meter and distributor for every example: each example uses
    the meter's current epoch and runs between a snapshot and a revert."""
    if "embedded" not in _WORLDS:
        _WORLDS["embedded"] = make_world(embedded_chain)
    w = _WORLDS["embedded"]
    if "embedded" not in _SHARED:
        _SHARED["embedded"] = w.pools()
        w.funder.send(w.token, "approve", _SHARED["embedded"].dist.address, BIG)
    return w, _SHARED["embedded"]


# Every example costs ~1.5-2 s of py-evm time (about 25 transactions): 16 keep this file within its
# minute; the other tests of this file cover the same rules with chosen numbers on both backends.
@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(member_points, min_size=1, max_size=MEMBERS), parts=split_parts,
       ops_is_member=st.booleans(), early=st.lists(amount, min_size=1, max_size=2),
       late=st.lists(amount, max_size=2), data=st.data())
def test_money_invariants(embedded_world: tuple[World, Pools], members: list, parts: list, ops_is_member: bool,
                          early: list, late: list, data: st.DataObject) -> None:
    w, shared = embedded_world
    snap = snapshot(w.w3)
    try:
        check_money_invariants(w, shared, members, parts, ops_is_member, early, late, data)
    finally:
        revert(w, snap)


def check_money_invariants(w: World, shared: Pools, members: list, parts: list, ops_is_member: bool, early: list,
                           late: list, data: st.DataObject) -> None:
    ops = w.members[0] if ops_is_member else w.ops
    split = (ops.address, *parts)
    p = Pools(shared.meter, shared.dist, split, records=shared.meter.functions.recordCount().call())
    epoch = p.meter.functions.currentEpoch().call()
    w.govern(p.dist, "setSplit", split)
    token = w.token.address
    points: dict[int, dict[str, int]] = {DATA: {}, ALGORITHM: {}, COMPUTE: {}}
    patient_points: dict[str, int] = defaultdict(int)
    for i, (data_pts, subject, algorithm, compute) in enumerate(members):
        member = w.members[i]
        for dimension, pts in ((DATA, data_pts), (ALGORITHM, algorithm), (COMPUTE, compute)):
            if pts:
                use = dataset_subject(w.datasets[subject], 1) if dimension == DATA and subject is not None else None
                w.contribute(p, member, dimension, pts, use, epoch=epoch)
                points[dimension][member.address] = pts
                if use:
                    patient_points[w.patients[subject].address] += pts
    for a in early:
        w.funder.send(p.dist, "fund", epoch, token, a)
    w.finalize(p, epoch)
    removed = data.draw(st.one_of(st.none(), st.integers(0, len(members) - 1)), label="removed")
    if removed is not None:
        w.remove(w.members[removed])

    # Claims in a random order, the late deposits in between; then everyone claims what is left.
    pool = sum(early)
    claimants = [a for a in w.actors() if a.address in entitlements(pool + sum(late), split, points, patient_points)]
    steps = data.draw(st.permutations([*claimants, *late]), label="order")
    paid: dict[str, int] = defaultdict(int)
    claims = 0

    def claim(actor: Actor) -> None:
        nonlocal claims
        due = entitlements(pool, split, points, patient_points).get(actor.address, 0) - paid[actor.address]
        if due == 0:
            return
        receipt = actor.send(p.dist, "claim", epoch, token)
        assert events(p.dist, receipt, "Claimed")[0]["amount"] == due
        paid[actor.address] += due
        claims += 1
        assert sum(paid.values()) <= pool  # never more than deposited

    for step in steps:
        if isinstance(step, Actor):
            claim(step)
        else:
            w.funder.send(p.dist, "fund", epoch, token, step)
            pool += step
    for actor in claimants:
        claim(actor)
    # Claiming twice pays nothing.
    again = data.draw(st.sampled_from(claimants), label="again")
    assert p.dist.functions.claimable(epoch, token, again.address).call() == 0
    again.reverts("BenefitDistributorNothingToClaim", BENEFIT_DISTRIBUTOR, p.dist, "claim", epoch, token)

    total_paid = sum(paid.values())
    assert p.dist.functions.claimedTotal(epoch, token).call() == total_paid
    assert p.dist.functions.deposited(epoch, token).call() == pool
    remainder = pool - total_paid
    b = budgets(pool, split)
    unclaimable = sum(b[d] for d in (DATA, ALGORITHM, COMPUTE) if not points[d]) + (
        0 if patient_points else b["patients"])
    assert 0 <= remainder - unclaimable <= 5 + claims * 4

    # After the deadline the remainder is swept, exactly, into a later epoch.
    travel(w.chain, p.dist.functions.claimDeadline(epoch).call())
    receipt = w.govern(p.dist, "sweep", epoch, token, 2**40)
    assert events(p.dist, receipt, "Swept")[0]["amount"] == remainder
    assert p.dist.functions.deposited(2**40, token).call() == remainder
