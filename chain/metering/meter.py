"""The `ContributionMeter` client: submit measured contributions with their evidence, attest,
dispute, resolve through governance, finalize; epoch and record views from the event index.

Subjects (bytes32) say what a record is about:

- a dataset version: ``0x01``, 15 zero bytes, the dataset id and the version as big-endian
  uint64 each (:func:`dataset_subject`); readable back with :func:`describe_subject`;
- a model, an evaluation or a batch of compute jobs: the SHA-256 of its canonical bytes (the
  valuation report, the job file, or the measured storage period: :func:`storage_subject`); a
  digest that happens to start like a dataset subject has probability 2**-128.

Amounts are measured, not typed in: every kind has a rule that derives the amount from its
evidence report for the submitting account, and an attester applies the same rule again
(:meth:`MeterClient.remeasure`):

- data: the dataset version measured (`fullchain.metering.data.data_amount`), measured again;
- algorithm: the submitter's Shapley value in a `ValuationReport`, in basis points of accuracy
  (:func:`algorithm_amount`); the valuation itself is not re-run by the attester;
- gpu: the submitter's GPU-seconds in a `ComputeReport` of a job file (:func:`gpu_amount`);
- storage: the submitter's byte-seconds in a `StorageReport`, measured again from the event
  index up to the report's `measured_until` (:func:`storage_amount`).

Evidence and dispute reasons are stored as content (the profile's content store) and referred
to on chain by the SHA-256 digest of their CIDv1 with raw leaves; they must fit in one leaf
(256 KiB), so that the digest alone names the content.
"""
from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from web3 import Web3
from web3.logs import DISCARD

from ..consortium import ConsortiumClient
from ..contracts import CONTRIBUTION_METER, bind, deploy_contract
from ..errors import InvalidInput
from ..models import (
    FigureDifference,
    MeterDimension,
    MeterEpoch,
    MeterKind,
    MeterRecord,
    MeterSettings,
    Remeasurement,
)
from ..storage import ContentStore
from ..storage import cid as cids
from ..transactions import Transactor

if TYPE_CHECKING:
    from ..datasets import DatasetsClient
    from ..index import EventIndex
    from .compute import ComputeReport, StorageReport
    from .value import ValuationReport

# IContributionMeter.Kind and .Dimension, in declaration order; append only.
KINDS: tuple[MeterKind, ...] = ("data", "algorithm", "gpu", "storage")
DIMENSIONS: tuple[MeterDimension, ...] = ("data", "algorithm", "compute")
DIMENSION_OF_KIND: dict[MeterKind, MeterDimension] = {
    "data": "data", "algorithm": "algorithm", "gpu": "compute", "storage": "compute"}
STATUSES = ("none", "submitted", "disputed", "upheld", "rejected")

WEIGHT_SCALE = 10**18
DAY = 24 * 3600
DEFAULT_EPOCH_LENGTH = 30 * DAY
DEFAULT_DISPUTE_WINDOW = 7 * DAY
DEFAULT_ATTESTATIONS = 1
# One point per unit for data (the measured data amount), algorithm (the gain's unit) and GPU
# seconds; storage byte-seconds are worth a GPU second per GiB-hour held, a starting exchange
# rate for governance to revise.
DEFAULT_WEIGHTS: dict[MeterKind, int] = {
    "data": WEIGHT_SCALE, "algorithm": WEIGHT_SCALE, "gpu": WEIGHT_SCALE,
    "storage": WEIGHT_SCALE // (2**30 * 3600)}
# Bounds ContributionMeter enforces, checked here first for a plain answer.
MIN_PERIOD, MAX_PERIOD = 60, 365 * DAY
MAX_ATTESTATIONS = 32
MAX_AMOUNT = 2**128 - 1
# One raw leaf of the content store's chunker: its CID's digest is the digest of the bytes.
MAX_EVIDENCE_BYTES = 256 * 1024

_DATASET_TAG = b"\x01" + b"\0" * 15
# What to do about the meter's refusals (the error itself names the facts).
_HINTS = {
    "ContributionMeterNotMember": "only active consortium members submit and dispute; ask the governors to admit you",
    "ContributionMeterNotAttester": "attesting needs the attester role; the governors grant it (`fullchain member "
                                    "propose roles`)",
    "ContributionMeterSelfAttestation": "another attester must attest your own records",
    "ContributionMeterAlreadyAttested": "each attester attests a record once",
    "ContributionMeterDuplicateRecord": "one record per epoch, member, dimension and subject; see `fullchain meter "
                                        "records`",
    "ContributionMeterEpochNotStarted": "submit for the current epoch (`fullchain meter epoch`)",
    "ContributionMeterEpochClosed": "the epoch's dispute window is over: its records no longer change",
    "ContributionMeterEpochFinalized": "a finalized epoch no longer changes",
    "ContributionMeterDisputeWindowOpen": "an epoch is finalized once its dispute window is over",
    "ContributionMeterOpenDisputes": "the governors resolve the open disputes first (`fullchain meter resolve`)",
    "ContributionMeterWrongStatus": "see the record's status with `fullchain meter records`",
}
# The figures of a data measurement report an attester compares. All are deterministic for the
# same file and the same as_of, so all are compared exactly: counts, and completeness too (a
# tolerance of 0 basis points). The tool version is not compared: a newer measuring tool
# giving the same figures is agreement.
DATA_FIGURES = ("sha256", "size", "standard", "domain", "rows", "cases", "completeness_bps", "newest_date",
                "as_of", "timeliness_days")


def dataset_subject(dataset_id: int, version: int) -> bytes:
    """The subject of a dataset version: 0x01, 15 zero bytes, id and version as uint64."""
    if not (0 < dataset_id < 2**64 and 0 < version < 2**64):
        raise InvalidInput(f"dataset {dataset_id} version {version} is out of range",
                           hint="dataset ids and versions start at 1")
    return _DATASET_TAG + dataset_id.to_bytes(8, "big") + version.to_bytes(8, "big")


def digest_subject(content: bytes) -> bytes:
    """The subject of a model, an evaluation or a job batch: the SHA-256 of its bytes."""
    return hashlib.sha256(content).digest()


def parse_dataset_subject(subject: bytes) -> tuple[int, int] | None:
    """(dataset id, version) of a dataset subject, None for a digest subject."""
    if len(subject) == 32 and subject[:16] == _DATASET_TAG:
        return int.from_bytes(subject[16:24], "big"), int.from_bytes(subject[24:], "big")
    return None


def describe_subject(subject: bytes) -> str:
    found = parse_dataset_subject(subject)
    return f"dataset {found[0]} version {found[1]}" if found else "0x" + subject.hex()


def parse_subject(text: str) -> bytes:
    """A subject given by a user: `DATASET:VERSION` (e.g. 3:1) or 64 hex digits (a digest)."""
    if ":" in text:
        dataset, _, version = text.partition(":")
        if dataset.isdigit() and version.isdigit():
            return dataset_subject(int(dataset), int(version))
    raw = text.removeprefix("0x")
    if len(raw) == 64:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    raise InvalidInput(f"subject '{text}' is neither DATASET:VERSION nor a 32-byte hex digest",
                       hint="write e.g. 3:1 for dataset 3 version 1, or the SHA-256 of the model or job batch")


def storage_subject(start: int, end: int) -> bytes:
    """The subject of a storage record: the period measured, so that a member claims a period's
    storage once (measuring it again later gives another report, not another subject)."""
    return hashlib.sha256(f"fullchain.metering.storage/1 {start} {end}".encode()).digest()


def _same_account(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _half_up(x: float) -> int:
    # Not round(): banker's rounding would make x.5 depend on parity, a rule harder to state.
    return math.floor(x + 0.5)


def algorithm_amount(report: ValuationReport, account: str) -> int:
    """The amount of `account`'s algorithm record: its Shapley value in `report` (accuracy
    points, i.e. percent) in basis points of accuracy, rounded half up. A provider whose data
    does not raise accuracy has nothing to claim."""
    found = [p for p in report.providers if _same_account(p.provider, account)]
    if not found:
        raise InvalidInput(f"the valuation report values no data of {account} (its providers: "
                           f"{', '.join(p.provider for p in report.providers) or 'none'})",
                           hint="each provider submits its own value: value datasets that include yours "
                                "(`fullchain meter value DATASET...`)")
    value = found[0].value
    amount = _half_up(value * 100)
    if amount <= 0:
        raise InvalidInput(f"the Shapley value of {account}'s data is {value:+.4f} accuracy points: nothing to claim",
                           hint="only data that raises the model's accuracy earns algorithm points")
    return amount


def gpu_amount(report: ComputeReport, account: str) -> int:
    """The amount of `account`'s GPU record: its GPU-seconds in `report`, rounded half up. The
    job file names members by account address (for Slurm files, accounts are mapped to
    addresses when measuring)."""
    mine = [m for m in report.members if _same_account(m.member, account)]
    if not mine:
        raise InvalidInput(f"the job file {report.file} has no jobs of {account} (members in it: "
                           f"{', '.join(m.member for m in report.members) or 'none'})",
                           hint="the CSV's member column names the member's account address; for a Slurm "
                                "file, give the Slurm account your jobs ran under (--slurm-account)")
    return _half_up(sum(m.gpu_seconds for m in mine))


def storage_amount(report: StorageReport, account: str) -> int:
    """The amount of `account`'s storage record: its byte-seconds in `report`."""
    mine = [m for m in report.members if _same_account(m.member, account)]
    if not mine:
        raise InvalidInput(f"{account} held no dataset version from {report.start:%Y-%m-%d %H:%M:%S} to "
                           f"{report.measured_until:%Y-%m-%d %H:%M:%S} UTC",
                           hint="storage is counted for the datasets a member registered and has not erased")
    return sum(m.byte_seconds for m in mine)


def parse_report(raw: bytes, kind: MeterKind) -> Any:
    """The evidence report of a `kind` record: a ValuationReport (algorithm), ComputeReport
    (gpu) or StorageReport (storage). Raises InvalidInput for anything else, a generic report
    with a typed-in `amount` included."""
    from pydantic import ValidationError

    from . import compute

    if kind == "algorithm":
        from .value import REPORT_KIND, ValuationReport

        model: Any = ValuationReport
        expected, command = REPORT_KIND, "fullchain meter value --json"
    elif kind == "gpu":
        model, expected, command = compute.ComputeReport, "fullchain.metering.compute/1", "fullchain meter compute --json"
    elif kind == "storage":
        model, expected, command = compute.StorageReport, "fullchain.metering.storage/1", "fullchain meter storage --json"
    else:
        raise InvalidInput(f"a {kind} record has no report of this kind", hint="use submit_data for data records")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "the document"
        raise InvalidInput(f"the report is not a {expected} report ({where}: {first.get('msg', 'invalid')})",
                           hint=f"give the JSON `{command}` wrote, unchanged: amounts are measured, not typed in") from None


def kind_number(kind: str) -> int:
    if kind not in KINDS:
        raise InvalidInput(f"unknown measure kind '{kind}'", hint="use one of " + ", ".join(KINDS))
    return KINDS.index(kind)


def check_period(seconds: int, *, what: str) -> None:
    if not MIN_PERIOD <= seconds <= MAX_PERIOD:
        raise InvalidInput(f"a {what} of {seconds} s is outside 60 s .. 365 days",
                           hint=f"give a {what} between 1m and 365d, e.g. 30d")


def check_attestations(required: int) -> None:
    if not 1 <= required <= MAX_ATTESTATIONS:
        raise InvalidInput(f"{required} attestations per record is outside 1..{MAX_ATTESTATIONS}",
                           hint="give a number of attestations between 1 and 32")


def deploy_meter(tx: Transactor, w3: Web3, consortium: str, licensing: str, *,
                 epoch_length: int = DEFAULT_EPOCH_LENGTH, dispute_window: int = DEFAULT_DISPUTE_WINDOW,
                 attestations: int = DEFAULT_ATTESTATIONS,
                 weights: dict[MeterKind, int] | None = None) -> tuple[str, int]:
    """Deploy a ContributionMeter governed by `consortium`, whose data records reward the
    patients whose consent `licensing` (the DataUseLicensing contract) records; its address and
    block."""
    check_period(epoch_length, what="epoch length")
    check_period(dispute_window, what="dispute window")
    check_attestations(attestations)
    chosen = {**DEFAULT_WEIGHTS, **(weights or {})}
    return deploy_contract(tx, w3, CONTRIBUTION_METER, consortium, licensing, epoch_length, dispute_window,
                           attestations, [chosen[k] for k in KINDS])


class MeterClient:
    """One deployed ContributionMeter; writes are signed by the transactor's account."""

    def __init__(self, *, w3: Web3, address: str, transactor: Transactor, store: ContentStore,
                 consortium: ConsortiumClient, index: Callable[[], EventIndex],
                 datasets: Callable[[], DatasetsClient] | None = None) -> None:
        self._datasets = datasets
        self._w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = bind(w3, CONTRIBUTION_METER, address)
        self._tx = transactor
        self._store = store
        self._consortium = consortium
        self._index = index

    # ---- members ----

    def submit(self, kind: MeterKind, subject: bytes, amount: int, report: bytes, *,
               epoch: int | None = None) -> MeterRecord:
        """Store `report` (the measurement report, JSON bytes) and record `amount` of `kind`
        about `subject` for this profile's account, in `epoch` (default: the current one)."""
        number = kind_number(kind)
        if len(subject) != 32:
            raise InvalidInput(f"a subject is 32 bytes, not {len(subject)}", hint="use dataset_subject or digest_subject")
        if not 0 < amount <= MAX_AMOUNT:
            raise InvalidInput(f"the amount {amount} is not between 1 and 2**128-1",
                               hint="a zero measurement is not a contribution; nothing to submit")
        self._tx.unlock()
        when = self.current_epoch() if epoch is None else epoch
        digest = self._put(report, what="measurement report")
        fn = self.contract.functions.submit(when, number, subject, amount, digest)
        receipt = self._send(fn)
        event = self.contract.events.RecordSubmitted().process_receipt(receipt, errors=DISCARD)[0]
        return self.record(int(event["args"]["recordId"]))

    def submit_data(self, dataset_id: int, version: int | None = None, *,
                    standard: str | None = None) -> MeterRecord:
        """Measure a dataset version (fetched and decrypted here, into a private temporary
        file) and submit its data amount with the measurement report as evidence. Timeliness is
        counted to the version's registration time on chain, so an attester measuring later
        gets the same figures."""
        datasets = self._need_datasets()
        v = datasets.version(dataset_id, version)
        self._tx.unlock()
        measurement = self._measure(datasets, dataset_id, v.version, standard or v.standard, v.registered_at)
        data = _data_module()
        amount = data.data_amount(measurement)
        if amount == 0:
            raise InvalidInput(f"dataset {dataset_id} version {v.version} measures a data amount of 0 "
                               f"({measurement.cases} cases, completeness {measurement.completeness_bps} bps)",
                               hint="a version with no complete cases is no contribution to submit")
        return self.submit("data", dataset_subject(dataset_id, v.version), amount, data.report_json(measurement))

    def submit_algorithm(self, report: bytes, *, subject: bytes | None = None) -> MeterRecord:
        """Submit this account's algorithm contribution from a valuation report (the JSON bytes
        of a `ValuationReport`, e.g. `fullchain meter value --json`, by whoever valued the
        data): its Shapley value in basis points of accuracy (:func:`algorithm_amount`). The
        report is the evidence; the subject is its SHA-256 unless given."""
        parsed = parse_report(report, "algorithm")
        amount = algorithm_amount(parsed, self._tx.address)
        return self.submit("algorithm", subject or digest_subject(report), amount, report)

    def submit_compute(self, jobs_file: Path, *, slurm_account: str | None = None,
                       subject: bytes | None = None) -> MeterRecord:
        """Measure a job file (`sacct --json` output, or the CSV job_id,member,gpu_seconds,
        started,ended whose member column names account addresses) and submit this account's
        GPU-seconds. `slurm_account`: the Slurm account this member's jobs ran under, counted as
        this account. The subject is the job file's SHA-256 (a batch is claimed once)."""
        from .compute import measure_jobs

        mapping = {slurm_account: self._tx.address} if slurm_account else None
        report = measure_jobs(Path(jobs_file), members=mapping)
        amount = gpu_amount(report, self._tx.address)
        return self.submit("gpu", subject or bytes.fromhex(report.sha256), amount,
                           report.model_dump_json().encode())

    def submit_storage(self, start: int, end: int, *, subject: bytes | None = None) -> MeterRecord:
        """Measure this account's storage byte-seconds over [start, end) (unix seconds) from the
        event index, up to now if the period is not over, and submit them; an attester
        measures again up to the same moment (the report's `measured_until`)."""
        from .compute import storage_byte_seconds

        report = storage_byte_seconds(self._index(), start, end)
        amount = storage_amount(report, self._tx.address)
        return self.submit("storage", subject or storage_subject(start, end), amount,
                           report.model_dump_json().encode())

    def remeasure(self, record_id: int) -> Remeasurement:
        """What an attester does before attesting: for a data record, fetch the dataset version
        (the attester needs read access: a license from its owner) and the evidence report,
        measure the file again with the report's as_of, and compare every figure and the
        amount. For algorithm and compute records the amount is derived again from the evidence
        report by the submitter's rule (a report that is not a measurement, or an amount that
        differs, does not match); storage is also measured again from the event index up to the
        report's `measured_until`. Valuations and job files are not re-run here."""
        record = self.record(record_id)
        raw = self.evidence(record)
        if record.kind != "data":
            return self._recheck(record, raw)
        try:
            report = json.loads(raw)
        except ValueError:
            return Remeasurement(record_id=record_id, kind=record.kind, recomputed=False, matches=False,
                                 differences=[FigureDifference(figure="evidence", recorded="JSON report",
                                                               measured="not JSON")])
        if not isinstance(report, dict):
            report = {}
        found = parse_dataset_subject(bytes.fromhex(record.subject[2:]))
        if found is None:
            return Remeasurement(record_id=record_id, kind=record.kind, recomputed=False, matches=False,
                                 differences=[FigureDifference(figure="subject", recorded=record.subject,
                                                               measured="not a dataset version")])
        datasets = self._need_datasets()
        as_of = report.get("as_of")
        moment = datetime.fromisoformat(as_of) if isinstance(as_of, str) else \
            datasets.version(found[0], found[1]).registered_at
        measurement = self._measure(datasets, found[0], found[1], report.get("standard"), moment)
        measured = json.loads(_data_module().report_json(measurement))
        differences = [FigureDifference(figure=f, recorded=report.get(f), measured=measured.get(f))
                       for f in DATA_FIGURES if report.get(f) != measured.get(f)]
        amount = _data_module().data_amount(measurement)
        if amount != record.amount:
            differences.append(FigureDifference(figure="amount", recorded=record.amount, measured=amount))
        return Remeasurement(record_id=record_id, kind=record.kind, recomputed=True, matches=not differences,
                             differences=differences)

    def _recheck(self, record: MeterRecord, raw: bytes) -> Remeasurement:
        """Algorithm, GPU and storage records: the amount derived again from the evidence by the
        submitter's rule; storage also measured again from the index."""
        def differs(figure: str, recorded: Any, measured: Any, *, recomputed: bool = False) -> Remeasurement:
            return Remeasurement(record_id=record.id, kind=record.kind, recomputed=recomputed, matches=False,
                                 differences=[FigureDifference(figure=figure, recorded=recorded, measured=measured)])

        try:
            report = parse_report(raw, record.kind)
            rule = {"algorithm": algorithm_amount, "gpu": gpu_amount, "storage": storage_amount}[record.kind]
            amount = rule(report, record.member)
        except InvalidInput as exc:
            return differs("evidence", f"a measured {record.kind} report", exc.message)
        differences = []
        recomputed = False
        if record.kind == "storage":
            from .compute import storage_byte_seconds

            recomputed = True
            again = storage_byte_seconds(self._index(), report.start, report.end, as_of=report.measured_until)
            try:
                measured = storage_amount(again, record.member)
            except InvalidInput:
                measured = 0
            if measured != amount:
                differences.append(FigureDifference(figure="byte_seconds", recorded=amount, measured=measured))
            amount = measured
        if amount != record.amount:
            differences.append(FigureDifference(figure="amount", recorded=record.amount, measured=amount))
        return Remeasurement(record_id=record.id, kind=record.kind, recomputed=recomputed, matches=not differences,
                             differences=differences)

    def _need_datasets(self) -> DatasetsClient:
        if self._datasets is None:
            raise InvalidInput("this meter client has no dataset access", hint="use fc.meter from fullchain.connect")
        return self._datasets()

    @staticmethod
    def _measure(datasets: DatasetsClient, dataset_id: int, version: int, standard: str | None,
                 as_of: datetime) -> Any:
        data = _data_module()
        with tempfile.TemporaryDirectory(prefix="fullchain-meter-") as tmp:  # 0700: plaintext stays private
            path = Path(tmp) / "version"
            datasets.fetch(dataset_id, path, version=version)
            # Chain and store keep no file name, and the measurer tells CSV from NDJSON by the
            # name's suffix (SAS XPT by its header, whatever the name): name it after its content.
            with path.open("rb") as fh:
                head = fh.read(64).lstrip()
            named = path.rename(path.with_suffix(".ndjson" if head.startswith(b"{") else ".csv"))
            return data.measure_file(named, standard=standard, as_of=as_of)

    def attest(self, record_id: int) -> MeterRecord:
        self._send(self.contract.functions.attest(record_id))
        return self.record(record_id)

    def dispute(self, record_id: int, reason: bytes) -> MeterRecord:
        """Dispute a record; `reason` (text or JSON bytes, e.g. the differences found when
        measuring again) is stored as content, its digest goes on chain."""
        if not reason.strip():
            raise InvalidInput("a dispute needs a reason", hint="say what is wrong with the record (--reason)")
        self._tx.unlock()
        self._check_record(record_id)
        digest = self._put(reason, what="dispute reason")
        self._send(self.contract.functions.dispute(record_id, digest))
        return self.record(record_id)

    def finalize(self, epoch: int) -> MeterEpoch:
        self._send(self.contract.functions.finalize(epoch))
        return self.epoch(epoch)

    # ---- governance (proposals of the Consortium, approved k of n) ----

    def propose_resolution(self, record_id: int, *, upheld: bool) -> int:
        """Propose resolving a record's dispute: `upheld`, the record stands; else it is
        rejected. Returns the Consortium proposal id (governors approve and execute it)."""
        record = self._check_record(record_id)
        if record.status != "disputed":
            raise InvalidInput(f"record {record_id} is {record.status}, not disputed",
                               hint="only disputed records are resolved")
        return self._propose(self.contract.functions.resolve(record_id, upheld))

    def propose_settings(self, *, epoch_length: int | None = None, dispute_window: int | None = None,
                         attestations: int | None = None, weights: dict[MeterKind, int] | None = None) -> list[int]:
        """One Consortium proposal per changed setting; their ids."""
        calls = []
        if epoch_length is not None:
            check_period(epoch_length, what="epoch length")
            calls.append(self.contract.functions.setEpochLength(epoch_length))
        if dispute_window is not None:
            check_period(dispute_window, what="dispute window")
            calls.append(self.contract.functions.setDisputeWindow(dispute_window))
        if attestations is not None:
            check_attestations(attestations)
            calls.append(self.contract.functions.setAttestationsRequired(attestations))
        for kind, weight in (weights or {}).items():
            if not 0 <= weight <= MAX_AMOUNT:
                raise InvalidInput(f"the weight {weight} is outside 0..2**128-1", hint="1e18 is one point per unit")
            calls.append(self.contract.functions.setWeight(kind_number(kind), weight))
        return [self._propose(fn) for fn in calls]

    def _send(self, fn: Any) -> Any:
        return self._tx.call_function(fn, contract=CONTRIBUTION_METER, hints=_HINTS)

    def _propose(self, fn) -> int:  # noqa: ANN001
        return self._consortium.propose_call(self.address, bytes.fromhex(fn._encode_transaction_data()[2:]))

    # ---- chain reads (one call each, not per record) ----

    def current_epoch(self) -> int:
        # At the pending block: the time a transaction sent now is checked at.
        return int(self.contract.functions.currentEpoch().call(block_identifier="pending"))

    def settings(self) -> MeterSettings:
        f = self.contract.functions
        return MeterSettings(epoch_length=f.epochLength().call(), dispute_window=f.disputeWindow().call(),
                             attestations_required=f.attestationsRequired().call(),
                             weights={k: f.weight(i).call() for i, k in enumerate(KINDS)})

    def points(self, epoch: int, member: str, dimension: MeterDimension) -> int:
        """The contract's own figure (the index mirrors it; this is for checking)."""
        return int(self.contract.functions.points(epoch, Web3.to_checksum_address(member),
                                                  DIMENSIONS.index(dimension)).call())

    def total_points(self, epoch: int, dimension: MeterDimension) -> int:
        return int(self.contract.functions.totalPoints(epoch, DIMENSIONS.index(dimension)).call())

    # ---- index reads ----

    def record(self, record_id: int) -> MeterRecord:
        return self._check_record(record_id)

    def records(self, *, epoch: int | None = None, member: str | None = None, status: str | None = None,
                limit: int | None = None, offset: int = 0) -> list[MeterRecord]:
        return self._index().meter_records(epoch=epoch, member=member, status=status, limit=limit, offset=offset)

    def epoch(self, epoch: int | None = None) -> MeterEpoch:
        """Status, totals, and every member's points and shares in `epoch` (default: current)."""
        index = self._index()
        when = index.meter_current_epoch() if epoch is None else epoch
        if when is None:
            when = self.current_epoch()
        return index.meter_epoch(when)

    def evidence(self, record: MeterRecord) -> bytes:
        """The measurement report stored with `record`."""
        return b"".join(self._store.cat(record.evidence_cid))

    def dispute_reason(self, record: MeterRecord) -> bytes | None:
        return b"".join(self._store.cat(record.dispute_reason_cid)) if record.dispute_reason_cid else None

    # ---- internals ----

    def _check_record(self, record_id: int) -> MeterRecord:
        found = self._index().meter_record(record_id)
        if found is None:
            raise InvalidInput(f"there is no contribution record {record_id}",
                               hint="list them with `fullchain meter records`")
        return found

    def _put(self, content: bytes, *, what: str) -> bytes:
        if len(content) > MAX_EVIDENCE_BYTES:
            raise InvalidInput(f"the {what} is {len(content)} bytes; at most {MAX_EVIDENCE_BYTES} are stored "
                               "with a record", hint="keep the report to its figures and the inputs' hashes")
        cid = cids.parse(self._store.add([content]))
        if cids.codec_of(cid) != cids.RAW:  # cannot happen below one chunk; refuse rather than mislabel
            raise InvalidInput(f"the {what} was not stored as a single raw block", hint="use a smaller report")
        return cids.digest_of(cid)


def _data_module() -> Any:
    try:
        from . import data
    except ImportError as exc:
        raise InvalidInput(f"measuring datasets needs fullchain.metering.data, which this installation lacks ({exc})",
                           hint="install a fullchain version with dataset measurement") from None
    return data


def evidence_cid(digest_hex: str) -> str:
    """The CID text of evidence recorded by its digest (0x-hex)."""
    return cids.to_str(cids.make_cid(cids.RAW, bytes.fromhex(digest_hex.removeprefix("0x"))))
