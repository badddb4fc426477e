"""ContributionMeter behaviour, on the embedded chain and on anvil (the `chain` fixture).

Every restricted function is called by someone not entitled to it and must revert with the named
custom error; governance goes through Consortium call proposals; and after random sequences of
submit / attest / dispute / resolve the points and totals equal a Python model of the rules.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.logs import DISCARD

from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.contracts import (
    CONSORTIUM,
    CONTRIBUTION_METER,
    DATA_USE_LICENSING,
    DATASET_REGISTRY,
    bind,
    decode_revert,
    deploy_contract,
)
from fullchain.errors import TransactionReverted
from fullchain.metering.meter import dataset_subject, deploy_meter
from fullchain.models import Role
from fullchain.transactions import Transactor

EVIDENCE = b"\x11" * 32
REASON = b"\x22" * 32
SCALE = 10**18
# Weights that exercise the floor division: points = amount * weight // 1e18.
WEIGHTS = {"data": 3 * SCALE, "algorithm": SCALE // 2, "gpu": SCALE, "storage": 7}
KIND_WEIGHTS = [WEIGHTS[k] for k in ("data", "algorithm", "gpu", "storage")]
DIMENSION_OF_KIND = [0, 1, 2, 2]


class Actor:
    """An account with its own transactor, calling the contracts directly (past the SDK)."""

    def __init__(self, name: str, tx: Transactor, consortium: ConsortiumClient) -> None:
        self.name = name
        self.tx = tx
        self.address = tx.address
        self.consortium = consortium

    def call(self, meter, fn: str, *args: object):  # noqa: ANN001, ANN201
        return self.tx.call_function(getattr(meter.functions, fn)(*args), contract=CONTRIBUTION_METER)

    def submit(self, meter, epoch: int, kind: int, subject: bytes, amount: int) -> int:  # noqa: ANN001
        receipt = self.call(meter, "submit", epoch, kind, subject, amount, EVIDENCE)
        return meter.events.RecordSubmitted().process_receipt(receipt, errors=DISCARD)[0]["args"]["recordId"]

    def govern(self, meter, fn: str, *args: object) -> int:  # noqa: ANN001
        """A call proposal (threshold 1: the proposing governor's approval suffices), executed."""
        data = bytes.fromhex(getattr(meter.functions, fn)(*args)._encode_transaction_data()[2:])
        pid = self.consortium.propose_call(meter.address, data)
        self.consortium.execute(pid)
        return pid


@dataclass
class World:
    chain: object
    consortium: str
    gov: Actor
    alice: Actor  # hospital
    bob: Actor  # hospital
    carol: Actor  # attester (and hospital: it submits too)
    dave: Actor  # attester
    stranger: Actor
    patient: Actor  # a member with the patient role
    registry: str = ""
    licensing: str = ""
    meters: list = field(default_factory=list)

    def meter(self, *, epoch_length: int = 30 * 86400, window: int = 7 * 86400, attestations: int = 1):  # noqa: ANN201
        address, _ = deploy_meter(self.gov.tx, self.chain.w3, self.consortium, self.licensing,
                                  epoch_length=epoch_length, dispute_window=window, attestations=attestations,
                                  weights=WEIGHTS)
        return bind(self.chain.w3, CONTRIBUTION_METER, address)

    def dataset(self, *, patient: bool) -> int:
        """A dataset of alice's, needing the patient's consent (given) if `patient`."""
        registry = bind(self.chain.w3, DATASET_REGISTRY, self.registry)
        version = (secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32), 1234, 0x70, 0x55, 1,
                   2, secrets.token_bytes(32))
        receipt = self.alice.tx.call_function(registry.functions.registerDataset(version, []),
                                              contract=DATASET_REGISTRY)
        dataset_id = registry.events.DatasetRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["datasetId"]
        if patient:
            self.set_consent("requireConsent", self.alice, dataset_id, self.patient.address)
        return dataset_id

    def set_consent(self, fn: str, who: Actor, *args: object) -> None:
        licensing = bind(self.chain.w3, DATA_USE_LICENSING, self.licensing)
        who.tx.call_function(getattr(licensing.functions, fn)(*args), contract=DATA_USE_LICENSING)


_WORLDS: dict[str, World] = {}


@pytest.fixture
def world(chain) -> World:  # noqa: ANN001
    """One consortium per backend for the whole module (the meters are deployed per test)."""
    if chain.kind not in _WORLDS:
        accounts = {n: chain.account() for n in ("gov", "alice", "bob", "carol", "dave", "stranger", "patient")}
        roles = {"gov": Role.GOVERNOR, "alice": Role.HOSPITAL, "bob": Role.HOSPITAL,
                 "carol": Role.ATTESTER | Role.HOSPITAL, "dave": Role.ATTESTER, "patient": Role.PATIENT}
        founders = [Founder(accounts[n][0].address, r, secrets.token_bytes(32)) for n, r in roles.items()]
        address, _ = deploy_consortium(accounts["gov"][1], chain.w3, founders, threshold=1, voting_period=3600)
        actors = {n: Actor(n, tx, ConsortiumClient(chain.w3, address, tx)) for n, (_, tx) in accounts.items()}
        registry, _ = deploy_contract(accounts["gov"][1], chain.w3, DATASET_REGISTRY, address)
        licensing, _ = deploy_contract(accounts["gov"][1], chain.w3, DATA_USE_LICENSING, address, registry)
        _WORLDS[chain.kind] = World(chain=chain, consortium=address, registry=registry, licensing=licensing, **actors)
    return _WORLDS[chain.kind]


def reverts(error: str, call, *args, **kwargs) -> TransactionReverted:  # noqa: ANN001
    with pytest.raises(TransactionReverted) as info:
        call(*args, **kwargs)
    assert info.value.error_name == error, info.value
    return info.value


def current(meter) -> int:  # noqa: ANN001
    return meter.functions.currentEpoch().call(block_identifier="pending")


def test_restricted_functions_refuse_the_wrong_caller(world: World) -> None:
    m = world.meter()
    subject = dataset_subject(1, 1)
    err = reverts("ContributionMeterNotMember", world.stranger.submit, m, 0, 0, subject, 10)
    assert err.error_args == {"account": world.stranger.address}
    rid = world.alice.submit(m, 0, 0, subject, 10)

    err = reverts("ContributionMeterNotAttester", world.stranger.call, m, "attest", rid)
    assert err.error_args == {"account": world.stranger.address}
    reverts("ContributionMeterNotAttester", world.bob.call, m, "attest", rid)  # a member without the role
    carols = world.carol.submit(m, 0, 0, subject, 10)  # same subject, another member: its own record
    err = reverts("ContributionMeterSelfAttestation", world.carol.call, m, "attest", carols)
    assert err.error_args == {"recordId": carols, "attester": world.carol.address}
    world.dave.call(m, "attest", rid)
    reverts("ContributionMeterAlreadyAttested", world.dave.call, m, "attest", rid)

    err = reverts("ContributionMeterDuplicateRecord", world.alice.submit, m, 0, 0, subject, 99)
    assert err.error_args == {"epoch": 0, "member": world.alice.address, "dimension": 0, "subject": subject,
                              "recordId": rid}
    world.alice.submit(m, 0, 1, subject, 5)  # another dimension: another record

    reverts("ContributionMeterNotMember", world.stranger.call, m, "dispute", rid, REASON)
    reverts("ContributionMeterInvalidDigest", world.bob.call, m, "dispute", rid, b"\0" * 32)
    reverts("ContributionMeterUnknownRecord", world.bob.call, m, "dispute", 999, REASON)
    # Governance functions answer to the Consortium contract only, not even to a governor.
    for fn, args in [("resolve", (rid, True)), ("setEpochLength", (3600,)), ("setDisputeWindow", (3600,)),
                     ("setAttestationsRequired", (2,)), ("setWeight", (0, SCALE))]:
        err = reverts("ContributionMeterNotConsortium", world.gov.call, m, fn, *args)
        assert err.error_args == {"caller": world.gov.address}

    reverts("ContributionMeterEpochNotStarted", world.alice.submit, m, 1, 0, subject, 10)
    reverts("ContributionMeterInvalidKind", world.alice.submit, m, 0, 4, subject, 10)
    reverts("ContributionMeterInvalidAmount", world.alice.submit, m, 0, 2, subject, 0)
    reverts("ContributionMeterInvalidAmount", world.alice.submit, m, 0, 2, subject, 2**128)
    reverts("ContributionMeterInvalidDigest", world.alice.call, m, "submit", 0, 2, subject, 1, b"\0" * 32)


def test_points_count_at_the_threshold_and_leave_on_dispute(world: World) -> None:
    m = world.meter(attestations=2)
    rid = world.alice.submit(m, 0, 0, dataset_subject(7, 2), 1000)
    record = m.functions.record(rid).call()
    assert record[1:6] == (0, 0, 1, 0, 2) and record[7:9] == (1000, 3000)
    world.carol.call(m, "attest", rid)
    assert m.functions.totalPoints(0, 0).call() == 0  # one of two attestations
    receipt = world.dave.call(m, "attest", rid)
    counted = m.events.PointsCounted().process_receipt(receipt, errors=DISCARD)
    assert [e["args"]["points"] for e in counted] == [3000]
    assert m.functions.points(0, world.alice.address, 0).call() == 3000
    assert m.functions.totalPoints(0, 0).call() == 3000

    world.bob.call(m, "dispute", rid, REASON)
    assert m.functions.points(0, world.alice.address, 0).call() == 0
    assert m.functions.openDisputes(0).call() == 1
    reverts("ContributionMeterWrongStatus", world.bob.call, m, "dispute", rid, REASON)
    world.gov.govern(m, "resolve", rid, True)
    assert m.functions.totalPoints(0, 0).call() == 3000
    assert m.functions.openDisputes(0).call() == 0
    err = reverts("ContributionMeterWrongStatus", world.bob.call, m, "dispute", rid, REASON)
    assert err.error_args == {"recordId": rid, "status": 3}  # upheld once: final


def test_late_dispute_early_finalize_and_finality(world: World) -> None:
    m = world.meter(epoch_length=60, window=60)
    epoch = current(m)
    rid = world.alice.submit(m, epoch, 2, b"\x05" * 32, 7200)
    other = world.bob.submit(m, epoch, 3, b"\x06" * 32, 3 * SCALE)
    _, end, closes = m.functions.epochBounds(epoch).call()
    err = reverts("ContributionMeterDisputeWindowOpen", world.bob.call, m, "finalize", epoch)
    assert err.error_args == {"epoch": epoch, "closesAt": closes}

    world.chain.advance_time(end - world.chain.w3.eth.get_block("latest")["timestamp"])
    assert current(m) > epoch
    # After the epoch's end, within its window: still attested and disputed; submitted too.
    world.dave.call(m, "attest", rid)
    world.dave.call(m, "attest", other)
    world.bob.call(m, "dispute", rid, REASON)
    world.alice.submit(m, epoch, 0, dataset_subject(1, 1), 3)

    world.chain.advance_time(closes - world.chain.w3.eth.get_block("latest")["timestamp"])
    err = reverts("ContributionMeterEpochClosed", world.bob.call, m, "dispute", other, REASON)
    assert err.error_args == {"epoch": epoch, "closedAt": closes}
    reverts("ContributionMeterEpochClosed", world.alice.submit, m, epoch, 1, b"\x07" * 32, 1)
    reverts("ContributionMeterEpochClosed", world.carol.call, m, "attest", other)
    err = reverts("ContributionMeterOpenDisputes", world.bob.call, m, "finalize", epoch)
    assert err.error_args == {"epoch": epoch, "open": 1}

    world.gov.govern(m, "resolve", rid, False)  # rejected: never counts
    assert m.functions.finalizedAt(epoch).call() == 0
    receipt = world.stranger.call(m, "finalize", epoch)  # anyone may finalize
    assert m.functions.finalizedAt(epoch).call() == world.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    event = m.events.EpochFinalized().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (event["dataTotal"], event["algorithmTotal"], event["computeTotal"]) == (0, 0, 21)
    assert m.functions.isFinalized(epoch).call()
    reverts("ContributionMeterEpochFinalized", world.bob.call, m, "finalize", epoch)
    # A longer dispute window later does not reopen a final epoch.
    world.gov.govern(m, "setDisputeWindow", 365 * 86400)
    reverts("ContributionMeterEpochFinalized", world.bob.call, m, "dispute", other, REASON)


def patient_events(m, receipt, name: str) -> list[dict]:  # noqa: ANN001
    return [dict(e["args"]) for e in getattr(m.events, name)().process_receipt(receipt, errors=DISCARD)]


def test_patient_points_accrue_per_counted_record_and_leave_exactly(world: World) -> None:
    m = world.meter()
    consented, plain = world.dataset(patient=True), world.dataset(patient=False)
    patient = world.patient.address

    def patient_points() -> tuple[int, int]:
        return m.functions.patientPoints(0, patient).call(), m.functions.totalPatientPoints(0).call()

    rid = world.alice.submit(m, 0, 0, dataset_subject(consented, 1), 10)  # data weight 3: 30 points
    assert patient_points() == (0, 0)  # submitted, not counted yet
    receipt = world.dave.call(m, "attest", rid)
    assert patient_events(m, receipt, "PatientPointsCounted") == [
        {"recordId": rid, "epoch": 0, "patient": patient, "points": 30}]
    assert patient_points() == (30, 30)
    # Nothing for a dataset without consent, another dimension or a digest subject.
    for kind, subject in ((0, dataset_subject(plain, 1)), (1, dataset_subject(consented, 1)), (0, b"\x01" * 32)):
        receipt = world.dave.call(m, "attest", world.bob.submit(m, 0, kind, subject, 8))
        assert patient_events(m, receipt, "PatientPointsCounted") == []
    other = world.bob.submit(m, 0, 0, dataset_subject(consented, 2), 4)  # another version: the same consent
    world.dave.call(m, "attest", other)
    assert patient_points() == (42, 42)

    # The patient withdraws consent; disputing the first record still takes out exactly its 30.
    world.set_consent("setConsent", world.patient, consented, False)
    receipt = world.bob.call(m, "dispute", rid, REASON)
    assert patient_events(m, receipt, "PatientPointsWithdrawn") == [
        {"recordId": rid, "epoch": 0, "patient": patient, "points": 30}]
    assert patient_points() == (12, 12)
    # Upheld, it counts again for its member, but under today's consent: not for the patient.
    world.gov.govern(m, "resolve", rid, True)
    assert m.functions.points(0, world.alice.address, 0).call() == 30
    assert patient_points() == (12, 12)
    world.set_consent("setConsent", world.patient, consented, True)
    world.dave.call(m, "attest", world.carol.submit(m, 0, 0, dataset_subject(consented, 1), 1))
    assert patient_points() == (15, 15)
    receipt = world.alice.call(m, "dispute", other, REASON)
    assert patient_events(m, receipt, "PatientPointsWithdrawn")[0]["points"] == 12
    assert patient_points() == (3, 3)


def test_a_meter_without_licensing_accrues_no_patient_points(world: World) -> None:
    address, _ = deploy_meter(world.gov.tx, world.chain.w3, world.consortium, "0x" + "00" * 20, weights=WEIGHTS)
    m = bind(world.chain.w3, CONTRIBUTION_METER, address)
    assert m.functions.licensing().call() == "0x" + "00" * 20
    rid = world.alice.submit(m, 0, 0, dataset_subject(world.dataset(patient=True), 1), 10)
    world.dave.call(m, "attest", rid)
    assert m.functions.totalPoints(0, 0).call() == 30 and m.functions.totalPatientPoints(0).call() == 0


def test_governance_calls_and_their_limits(world: World) -> None:
    m = world.meter()
    rid = world.alice.submit(m, 0, 0, b"\x01" * 32, 10)
    # Only contracts governed by this Consortium are call targets.
    # Governed by someone else:
    foreign, _ = deploy_meter(world.gov.tx, world.chain.w3, world.stranger.address, world.licensing)
    for target in (world.stranger.address, world.consortium, foreign):
        err = reverts("ConsortiumInvalidCallTarget", world.alice.consortium.propose_call, target, b"")
        assert err.error_args == {"target": target}
    reverts("ConsortiumNotMember", world.stranger.consortium.propose_call, m.address, b"")

    # A call the meter refuses: execution reverts with the meter's reason; the proposal stays pending.
    data = bytes.fromhex(m.functions.resolve(rid, True)._encode_transaction_data()[2:])
    pid = world.gov.consortium.propose_call(m.address, data)
    err = reverts("ConsortiumCallFailed", world.gov.consortium.execute, pid)
    assert decode_revert(CONTRIBUTION_METER, err.error_args["reason"]) == (
        "ContributionMeterWrongStatus", {"recordId": rid, "status": 1})
    assert world.gov.consortium.proposal(pid).status == "pending"
    assert world.gov.consortium.proposal(pid).details["target"] == m.address
    reverts("ConsortiumCallFailed", world.gov.govern, m, "setAttestationsRequired", 0)

    world.gov.govern(m, "setWeight", 0, 2 * SCALE)
    world.gov.govern(m, "setAttestationsRequired", 2)
    rid2 = world.bob.submit(m, 0, 0, b"\x02" * 32, 10)
    assert m.functions.record(rid2).call()[5] == 2 and m.functions.record(rid2).call()[8] == 20
    assert m.functions.record(rid).call()[5] == 1  # taken at submission: earlier records keep theirs
    world.dave.call(m, "attest", rid)
    assert m.functions.totalPoints(0, 0).call() == 30


def test_epoch_length_changes_from_the_next_epoch(world: World) -> None:
    m = world.meter(epoch_length=3600)
    epoch = current(m)
    def bounds(e: int) -> tuple[int, int, int]:
        return tuple(m.functions.epochBounds(e).call())

    before = bounds(epoch)
    world.gov.govern(m, "setEpochLength", 600)
    assert bounds(epoch) == before  # the current epoch keeps its end
    assert bounds(epoch + 1)[:2] == (before[1], before[1] + 600)
    assert bounds(epoch + 3)[0] == before[1] + 2 * 600
    world.gov.govern(m, "setEpochLength", 900)  # again within the same epoch: replaces the change
    assert bounds(epoch + 1)[:2] == (before[1], before[1] + 900)
    assert m.functions.epochLength().call() == 900
    reverts("ConsortiumCallFailed", world.gov.govern, m, "setEpochLength", 59)


# ---- the rules as a Python model, against random sequences ----

ACTORS = ("alice", "bob", "carol", "dave")
ATTESTERS = ("carol", "dave")

op = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(ACTORS), st.integers(0, 3), st.integers(0, 2),
              st.integers(1, 10**30)),
    st.tuples(st.just("attest"), st.sampled_from(ACTORS), st.integers(0, 7)),
    st.tuples(st.just("dispute"), st.sampled_from(ACTORS), st.integers(0, 7)),
    st.tuples(st.just("resolve"), st.booleans(), st.integers(0, 7)),
)


@dataclass
class ModelRecord:
    member: str
    dimension: int
    points: int
    required: int
    attesters: set = field(default_factory=set)
    status: str = "submitted"

    @property
    def counted(self) -> bool:
        return self.status in ("submitted", "upheld") and len(self.attesters) >= self.required


def model_step(records: list[ModelRecord], keys: set, required: int, step: tuple) -> str | None:
    """Apply `step` to the model; the custom error the contract must raise, or None."""
    kind = step[0]
    if kind == "submit":
        _, who, k, subject, amount = step
        key = (who, DIMENSION_OF_KIND[k], subject)
        if key in keys:
            return "ContributionMeterDuplicateRecord"
        keys.add(key)
        records.append(ModelRecord(who, DIMENSION_OF_KIND[k], amount * KIND_WEIGHTS[k] // SCALE, required))
        return None
    index = step[2]
    if index >= len(records):
        # A refused resolution surfaces as the Consortium's failed call.
        return "ConsortiumCallFailed" if kind == "resolve" else "ContributionMeterUnknownRecord"
    r = records[index]
    if kind == "attest":
        who = step[1]
        if who not in ATTESTERS:
            return "ContributionMeterNotAttester"
        if who == r.member:
            return "ContributionMeterSelfAttestation"
        if who in r.attesters:
            return "ContributionMeterAlreadyAttested"
        if r.status == "rejected":
            return "ContributionMeterWrongStatus"
        r.attesters.add(who)
        return None
    if kind == "dispute":
        if r.status != "submitted":
            return "ContributionMeterWrongStatus"
        r.status = "disputed"
        return None
    if r.status != "disputed":  # resolve
        return "ConsortiumCallFailed"
    r.status = "upheld" if step[1] else "rejected"
    return None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(op, min_size=1, max_size=12), required=st.integers(1, 2))
def test_points_and_totals_follow_the_rules(world: World, steps: list[tuple], required: int) -> None:
    m = world.meter(attestations=required)
    epoch = current(m)
    records: list[ModelRecord] = []
    keys: set = set()
    ids: list[int] = []
    subjects = [b"\xaa" * 32, dataset_subject(1, 1), dataset_subject(2, 3)]
    for step in steps:
        expected = model_step(records, keys, required, step)
        kind = step[0]
        try:
            if kind == "submit":
                _, who, k, subject, amount = step
                ids.append(getattr(world, who).submit(m, epoch, k, subjects[subject], amount))
            else:
                rid = ids[step[2]] if step[2] < len(ids) else 1000 + step[2]
                if kind == "attest":
                    getattr(world, step[1]).call(m, "attest", rid)
                elif kind == "dispute":
                    getattr(world, step[1]).call(m, "dispute", rid, REASON)
                else:
                    world.gov.govern(m, "resolve", rid, step[1])
        except TransactionReverted as exc:
            assert exc.error_name == expected, (step, exc)
            continue
        assert expected is None, (step, "succeeded")
    for member in ACTORS:
        for dimension in range(3):
            want = sum(r.points for r in records if r.counted and r.member == member and r.dimension == dimension)
            assert m.functions.points(epoch, getattr(world, member).address, dimension).call() == want
    for dimension in range(3):
        want = sum(r.points for r in records if r.counted and r.dimension == dimension)
        assert m.functions.totalPoints(epoch, dimension).call() == want
    assert m.functions.openDisputes(epoch).call() == sum(r.status == "disputed" for r in records)


def test_consortium_call_kind_is_indexed_and_decoded(world: World) -> None:
    m = world.meter()
    data = bytes.fromhex(m.functions.setWeight(1, 5)._encode_transaction_data()[2:])
    pid = world.gov.consortium.propose_call(m.address, data)
    p = world.gov.consortium.proposal(pid)
    assert p.kind == "call" and p.details == {"target": m.address, "data": "0x" + data.hex()}
    world.gov.consortium.execute(pid)
    assert m.functions.weight(1).call() == 5
    assert bind(world.chain.w3, CONSORTIUM, world.consortium).functions.proposal(pid).call()[1] == 2
