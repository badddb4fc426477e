"""The compute dimension: GPU time from job records, and storage held, from the chain.

GPU time. Two record formats, told apart by content:

- Slurm's `sacct --json` (Slurm 23.02 and later, the data_parser schema): for each entry of
  `jobs`, the GPUs of its allocation are the `tres.allocated` entries of type "gres" and name
  "gpu" (typed GPUs, e.g. "gpu:a100", are the same GPUs counted again: not added), and its
  duration is `time.elapsed` (seconds). GPU-seconds = GPUs x elapsed. The member is the job's
  Slurm account (`account`, else `association.account`), mapped to a member name or address
  with `members` where the cluster's account names are not the consortium's. Job steps are
  not added: the job's allocation covers them.
- CSV with the header `job_id,member,gpu_seconds,started,ended` (times as ISO 8601 or unix
  seconds): for schedulers other than Slurm, one line per job.

The report carries the SHA-256 of the job file: an attester re-measures the same file.

Storage. Byte-seconds per member over an epoch [start, end): for each dataset version, its
size (bytes) times the part of [registered, erased) that falls in the epoch, added up per
dataset owner. Sizes and times come from the event index (a version's registration and erasure
block times), so one query covers every version. Versions still stored count up to the
measurement's `as_of` time when the epoch is not over yet (default: the index's now, the later
of the clock and the newest indexed block); the report says up to when (`measured_until`), so
that an attester re-measures with the same `as_of`.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from .. import __version__
from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..index import EventIndex

CSV_HEADER = ("job_id", "member", "gpu_seconds", "started", "ended")
MAX_JOB_FILE = 512 * 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GpuJob(_Model):
    job_id: str
    member: str
    gpus: int | None  # None: the CSV gives GPU-seconds directly
    gpu_seconds: float
    started: datetime | None
    ended: datetime | None


class MemberGpu(_Model):
    member: str
    jobs: int
    gpu_seconds: float
    gpu_hours: float


class ComputeReport(_Model):
    kind: Literal["fullchain.metering.compute/1"] = "fullchain.metering.compute/1"
    tool: str
    file: str  # the job file's name, not its local path
    sha256: str
    format: Literal["slurm-sacct-json", "csv"]
    members: list[MemberGpu]
    total_gpu_seconds: float
    jobs: list[GpuJob]
    skipped_without_gpu: int


class MemberStorage(_Model):
    member: str
    versions: int
    byte_seconds: int


class StorageReport(_Model):
    kind: Literal["fullchain.metering.storage/1"] = "fullchain.metering.storage/1"
    tool: str
    start: datetime
    end: datetime
    measured_until: datetime  # min(end, as_of): a running epoch is measured up to now
    members: list[MemberStorage]
    total_byte_seconds: int


# ---- GPU time ----

def _number(value: Any) -> int | None:
    """An integer field as sacct writes it: a plain number, or (23.02+) {"set", "infinite", "number"}."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return None


def _when(value: Any) -> datetime | None:
    seconds = _number(value)
    return datetime.fromtimestamp(seconds, tz=timezone.utc) if seconds else None


def parse_sacct_json(data: Mapping[str, Any], *, members: Mapping[str, str] | None = None) -> tuple[list[GpuJob], int]:
    """(GPU jobs, number of jobs without a GPU) of a `sacct --json` document."""
    jobs = data.get("jobs") if isinstance(data, Mapping) else None
    if not isinstance(jobs, list):
        raise InvalidInput("the JSON job file has no 'jobs' list", hint="give the output of `sacct --json`")
    out, skipped, seen = [], 0, set()
    for position, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise InvalidInput(f"job #{position} of the sacct file is not an object", hint="give `sacct --json` output")
        job_id = _job_id(job)
        if job_id is None:
            raise InvalidInput(f"job #{position} of the sacct file has no job_id", hint="give `sacct --json` output")
        if job_id in seen:
            raise InvalidInput(f"job {job_id} appears twice in the sacct file",
                               hint="run sacct without --duplicates, so that each job is counted once")
        seen.add(job_id)
        allocated = ((job.get("tres") or {}).get("allocated")) or []
        gpus = sum(_number(t.get("count")) or 0 for t in allocated
                   if isinstance(t, dict) and t.get("type") == "gres" and t.get("name") == "gpu")
        time = job.get("time") or {}
        elapsed = _number(time.get("elapsed")) or 0
        if gpus <= 0 or elapsed <= 0:
            skipped += 1
            continue
        account = job.get("account") or (job.get("association") or {}).get("account")
        if not account:
            raise InvalidInput(f"job {job_id} of the sacct file has no account",
                               hint="the member is the job's Slurm account: run sacct with accounting enforced")
        member = (members or {}).get(account, account)
        out.append(GpuJob(job_id=job_id, member=member, gpus=gpus, gpu_seconds=float(gpus * elapsed),
                          started=_when(time.get("start")), ended=_when(time.get("end"))))
    return out, skipped


def _job_id(job: Mapping[str, Any]) -> str | None:
    job_id = _number(job.get("job_id"))
    if job_id is None:
        return None
    # An array task is named as Slurm shows it: the array's job id and the task's index.
    array = job.get("array") if isinstance(job.get("array"), dict) else {}
    task, array_id = _number(array.get("task_id")), _number(array.get("job_id"))
    return f"{array_id}_{task}" if task is not None and array_id else str(job_id)


def _csv_time(value: str, line: int, column: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise InvalidInput(f"line {line} of the job file: {column} '{value}' is not a time",
                           hint="write times as ISO 8601 (2026-01-31T12:00:00Z) or unix seconds") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_jobs_csv(text: str) -> list[GpuJob]:
    """The jobs of a `job_id,member,gpu_seconds,started,ended` CSV."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise InvalidInput(f"the job file's header is {','.join(header or []) or 'missing'}",
                           hint="the CSV header must be exactly " + ",".join(CSV_HEADER))
    jobs, seen = [], set()
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise InvalidInput(f"line {line} of the job file has {len(row)} fields, not {len(CSV_HEADER)}",
                               hint="write " + ",".join(CSV_HEADER) + " on every line")
        job_id, member, seconds, started, ended = (cell.strip() for cell in row)
        if not job_id or not member:
            raise InvalidInput(f"line {line} of the job file has no job_id or member", hint="fill in both")
        if job_id in seen:
            raise InvalidInput(f"job {job_id} appears twice in the job file (line {line})",
                               hint="list each job once")
        seen.add(job_id)
        try:
            gpu_seconds = float(seconds)
        except ValueError:
            gpu_seconds = -1.0
        if not gpu_seconds >= 0 or gpu_seconds == float("inf"):
            raise InvalidInput(f"line {line} of the job file: gpu_seconds '{seconds}' is not a number of seconds",
                               hint="write GPU-seconds as a non-negative number")
        start, end = _csv_time(started, line, "started"), _csv_time(ended, line, "ended")
        if start and end and end < start:
            raise InvalidInput(f"line {line} of the job file: job {job_id} ended before it started",
                               hint="check the started and ended times")
        jobs.append(GpuJob(job_id=job_id, member=member, gpus=None, gpu_seconds=gpu_seconds, started=start,
                           ended=end))
    return jobs


def measure_jobs(path: Path, *, members: Mapping[str, str] | None = None) -> ComputeReport:
    """GPU-seconds per member from a job file (`sacct --json` output or the CSV)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"the job file {path} is not a readable file",
                           hint="give `sacct --json` output or a job_id,member,gpu_seconds,started,ended CSV")
    if path.stat().st_size > MAX_JOB_FILE:
        raise InvalidInput(f"the job file {path} is larger than {MAX_JOB_FILE >> 20} MiB",
                           hint="split the records into one file per epoch")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"the job file {path} is not UTF-8 text", hint="give JSON or CSV") from None
    skipped = 0
    fmt: Literal["slurm-sacct-json", "csv"]
    if text.lstrip().startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the job file {path} is not valid JSON ({exc.msg}, line {exc.lineno})",
                               hint="give the unmodified output of `sacct --json`") from None
        jobs, skipped = parse_sacct_json(document, members=members)
        fmt = "slurm-sacct-json"
    else:
        jobs = parse_jobs_csv(text)
        fmt = "csv"
    totals: dict[str, list[float]] = {}
    for job in jobs:
        entry = totals.setdefault(job.member, [0, 0.0])
        entry[0] += 1
        entry[1] += job.gpu_seconds
    per_member = [MemberGpu(member=m, jobs=int(c), gpu_seconds=s, gpu_hours=s / 3600)
                  for m, (c, s) in sorted(totals.items())]
    return ComputeReport(tool=f"fullchain {__version__}", file=path.name, sha256=hashlib.sha256(raw).hexdigest(),
                         format=fmt, members=per_member, total_gpu_seconds=sum(j.gpu_seconds for j in jobs),
                         jobs=jobs, skipped_without_gpu=skipped)


# ---- storage ----

def _seconds(value: int | datetime) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


def storage_byte_seconds(index: EventIndex, start: int | datetime, end: int | datetime, *,
                         as_of: int | datetime | None = None) -> StorageReport:
    """Byte-seconds of dataset versions held per owner over [start, end), from a synced index."""
    lo, hi = _seconds(start), _seconds(end)
    if hi <= lo:
        raise InvalidInput(f"the epoch [{lo}, {hi}) is empty", hint="give an end after the start")
    until = min(hi, index.now() if as_of is None else _seconds(as_of))
    totals: dict[str, list[int]] = {}
    for span in index.version_spans(lo, until) if until > lo else []:
        held_from = max(lo, span["registered_at"])
        held_to = min(until, span["erased_at"] if span["erased_at"] is not None else until)
        if held_to <= held_from:
            continue
        entry = totals.setdefault(span["owner"], [0, 0])
        entry[0] += 1
        entry[1] += span["size"] * (held_to - held_from)
    members = [MemberStorage(member=m, versions=v, byte_seconds=b) for m, (v, b) in sorted(totals.items())]
    utc = timezone.utc
    return StorageReport(tool=f"fullchain {__version__}", start=datetime.fromtimestamp(lo, tz=utc),
                         end=datetime.fromtimestamp(hi, tz=utc),
                         measured_until=datetime.fromtimestamp(max(lo, until), tz=utc),
                         members=members, total_byte_seconds=sum(m.byte_seconds for m in members))
