"""Contribution metering through the SDK and the CLI: submitting with a report stored as content,
attesting after checking again, disputes with their reasons, resolution by proposal,
finalization, and the record and epoch views read from the event index (they must equal the
contract's own figures)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import fullchain
from fullchain.errors import InvalidInput, NotDeployed, TransactionReverted
from fullchain.metadata import build_metadata
from fullchain.metering.meter import (
    dataset_subject,
    describe_subject,
    digest_subject,
    parse_dataset_subject,
    parse_subject,
)
from fullchain.models import MeterParameters, Role

from .conftest import run_cli

PW = "meter-sdk-tests"
NAMES = ("hospital", "pharma", "auditor", "gov")
ROLES = {"hospital": Role.HOSPITAL, "pharma": Role.PHARMA, "auditor": Role.AUDITOR | Role.ATTESTER,
         "gov": Role.GOVERNOR}
EPOCH = 60
WINDOW = 60


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fullchain.Fullchain]:
    """Four founders on one embedded chain for the module; epochs of a minute (threshold 1)."""
    home = tmp_path_factory.mktemp("meter-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("FULLCHAIN_HOME", str(home))
    mp.setenv("FULLCHAIN_PASSWORD", PW)
    for name in NAMES:
        fullchain.init(name, password=PW)
    fcs = {name: fullchain.connect(name, password=PW) for name in NAMES}
    founders = [fullchain.Founder(fc.address, ROLES[n], bytes.fromhex(fc.profile.hpke_public_key[2:]))
                for n, fc in fcs.items()]
    fcs["gov"].deploy(founders, threshold=1, meter=MeterParameters(epoch_length=EPOCH, dispute_window=WINDOW))
    yield fcs
    mp.undo()


def wait_until(fc: fullchain.Fullchain, moment: int) -> None:
    """Mine empty transfers until the chain's time reaches `moment` (the embedded chain adds a
    second per block)."""
    while fc.w3.eth.get_block("latest")["timestamp"] < moment:
        fc.transactor.transfer(fc.address, 0)


def fresh_epoch(fc: fullchain.Fullchain) -> int:
    """Start of a new epoch, so that a test has the whole epoch in front of it."""
    index = fc.read_index()
    epoch = fc.meter.current_epoch()
    wait_until(fc, index.meter_epoch_bounds(epoch)[1])
    return fc.meter.current_epoch()


def report(amount: int, **extra: object) -> bytes:
    """A generic report with a typed-in amount: stored by the raw `submit`, never attestable."""
    return json.dumps({"amount": amount, **extra}, sort_keys=True).encode()


def jobs_csv(path: Path, *rows: tuple[str, str, float]) -> Path:
    """A job file in the CSV format: (job id, member account, GPU-seconds) per job."""
    lines = ["job_id,member,gpu_seconds,started,ended",
             *(f"{job},{member},{seconds},2026-01-01T00:00:00Z,2026-01-01T02:00:00Z" for job, member, seconds in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def valuation(values: dict[str, float]) -> bytes:
    """A ValuationReport as `meter value --json` writes it, with the given Shapley values
    (accuracy points) per provider; built directly, the valuation itself is tested elsewhere."""
    from fullchain.metering.value import InputFile, ProviderValue, ValuationReport

    providers = [ProviderValue(provider=p, value=v, std_error=0.0, rows=100, files=[]) for p, v in values.items()]
    return ValuationReport(tool="fullchain test", model="logistic", target="OUTCOME", method="exact", permutations=0,
                           seed=0, providers=providers, grand_accuracy=60.0 + sum(values.values()),
                           baseline_accuracy=60.0, baseline="majority class", coalitions_evaluated=4,
                           features=["AGE"], eval=InputFile(name="eval.csv", sha256="00" * 32, rows=50)
                           ).model_dump_json().encode()


def test_subjects_encode_dataset_versions_and_digests() -> None:
    s = dataset_subject(3, 2)
    assert len(s) == 32 and s.hex() == "01" + "00" * 15 + "0000000000000003" + "0000000000000002"
    assert parse_dataset_subject(s) == (3, 2) and describe_subject(s) == "dataset 3 version 2"
    assert parse_subject("3:2") == s
    d = digest_subject(b"model bytes")
    assert parse_dataset_subject(d) is None and parse_subject("0x" + d.hex()) == d
    for bad in ("3", "x:1", "0x1234"):
        with pytest.raises(InvalidInput, match="neither DATASET:VERSION"):
            parse_subject(bad)
    with pytest.raises(InvalidInput):
        dataset_subject(0, 1)


def test_record_lifecycle_and_views_equal_the_contract(world: dict[str, fullchain.Fullchain], tmp_path: Path) -> None:
    from fullchain.metering.compute import ComputeReport

    hospital, pharma, auditor, gov = (world[n] for n in NAMES)
    epoch = fresh_epoch(gov)
    jobs = jobs_csv(tmp_path / "jobs.csv", ("j1", hospital.address, 3600), ("j2", hospital.address.lower(), 3600),
                    ("j3", pharma.address, 999))
    rec = hospital.meter.submit_compute(jobs)  # measured from the job file: only the caller's jobs
    assert (rec.epoch, rec.member, rec.kind, rec.dimension, rec.amount, rec.points) == (
        epoch, hospital.address, "gpu", "compute", 7200, 7200)
    assert rec.status == "submitted" and not rec.counted and rec.required == 1
    assert rec.subject == "0x" + digest_subject(jobs.read_bytes()).hex()  # the job batch
    evidence = hospital.meter.evidence(rec)  # the report is stored as content, by its digest on chain
    assert ComputeReport.model_validate_json(evidence).total_gpu_seconds == 7200 + 999
    with pytest.raises(TransactionReverted) as info:
        hospital.meter.submit("storage", bytes.fromhex(rec.subject[2:]), 1, evidence)  # same dimension and subject
    assert info.value.error_name == "ContributionMeterDuplicateRecord"

    check = auditor.meter.remeasure(rec.id)
    assert check.matches and not check.recomputed  # the amount derived again from the report
    rec = auditor.meter.attest(rec.id)
    assert rec.counted and rec.attesters == [auditor.address]
    data = hospital.meter.submit("data", dataset_subject(9, 1), 40, report(40))
    auditor.meter.attest(data.id)
    pharma.meter.submit("data", dataset_subject(9, 1), 120, report(120))  # another member, same subject

    view = gov.meter.epoch(epoch)
    assert view.state == "open" and view.records == 3
    assert view.totals == {"data": 40, "algorithm": 0, "compute": 7200}
    assert [(m.member, m.points["data"], m.shares_bps["data"], m.shares_bps["compute"]) for m in view.members] == [
        (hospital.address, 40, 10_000, 10_000)]
    assert gov.meter.total_points(epoch, "compute") == 7200 and gov.meter.points(epoch, hospital.address, "data") == 40

    # A dispute takes the points out until a k-of-n resolution; the reason is stored as content.
    rec = pharma.meter.dispute(rec.id, b"the job batch double counts j2")
    assert rec.status == "disputed" and not rec.counted and rec.disputer == pharma.address
    assert pharma.meter.dispute_reason(rec) == b"the job batch double counts j2"
    assert gov.meter.epoch(epoch).totals["compute"] == 0 == gov.meter.total_points(epoch, "compute")
    with pytest.raises(InvalidInput, match="not disputed"):
        gov.meter.propose_resolution(data.id, upheld=True)
    pid = gov.meter.propose_resolution(rec.id, upheld=True)
    assert gov.consortium.proposal(pid).kind == "call"
    gov.consortium.execute(pid)
    rec = gov.meter.record(rec.id)
    assert rec.status == "upheld" and rec.counted
    view = gov.meter.epoch(epoch)
    assert view.totals["compute"] == 7200 == gov.meter.total_points(epoch, "compute")
    assert gov.meter.records(epoch=epoch, member=pharma.address)[0].amount == 120
    assert [r.id for r in gov.meter.records(epoch=epoch, status="upheld")] == [rec.id]

    # Finality: not before the dispute window closes, then for good.
    _, end, closes = gov.read_index().meter_epoch_bounds(epoch)
    with pytest.raises(TransactionReverted) as info:
        gov.meter.finalize(epoch)
    assert info.value.error_name == "ContributionMeterDisputeWindowOpen"
    wait_until(gov, end)
    assert gov.meter.epoch(epoch).state == "in dispute window"
    wait_until(gov, closes)
    final = pharma.meter.finalize(epoch)
    assert final.state == "finalized" and final.totals == {"data": 40, "algorithm": 0, "compute": 7200}


def test_cli_attest_disputes_a_record_whose_figures_differ(world: dict[str, fullchain.Fullchain]) -> None:
    hospital = world["hospital"]
    fresh_epoch(hospital)
    # The report gives the hospital 8 accuracy points, i.e. 800 basis points; 900 was typed in.
    rec = hospital.meter.submit("algorithm", digest_subject(b"model-a"), 900, valuation({hospital.address: 8.0}))
    out = run_cli("-p", "auditor", "meter", "attest", str(rec.id))
    assert out.returncode == 1
    assert "amount: recorded 900, measured 800" in out.stdout and "not attested" in out.stdout
    out = run_cli("-p", "auditor", "meter", "attest", str(rec.id), "--dispute", "--json")
    assert out.returncode == 0, out.stderr
    outcome = json.loads(out.stdout)
    assert outcome["disputed"] and not outcome["attested"]
    assert outcome["check"]["differences"] == [{"figure": "amount", "recorded": 900, "measured": 800}]
    # This process holds several connections to the chain and index files while subprocesses
    # write them: what they wrote must be visible here (it was not while reopening a database
    # file dropped this process's SQLite locks).
    record = hospital.meter.record(rec.id)
    assert record.status == "disputed" and record.disputer == world["auditor"].address
    reason = json.loads(hospital.meter.dispute_reason(record))
    assert reason["differences"][0]["figure"] == "amount"

    out = run_cli("-p", "gov", "meter", "resolve", str(rec.id), "--reject", "--json")
    assert out.returncode == 0, out.stderr
    pid = json.loads(out.stdout)["proposal_id"]
    assert run_cli("-p", "gov", "member", "execute", str(pid)).returncode == 0
    out = run_cli("-p", "hospital", "meter", "records", "--member", "hospital", "--json")
    mine = {r["id"]: r for r in json.loads(out.stdout)}
    assert mine[rec.id]["status"] == "rejected" and mine[rec.id]["amount"] == "900"  # big integers as strings


def test_cli_submit_compute_and_epoch_view(world: dict[str, fullchain.Fullchain], tmp_path: Path) -> None:
    epoch = fresh_epoch(world["pharma"])
    jobs = jobs_csv(tmp_path / "jobs.csv", ("77", world["pharma"].address, 2**70))
    out = run_cli("-p", "pharma", "meter", "submit", "compute", str(jobs), "--json")
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["kind"] == "gpu" and rec["amount"] == str(2**70)
    assert rec["subject"] == "0x" + digest_subject(jobs.read_bytes()).hex()
    assert run_cli("-p", "auditor", "meter", "attest", str(rec["id"])).returncode == 0
    out = run_cli("-p", "gov", "meter", "epoch", str(epoch), "--json")
    view = json.loads(out.stdout)
    assert view["totals"]["compute"] == str(2**70) and view["members"][0]["shares_bps"]["compute"] == 10_000
    text = run_cli("-p", "gov", "meter", "epoch", str(epoch)).stdout
    assert "pharma" in text and "100.00%" in text
    typed = tmp_path / "typed-in.json"
    typed.write_text(json.dumps({"amount": 5000}))  # an amount typed in is no job file
    out = run_cli("-p", "pharma", "meter", "submit", "compute", str(typed))
    assert out.returncode == 1 and "no 'jobs' list" in out.stderr
    out = run_cli("-p", "gov", "meter", "submit", "compute", str(jobs))  # pharma's jobs, not gov's
    assert out.returncode == 1 and "has no jobs of gov (members in it: pharma)" in out.stderr
    out = run_cli("-p", "pharma", "meter", "submit", "algorithm", "--report", str(typed))
    assert out.returncode == 1 and "is not a fullchain.metering.value/1 report" in out.stderr
    for usage in (("compute",), ("compute", str(jobs), "--storage"), ("compute", str(jobs), "--from", "2026-01-01")):
        out = run_cli("-p", "pharma", "meter", "submit", *usage)
        assert out.returncode == 2, (usage, out.stderr)
    out = run_cli("-p", "pharma", "meter", "resolve", "1")
    assert out.returncode == 2 and "--uphold or --reject" in out.stderr


def test_algorithm_records_carry_the_submitters_shapley_value(world: dict[str, fullchain.Fullchain],
                                                             tmp_path: Path) -> None:
    hospital, pharma, auditor = world["hospital"], world["pharma"], world["auditor"]
    fresh_epoch(hospital)
    raw = valuation({hospital.address: 3.14159, pharma.address: -0.5, "0x" + "11" * 20: 1.0})
    rec = hospital.meter.submit_algorithm(raw)
    assert (rec.kind, rec.dimension, rec.amount) == ("algorithm", "algorithm", 314)  # basis points of accuracy
    assert rec.subject == "0x" + digest_subject(raw).hex() and hospital.meter.evidence(rec) == raw
    check = auditor.meter.remeasure(rec.id)
    assert check.matches and not check.recomputed, check.differences
    with pytest.raises(InvalidInput, match="nothing to claim"):
        pharma.meter.submit_algorithm(raw)  # its data lowered accuracy
    with pytest.raises(InvalidInput, match="values no data of"):
        auditor.meter.submit_algorithm(raw)
    with pytest.raises(InvalidInput, match="not a fullchain.metering.value/1 report"):
        hospital.meter.submit_algorithm(report(314))
    # Someone else's value claimed through the raw submit: the rule, for the submitter, gives nothing.
    stolen = world["gov"].meter.submit("algorithm", digest_subject(raw), 314, raw)
    check = auditor.meter.remeasure(stolen.id)
    assert not check.matches and check.differences[0].figure == "evidence"
    assert "values no data of " + world["gov"].address in check.differences[0].measured
    # A typed-in amount with a generic report is never attestable.
    typed = hospital.meter.submit("gpu", digest_subject(b"typed"), 50, report(50))
    check = auditor.meter.remeasure(typed.id)
    assert not check.matches and "not a fullchain.metering.compute/1 report" in check.differences[0].measured
    # The CLI reads the report file and submits the same way.
    path = tmp_path / "valuation.json"
    path.write_bytes(valuation({pharma.address: 0.016}))
    out = run_cli("-p", "pharma", "meter", "submit", "algorithm", "--report", str(path), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["amount"] == "2"  # 1.6 basis points, rounded half up
    out = run_cli("-p", "auditor", "meter", "attest", str(json.loads(out.stdout)["id"]))
    assert out.returncode == 0 and "amount derived again from its evidence report" in out.stdout


def test_storage_records_are_measured_again_from_the_index(world: dict[str, fullchain.Fullchain],
                                                           tmp_path: Path) -> None:
    from fullchain.metering.compute import StorageReport

    hospital, auditor = world["hospital"], world["auditor"]
    epoch = fresh_epoch(hospital)
    src = tmp_path / "dm.csv"
    src.write_text(SDTM_DM)
    hospital.datasets.register(src, build_metadata(title="DM for storage", standard="sdtm"))
    start, end, _ = hospital.read_index().meter_epoch_bounds(epoch)
    wait_until(hospital, start + 5)  # some seconds held
    rec = hospital.meter.submit_storage(start, end)
    measured = StorageReport.model_validate_json(hospital.meter.evidence(rec))
    mine = next(m for m in measured.members if m.member == hospital.address)
    assert rec.kind == "storage" and rec.amount == mine.byte_seconds > 0
    wait_until(hospital, start + 10)  # later, the attester measures up to the report's moment, not its own
    check = auditor.meter.remeasure(rec.id)
    assert check.recomputed and check.matches, check.differences
    inflated = world["pharma"].meter.submit("storage", digest_subject(b"inflated"), rec.amount,
                                            hospital.meter.evidence(rec))
    check = auditor.meter.remeasure(inflated.id)
    assert not check.matches and "held no dataset version" in check.differences[0].measured
    with pytest.raises(InvalidInput, match="held no dataset version"):
        auditor.meter.submit_storage(start, end)
    out = run_cli("-p", "gov", "meter", "submit", "compute", "--storage")
    assert out.returncode == 1 and "held no dataset version" in out.stderr


def test_a_deployment_without_the_meter_says_to_redeploy(home: Path) -> None:
    fullchain.init("solo", password=PW)
    fc = fullchain.connect("solo", password=PW)
    deployment = fc.deploy([fullchain.Founder(fc.address, Role.GOVERNOR, bytes.fromhex(fc.profile.hpke_public_key[2:]))],
                           threshold=1)
    # A deployment record written before metering existed.
    path = next((home / "deployments").glob("*.json"))
    record = json.loads(path.read_text())
    del record["contracts"]["ContributionMeter"]
    path.write_text(json.dumps(record))
    fc = fullchain.connect("solo", password=PW)
    with pytest.raises(NotDeployed, match="has no ContributionMeter") as info:
        _ = fc.meter
    assert "redeploy" in info.value.hint
    out = run_cli("-p", "solo", "meter", "records", env={"FULLCHAIN_PASSWORD": PW})
    assert out.returncode == 1 and "has no ContributionMeter" in out.stderr and "--meter-only" in out.stderr
    out = run_cli("-p", "solo", "chain", "deploy", "--meter-only", "--json", env={"FULLCHAIN_PASSWORD": PW})
    assert out.returncode == 0, out.stderr
    added = json.loads(out.stdout)["contracts"]
    assert added["Consortium"] == deployment.contracts["Consortium"] and added["ContributionMeter"]
    assert run_cli("-p", "solo", "meter", "records", env={"FULLCHAIN_PASSWORD": PW}).returncode == 0


SDTM_DM = """STUDYID,DOMAIN,USUBJID,SUBJID,RFSTDTC,RFENDTC,SITEID,BRTHDTC,AGE,AGEU,SEX,RACE,ETHNIC,ARMCD,ARM,ACTARMCD,ACTARM,COUNTRY,DMDTC
S1,DM,S1-001,001,2026-01-10,2026-06-01,01,,54,YEARS,F,WHITE,NOT HISPANIC OR LATINO,A,Drug,A,Drug,FRA,2026-01-09
S1,DM,S1-002,002,2026-01-12,2026-06-03,01,,61,YEARS,M,ASIAN,,A,Drug,A,Drug,FRA,2026-01-11
S1,DM,S1-003,003,2026-02-01,,02,,47,YEARS,F,,NOT HISPANIC OR LATINO,P,Placebo,P,Placebo,DEU,2026-01-30
"""


@pytest.mark.skipif(importlib.util.find_spec("fullchain.metering.data") is None,
                    reason="fullchain.metering.data (dataset measurement) is not in this branch yet")
def test_data_record_is_measured_and_attested_by_measuring_again(world: dict[str, fullchain.Fullchain],
                                                                 tmp_path: Path) -> None:
    from fullchain.duo import parse_purpose
    from fullchain.metering.data import data_amount, measure_file

    hospital, auditor = world["hospital"], world["auditor"]
    fresh_epoch(hospital)
    src = tmp_path / "dm.csv"
    src.write_text(SDTM_DM)
    reg = hospital.datasets.register(src, build_metadata(title="DM", standard="sdtm"))
    rec = hospital.meter.submit_data(reg.dataset_id)
    version = hospital.datasets.version(reg.dataset_id)
    expected = measure_file(src, standard="sdtm", as_of=version.registered_at)
    assert rec.kind == "data" and rec.amount == data_amount(expected)
    assert rec.subject_label == f"dataset {reg.dataset_id} version 1"
    assert json.loads(hospital.meter.evidence(rec))["cases"] == 3
    # The attester needs read access: the owner licenses it.
    lid = auditor.licensing.request(reg.dataset_id, parse_purpose("GRU"), term_seconds=86400)
    hospital.licensing.grant(lid)
    check = auditor.meter.remeasure(rec.id)
    assert check.recomputed and check.matches, check.differences
    assert auditor.meter.attest(rec.id).counted
    # A record whose amount was typed in rather than measured: the attester's measurement differs.
    inflated = world["pharma"].meter.submit("data", dataset_subject(reg.dataset_id, 1), rec.amount * 10,
                                            hospital.meter.evidence(rec))
    check = auditor.meter.remeasure(inflated.id)
    assert check.recomputed and not check.matches
    assert [(d.figure, d.recorded, d.measured) for d in check.differences] == [
        ("amount", rec.amount * 10, rec.amount)]


def test_meter_tables_replay_to_the_same_state(world: dict[str, fullchain.Fullchain]) -> None:
    """A rewind derives the state tables again from the stored events: the meter's included."""
    from fullchain.index._sync import _transaction, replay

    index = world["gov"].read_index()
    tables = ("meter_records", "meter_attestations", "meter_disputes", "meter_points", "meter_epochs",
              "meter_segments", "meter_settings")

    def dump() -> dict[str, list[tuple]]:
        return {t: sorted(index._conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}

    before = dump()
    assert before["meter_records"] and before["meter_points"] and before["meter_segments"]
    with _transaction(index._conn):
        replay(index._conn)
    assert dump() == before
