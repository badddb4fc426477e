"""The compute dimension: GPU-seconds from `sacct --json` output and from the job CSV, and
storage byte-seconds per member from a real embedded chain's registrations and erasures."""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import fullchain
from fullchain.errors import InvalidInput
from fullchain.metadata import build_metadata
from fullchain.metering.compute import measure_jobs, storage_byte_seconds
from fullchain.models import Role

from .conftest import run_cli

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def tres(*entries: tuple[str, str, int]) -> list[dict[str, Any]]:
    ids = {"cpu": 1, "mem": 2, "node": 4, "billing": 5, "gres": 1001}
    return [{"type": t, "name": n, "id": ids[t], "count": c} for t, n, c in entries]


def sacct_job(job_id: int, account: str, elapsed: int, allocated: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A job record as `sacct --json` (Slurm 23.02+, data_parser) writes it, trimmed to the
    fields around the ones read plus a step (whose TRES must not be counted again)."""
    job = {
        "account": account, "association": {"account": account, "cluster": "hpc", "partition": "gpu", "user": "u"},
        "job_id": job_id, "name": f"train-{job_id}", "partition": "gpu", "user": "u",
        "array": {"job_id": 0, "limits": {"max": {"running": {"tasks": 0}}}, "task_id": {"set": False,
                                                                                      "infinite": False, "number": 0}},
        "state": {"current": ["COMPLETED"], "reason": "None"},
        "time": {"elapsed": elapsed, "eligible": T0, "end": T0 + elapsed, "start": T0, "submission": T0 - 60,
                 "suspended": 0, "limit": {"set": True, "infinite": False, "number": 1440}},
        "tres": {"allocated": allocated, "requested": allocated},
        "steps": [{"step": {"id": f"{job_id}.batch", "name": "batch"}, "time": {"elapsed": elapsed},
                   "tres": {"allocated": allocated, "requested": {"max": [], "min": [], "average": [], "total": []}}}],
    }
    job.update(extra)
    return job


def sacct_document(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"meta": {"plugin": {"type": "openapi/slurmdbd", "name": "Slurm OpenAPI slurmdbd", "data_parser": "data_parser/v0.0.40"},
                     "Slurm": {"version": {"major": "23", "micro": "4", "minor": "11"}, "release": "23.11.4"}},
            "jobs": list(jobs), "warnings": [], "errors": []}


def test_sacct_json_gpu_seconds_per_account(tmp_path: Path) -> None:
    doc = sacct_document(
        # 4 GPUs (also listed as 4 typed a100 GPUs: the same GPUs) for one hour
        sacct_job(101, "hospital-a", 3600, tres(("cpu", "cpu", 32), ("mem", "mem", 256000), ("node", "node", 1),
                                                ("gres", "gpu", 4), ("gres", "gpu:a100", 4))),
        sacct_job(102, "pharma", 1800, tres(("cpu", "cpu", 8), ("gres", "gpu", 2))),
        sacct_job(103, "hospital-a", 600, tres(("cpu", "cpu", 8), ("gres", "gpu", 1))),
        sacct_job(104, "pharma", 7200, tres(("cpu", "cpu", 64), ("mem", "mem", 1000))),  # CPU only
        # Two tasks of array 105: each its own job id, shown as Slurm shows them (105_0, 105_1).
        sacct_job(105, "pharma", 100, tres(("gres", "gpu", 1)),
                  array={"job_id": 105, "task_id": {"set": True, "infinite": False, "number": 0}}),
        sacct_job(106, "pharma", 300, tres(("gres", "gpu", 1)),
                  array={"job_id": 105, "task_id": {"set": True, "infinite": False, "number": 1}}),
    )
    path = tmp_path / "sacct.json"
    path.write_text(json.dumps(doc))
    r = measure_jobs(path)
    assert r.format == "slurm-sacct-json" and r.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r.file == "sacct.json" and r.skipped_without_gpu == 1
    totals = {m.member: (m.jobs, m.gpu_seconds) for m in r.members}
    assert totals == {"hospital-a": (2, 4 * 3600 + 600), "pharma": (3, 2 * 1800 + 100 + 300)}
    assert r.total_gpu_seconds == 4 * 3600 + 600 + 2 * 1800 + 400
    assert sorted(j.job_id for j in r.jobs) == ["101", "102", "103", "105_0", "105_1"]
    job = next(j for j in r.jobs if j.job_id == "101")
    assert job.gpus == 4 and job.started == datetime.fromtimestamp(T0, tz=timezone.utc)
    # A cluster's account names mapped to the consortium's members.
    mapped = measure_jobs(path, members={"hospital-a": "0xHospital"})
    assert {m.member for m in mapped.members} == {"0xHospital", "pharma"}


def test_sacct_json_errors(tmp_path: Path) -> None:
    path = tmp_path / "sacct.json"
    path.write_text(json.dumps(sacct_document(sacct_job(1, "a", 10, tres(("gres", "gpu", 1))),
                                              sacct_job(1, "a", 10, tres(("gres", "gpu", 1))))))
    with pytest.raises(InvalidInput, match="job 1 appears twice"):
        measure_jobs(path)
    path.write_text('{"jobs": [')
    with pytest.raises(InvalidInput, match="not valid JSON"):
        measure_jobs(path)
    path.write_text('{"meta": {}}')
    with pytest.raises(InvalidInput, match="no 'jobs' list"):
        measure_jobs(path)


def test_csv_jobs_per_member(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,member,gpu_seconds,started,ended\n"
                    "j1,hospital,3600,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z\n"
                    "j2,pharma,7200.5,1767225600,1767229200\n"
                    "\n"
                    "j3,hospital,1800,,\n")
    r = measure_jobs(path)
    assert r.format == "csv" and r.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [(m.member, m.jobs, m.gpu_seconds, m.gpu_hours) for m in r.members] == [
        ("hospital", 2, 5400.0, 1.5), ("pharma", 1, 7200.5, 7200.5 / 3600)]
    assert r.jobs[1].started == datetime.fromtimestamp(T0, tz=timezone.utc) == r.jobs[0].started


@pytest.mark.parametrize("body, message", [
    ("job,member\nj1,a\n", "the job file's header is job,member"),
    ("job_id,member,gpu_seconds,started,ended\nj1,a,-5,,\n", "line 2 of the job file: gpu_seconds '-5'"),
    ("job_id,member,gpu_seconds,started,ended\nj1,a,nan,,\n", "gpu_seconds 'nan'"),
    ("job_id,member,gpu_seconds,started,ended\nj1,a,5,,\nj1,b,5,,\n", "job j1 appears twice in the job file (line 3)"),
    ("job_id,member,gpu_seconds,started,ended\nj1,a,5,2026-01-02,2026-01-01\n", "job j1 ended before it started"),
    ("job_id,member,gpu_seconds,started,ended\nj1,a,5,yesterday,\n", "started 'yesterday' is not a time"),
    ("job_id,member,gpu_seconds,started,ended\nj1,a,5\n", "line 2 of the job file has 3 fields"),
])
def test_csv_errors_name_the_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(body)
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        measure_jobs(path)


def test_cli_meter_compute(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,member,gpu_seconds,started,ended\nj1,hospital,7200,,\nj2,pharma,1800,,\n")
    done = run_cli("meter", "compute", str(path))
    assert done.returncode == 0, done.stderr
    assert "hospital" in done.stdout and "2.00" in done.stdout and "total: 2.50 GPU-hours" in done.stdout
    as_json = run_cli("meter", "compute", str(path), "--json")
    assert json.loads(as_json.stdout)["total_gpu_seconds"] == 9000
    missing = run_cli("meter", "compute", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "is not a readable file" in missing.stderr and "Traceback" not in missing.stderr


# ---- storage from the chain ----

PW = "metering-compute"


def test_storage_byte_seconds_from_the_chain(home: Path, tmp_path: Path) -> None:
    for name in ("hospital", "pharma"):
        fullchain.init(name, password=PW)
    hospital = fullchain.connect("hospital", password=PW)
    pharma = fullchain.connect("pharma", password=PW)
    key = lambda fc: bytes.fromhex(fc.profile.hpke_public_key[2:])  # noqa: E731
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA, key(pharma))], threshold=1)

    def file(name: str, size: int) -> Path:
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        return path

    meta = build_metadata(title="t", standard="sdtm")
    d1 = hospital.datasets.register(file("a", 1000), meta).dataset_id
    hospital.datasets.add_version(d1, file("a2", 3000), meta)
    d2 = pharma.datasets.register(file("b", 500), meta).dataset_id
    erased = hospital.datasets.erase(d1, 1)
    assert erased.erased
    d3 = pharma.datasets.register(file("c", 200), meta).dataset_id
    # Independently of the index: sizes and registration times from the contract, the erasure
    # time from the block of the VersionErased log.
    log = hospital.datasets.contract.events.VersionErased().get_logs(from_block=0)[0]
    erased_at = hospital.w3.eth.get_block(log["blockNumber"])["timestamp"]
    versions = {(d, v.version): v for d in (d1, d2, d3) for v in hospital.datasets.versions(d)}
    owner = {d1: hospital.address, d2: pharma.address, d3: pharma.address}
    head = hospital.w3.eth.get_block("latest")["timestamp"]

    def expected(start: int, end: int) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (d, number), v in versions.items():
            held_from = max(start, int(v.registered_at.timestamp()))
            held_to = min(end, erased_at if (d, number) == (d1, 1) else end)
            if held_to > held_from:
                totals[owner[d]] = totals.get(owner[d], 0) + v.size * (held_to - held_from)
        return totals

    index = hospital.read_index()
    first = int(versions[(d1, 1)].registered_at.timestamp())
    for start, end in [(first - 10, head + 50), (first + 1, erased_at), (erased_at, head + 1), (head + 5, head + 9)]:
        r = storage_byte_seconds(index, start, end, as_of=head + 50)
        assert {m.member: m.byte_seconds for m in r.members} == expected(start, min(end, head + 50)), (start, end)
    whole = storage_byte_seconds(index, first - 10, head + 50, as_of=head + 50)
    assert {m.member: m.versions for m in whole.members} == {hospital.address: 2, pharma.address: 2}
    assert whole.total_byte_seconds == sum(m.byte_seconds for m in whole.members) > 0
    # A running epoch is measured up to the newest indexed block, not into the future.
    running = storage_byte_seconds(index, first - 10, head + 10**6)
    assert running.measured_until.timestamp() <= max(head, index.now())
    with pytest.raises(InvalidInput, match="is empty"):
        storage_byte_seconds(index, head, head)
    done = run_cli("meter", "storage", "--from", str(first - 10), "--to", str(head + 50), "--as-of", str(head + 50),
                   "--profile", "pharma", "--json", env={"FULLCHAIN_PASSWORD": PW})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total_byte_seconds"] == whole.total_byte_seconds
    bad = run_cli("meter", "storage", "--from", "soon", "--to", "2026-02-01", "--profile", "pharma")
    assert bad.returncode == 2 and "'soon' is not a time" in bad.stderr
