"""The red-line check (fullchain.metering.redline) and its place in registration: a file with
direct identifiers is refused before anything is uploaded or sent, naming the column and the
rule; an override with a reason is recorded in the encrypted metadata."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

import fullchain
from fullchain.demo import synthetic_trial_table
from fullchain.errors import IdentifiersFound, InvalidInput
from fullchain.metadata import build_metadata
from fullchain.metering import data_formats
from fullchain.metering.redline import scan_file
from fullchain.models import Role

from .conftest import run_cli

PW = "redline-tests"


def rules(path: Path) -> set[tuple[str, str]]:
    return {(f.column, f.rule) for f in scan_file(path)}


def csv_file(tmp_path: Path, name: str, frame: dict[str, list[str]]) -> Path:
    path = tmp_path / name
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


# ---- the rules ----


def test_a_patient_name_column_is_found_at_its_first_filled_row(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "dm.csv", {"USUBJID": ["S-1", "S-2", "S-3"], "patient_name": ["", "Li Wei", "Ann Roe"],
                                         "AGE": ["40", "50", "60"]})
    [finding] = scan_file(path)
    assert (finding.column, finding.rule, finding.row, finding.by) == ("patient_name", "personal-name", 2,
                                                                       "column name")
    assert "Li Wei" not in finding.model_dump_json()


def test_phone_numbers_inside_free_text_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_formats, "CSV_BLOCK", 4096)  # the phone number is in a later batch
    notes = ["patient stable, no change"] * 400 + ["asked to call back on (415) 555-0132 after 5pm"] + ["ok"] * 10
    path = csv_file(tmp_path, "ae.csv", {"USUBJID": [f"S-{i}" for i in range(411)], "AECOMMENT": notes})
    [finding] = scan_file(path)
    assert (finding.column, finding.rule, finding.row, finding.by) == ("AECOMMENT", "phone-number", 401, "value")


@pytest.mark.parametrize("text, rule", [
    ("reach me at +49 30 12345678", "phone-number"),
    ("mobile 13800138000", "phone-number"),
    ("tel: 0171 2345678", "phone-number"),
    ("wrote to jane.roe@example.org", "email-address"),
    ("SSN 123-45-6789 on file", "national-id"),
    ("ID 11010519491231002X", "national-id"),  # a Chinese resident id with a valid check digit
    ("lives at 221 Baker Street", "street-address"),
    ("wohnt Hauptstraße 5 in Köln", "street-address"),
    ("12 rue de la Paix", "street-address"),
    ("北京市朝阳区建国路88号", "street-address"),
])
def test_value_patterns_in_any_column(tmp_path: Path, text: str, rule: str) -> None:
    path = csv_file(tmp_path, "x.csv", {"USUBJID": ["S-1", "S-2"], "COMMENT": ["nothing", text]})
    assert rules(path) == {("COMMENT", rule)}


@pytest.mark.parametrize("text", [
    "dose 10 mg twice a day for 14 days", "visit 2025-03-15T10:30", "lab 13.2 g/dL (ref 12.0-15.5)",
    "ID 110105194912310021",  # 18 digits, wrong check digit
    "SSN-like 000-12-3456", "study FC-001-101-0001", "took 2 pills this way", "batch 20250315 lot 4471",
])
def test_ordinary_clinical_text_passes(tmp_path: Path, text: str) -> None:
    path = csv_file(tmp_path, "x.csv", {"USUBJID": ["101-204-0001", "S-2"], "COMMENT": ["nothing", text]})
    assert rules(path) == set()


def test_identifier_columns_by_name(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "x.csv", {"person_id": ["1"], "First Name": ["Ann"], "surname": ["Roe"],
                                        "ssn": ["x"], "Mobile Phone": ["x"], "E-mail": ["x"],
                                        "street_address": ["x"], "drug_name": ["aspirin"], "empty_name": [""]})
    assert rules(path) == {("First Name", "personal-name"), ("surname", "personal-name"), ("ssn", "national-id"),
                           ("Mobile Phone", "phone-number"), ("E-mail", "email-address"),
                           ("street_address", "street-address")}


def test_birth_dates_are_refused_with_the_day_only(tmp_path: Path) -> None:
    partial = csv_file(tmp_path, "dm.csv", {"USUBJID": ["S-1", "S-2"], "BRTHDTC": ["1970", "1981-05"]})
    assert rules(partial) == set()
    full = csv_file(tmp_path, "dm2.csv", {"USUBJID": ["S-1", "S-2"], "BRTHDTC": ["1970", "1981-05-17"]})
    assert [(f.column, f.rule, f.row) for f in scan_file(full)] == [("BRTHDTC", "birth-date", 2)]
    omop = csv_file(tmp_path, "person.csv", {"person_id": ["1"], "year_of_birth": ["1970"],
                                             "month_of_birth": ["5"], "day_of_birth": ["17"]})
    assert rules(omop) == {("day_of_birth", "birth-date")}
    omop_dt = csv_file(tmp_path, "person2.csv", {"person_id": ["1"], "birth_datetime": ["1970-05-17 00:00:00"]})
    assert rules(omop_dt) == {("birth_datetime", "birth-date")}


def test_xpt_sas_birth_date_and_text(tmp_path: Path) -> None:
    import datetime as dt

    df = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "BRTHDT": [dt.date(1970, 1, 2), None],
                       "COVAL": ["", "e-mail ann@example.org"]})
    path = tmp_path / "dm.xpt"
    pyreadstat.write_xport(df, str(path), table_name="DM", variable_format={"BRTHDT": "DATE9."})
    assert rules(path) == {("BRTHDT", "birth-date"), ("COVAL", "email-address")}


def test_fhir_patient_identifiers(tmp_path: Path) -> None:
    clean = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970"}
    named = {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1970-01-02",
             "name": [{"family": "Roe"}], "telecom": [{"system": "phone", "value": "x"}],
             "address": [{"line": ["1 Main St"]}]}
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {
        "reference": "Patient/p1", "display": "Ann Roe"}, "note": [{"text": "mail ann@example.org"}]}
    path = tmp_path / "export.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in (clean, named, obs)) + "\n")
    assert rules(path) == {("Patient.name", "personal-name"), ("Patient.telecom", "phone-number"),
                           ("Patient.address", "street-address"), ("Patient.birthDate", "birth-date"),
                           ("Patient.address.line", "street-address"),
                           ("Observation.subject.display", "personal-name"),
                           ("Observation.note.text", "email-address")}
    coded = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "13645005110"}]}}
    path.write_text(json.dumps(clean) + "\n" + json.dumps(coded) + "\n")
    assert scan_file(path) == []


def test_the_demo_and_readme_data_pass(tmp_path: Path) -> None:
    demo = synthetic_trial_table(tmp_path / "dm.csv", site="H01", country="DEU", subjects=60, seed=7)
    assert scan_file(demo) == []
    readme = tmp_path / "dm-readme.csv"
    readme.write_text("STUDYID,DOMAIN,USUBJID,AGE,SEX\nS001,DM,S001-0001,54,F\nS001,DM,S001-0002,61,M\n")
    assert scan_file(readme) == []


def test_cli_redline_exit_status(tmp_path: Path) -> None:
    bad = csv_file(tmp_path, "dm.csv", {"USUBJID": ["S-1"], "patient_name": ["Ann Roe"]})
    out = run_cli("meter", "redline", str(bad), "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["passed"] is False and report["findings"][0]["column"] == "patient_name"
    assert "Ann Roe" not in out.stdout
    good = csv_file(tmp_path, "dm2.csv", {"USUBJID": ["S-1"], "AGE": ["40"]})
    out = run_cli("meter", "redline", str(good))
    assert out.returncode == 0 and "no direct identifiers" in out.stdout


# ---- registration ----


@pytest.fixture
def hospital(home: Path):  # noqa: ANN201
    fullchain.init("hospital", password=PW)
    fc = fullchain.connect("hospital", password=PW)
    fc.deploy([fullchain.Founder(fc.address, Role.HOSPITAL | Role.GOVERNOR,
                                 bytes.fromhex(fc.profile.hpke_public_key[2:]))], threshold=1)
    return fc


def _stored(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for sub in ("blocks", "journal") if (home / sub).exists()
            for p in (home / sub).rglob("*") if p.is_file()}


def test_register_refuses_identifiers_and_records_an_override(hospital, home: Path, tmp_path: Path) -> None:  # noqa: ANN001
    path = csv_file(tmp_path, "dm.csv", {"STUDYID": ["S1", "S1"], "DOMAIN": ["DM", "DM"], "USUBJID": ["S1-1", "S1-2"],
                                         "NOTES": ["fine", "call 555-867-5309"], "SEX": ["F", "M"]})
    meta = build_metadata(title="DM", standard="sdtm", tier="restricted")
    before = _stored(home)
    with pytest.raises(IdentifiersFound) as err:
        hospital.datasets.register(path, meta)
    assert "'NOTES'" in err.value.message and "phone-number" in err.value.message
    assert "867" not in err.value.diagnostics()
    assert "--allow-identifiers" in err.value.hint and "pseudonymise" in err.value.hint
    assert hospital.datasets.contract.functions.datasetCount().call() == 0
    assert _stored(home) == before  # nothing uploaded, nothing journalled

    with pytest.raises(InvalidInput, match="reason"):
        hospital.datasets.register(path, meta, allow_identifiers="  ")
    with pytest.raises(InvalidInput, match="public"):
        hospital.datasets.register(path, build_metadata(title="DM", tier="public"), allow_identifiers="ok")

    reg = hospital.datasets.register(path, meta, allow_identifiers="contact numbers needed for follow-up, IRB 42")
    stored = hospital.datasets.metadata(reg.dataset_id)
    assert stored is not None
    assert stored.allow_identifiers == "contact numbers needed for follow-up, IRB 42"
    assert stored.redline.status == "overridden"
    assert [(f.column, f.rule, f.row) for f in stored.redline.findings] == [("NOTES", "phone-number", 2)]
    m = stored.measurement
    assert (m.standard, m.domain, m.rows, m.cases, m.as_of, m.timeliness_days) == ("sdtm", "DM", 2, 2, None, None)
    # the document on the store is encrypted: the reason is not readable there
    raw = b"".join(hospital.datasets.store.cat(hospital.datasets.version(reg.dataset_id).metadata_cid))
    assert b"IRB 42" not in raw

    # a new version does not inherit the override: the same file is refused again
    with pytest.raises(IdentifiersFound):
        hospital.datasets.add_version(reg.dataset_id, path, stored)
    clean = csv_file(tmp_path, "dm-v2.csv", {"STUDYID": ["S1"], "DOMAIN": ["DM"], "USUBJID": ["S1-1"], "SEX": ["F"]})
    v2 = hospital.datasets.add_version(reg.dataset_id, clean, stored)
    second = hospital.datasets.metadata(reg.dataset_id, v2.version)
    assert second.allow_identifiers is None and second.redline.status == "passed" and second.measurement.rows == 1


def test_unknown_formats_register_with_the_check_skipped(hospital, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "scan.bin"
    path.write_bytes(bytes(range(256)) * 4)
    reg = hospital.datasets.register(path, build_metadata(title="image", tier="consortium"))
    stored = hospital.datasets.metadata(reg.dataset_id)
    assert stored.redline.status == "skipped" and "not CSV, SAS XPT or NDJSON" in stored.redline.reason
    assert stored.measurement is None and "not CSV" in stored.measurement_skipped


def test_public_metadata_keeps_the_figures_but_not_the_file_hash(hospital, tmp_path: Path) -> None:  # noqa: ANN001
    path = synthetic_trial_table(tmp_path / "dm.csv", site="H01", country="DEU", subjects=60, seed=7)
    reg = hospital.datasets.register(path, build_metadata(title="DM", standard="sdtm", tier="public"))
    stored = hospital.datasets.metadata(reg.dataset_id)
    assert stored.redline.status == "passed"
    assert (stored.measurement.cases, stored.measurement.sha256) == (60, "")


def test_cli_register_refuses_and_overrides(hospital, home: Path, tmp_path: Path) -> None:  # noqa: ANN001
    env = {"FULLCHAIN_PASSWORD": PW}
    path = csv_file(tmp_path, "dm.csv", {"USUBJID": ["S1-1"], "patient_name": ["Ann Roe"], "SEX": ["F"]})
    refused = run_cli("-p", "hospital", "dataset", "register", str(path), "--title", "DM", env=env)
    assert refused.returncode == 1, refused.stderr
    line = refused.stderr.strip()
    assert line.startswith("error: ") and len(line.splitlines()) == 1 and "Traceback" not in line
    assert "'patient_name'" in line and "personal-name" in line and "--allow-identifiers" in line
    assert "Ann Roe" not in line
    assert hospital.datasets.contract.functions.datasetCount().call() == 0

    usage = run_cli("-p", "hospital", "dataset", "register", str(path), "--title", "DM", "--allow-identifiers",
                    env=env)
    assert usage.returncode == 2 and "--reason" in usage.stderr
    assert run_cli("-p", "hospital", "dataset", "register", str(path), "--title", "DM", "--reason", "x",
                   env=env).returncode == 2

    ok = run_cli("-p", "hospital", "dataset", "register", str(path), "--title", "DM", "--allow-identifiers",
                 "--reason", "linkage study, ethics approval 7", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    dataset_id = json.loads(ok.stdout)["dataset_id"]
    shown = json.loads(run_cli("-p", "hospital", "dataset", "show", str(dataset_id), "--json", env=env).stdout)
    assert shown["metadata"]["allow_identifiers"] == "linkage study, ethics approval 7"
    assert shown["metadata"]["redline"]["findings"][0]["column"] == "patient_name"
    text = run_cli("-p", "hospital", "dataset", "show", str(dataset_id), env=env).stdout
    assert "overridden: patient_name (personal-name); reason: linkage study" in text
    assert "sdtm DM: 1 rows, 1 cases" in text

    again = run_cli("-p", "hospital", "dataset", "version", str(dataset_id), str(path), env=env)
    assert again.returncode == 1 and "'patient_name'" in again.stderr
    ok2 = run_cli("-p", "hospital", "dataset", "version", str(dataset_id), str(path), "--allow-identifiers",
                  "--reason", "same study", "--json", env=env)
    assert ok2.returncode == 0, ok2.stderr


def test_a_rerun_resumes_even_if_what_is_measured_changed(hospital, tmp_path: Path,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal knows a registration by the metadata the caller gave, not by the measured
    document: a rerun after an upgrade (another tool version in the measurement) resumes."""
    from fullchain.metering import data as metering_data

    from .test_resume import Interrupted, interrupt_at

    path = synthetic_trial_table(tmp_path / "dm.csv", site="H01", country="DEU", subjects=60, seed=7)
    meta = build_metadata(title="DM", standard="sdtm")
    with pytest.raises(Interrupted):
        hospital.datasets.register(path, meta, progress=interrupt_at("encrypting"))
    monkeypatch.setattr(metering_data, "tool_version", lambda: "fullchain 99.0")
    again = hospital.datasets.register(path, meta)
    assert (again.dataset_id, again.resumed) == (1, True)
    assert hospital.datasets.contract.functions.datasetCount().call() == 1
