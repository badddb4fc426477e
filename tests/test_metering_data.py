"""Measuring dataset files (fullchain.metering.data), checked against an independent pandas
computation on the same files: SDTM CSV and XPT, ADaM, OMOP CSV, FHIR NDJSON, with missing cells,
read in many small batches so that every count crosses batch boundaries."""
from __future__ import annotations

import hashlib
import json
import random
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from fullchain.errors import InvalidInput
from fullchain.metering import data_formats
from fullchain.metering.data import DataMeasurement, data_amount, measure_file, report_json, with_as_of

from .conftest import run_cli

AS_OF = datetime(2026, 6, 30, 12, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of a few rows: subjects, missing cells and dates are counted across batches."""
    monkeypatch.setattr(data_formats, "CSV_BLOCK", 4096)
    monkeypatch.setattr(data_formats, "XPT_CHUNK", 7)


def shipped(standard_file: str, domain: str) -> list[str]:
    """The variable list as shipped, read with pandas (not with the SDK's loader)."""
    with resources.as_file(resources.files("fullchain").joinpath("data", standard_file)) as path:
        table = pd.read_csv(path, comment="#", dtype=str)
    assert set(table["source"]) <= {"SDTMIG 3.4", "ADaMIG 1.3", "OMOP CDM v5.4", "FHIR R4"}
    return list(table[table["domain"] == domain]["variable"])


def expected(df: pd.DataFrame, variables: list[str], subject: str) -> tuple[int, int, int]:
    """(rows, cases, completeness_bps) by pandas."""
    missing = df.replace("", pd.NA)
    filled = sum(int(missing[v].notna().sum()) for v in variables if v in missing.columns)
    return len(df), int(missing[subject].dropna().nunique()), filled * 10_000 // (len(df) * len(variables))


def iso_dates(df: pd.DataFrame, columns: list[str]) -> date:
    values = pd.concat([df[c] for c in columns]).replace("", pd.NA).dropna().astype(str).str.slice(0, 10)
    full = values.where(values.str.len() == 10, values + "-01")
    parsed = pd.to_datetime(full, format="%Y-%m-%d")
    return parsed[parsed <= pd.Timestamp(AS_OF.date())].max().date()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sdtm_dm(n: int = 300, seed: int = 1) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        subject = f"S1-{rng.randint(1, n // 3):04d}"  # repeated subjects, across batches
        rows.append({"STUDYID": "S1", "DOMAIN": "DM", "USUBJID": subject, "SUBJID": subject[-4:],
                     "SITEID": rng.choice(["10", "20"]),
                     "RFSTDTC": rng.choice(["", "2024-02", f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"]),
                     "AGE": rng.choice(["", str(rng.randint(18, 90))]), "AGEU": "YEARS",
                     "SEX": rng.choice(["F", "M", ""]), "RACE": rng.choice(["ASIAN", "WHITE", ""]),
                     "ARMCD": "A", "ARM": "Drug A", "COUNTRY": rng.choice(["DEU", "CHN", ""]),
                     "EXTRA": "not counted"})
    return pd.DataFrame(rows)


def test_sdtm_csv_matches_pandas(tmp_path: Path) -> None:
    df = sdtm_dm()
    path = tmp_path / "dm.csv"
    df.to_csv(path, index=False)
    m = measure_file(path, as_of=AS_OF)
    variables = shipped("sdtm_variables.csv", "DM")
    assert (m.standard, m.domain, m.format) == ("sdtm", "DM", "csv")
    assert (m.rows, m.cases, m.completeness_bps) == expected(df, variables, "USUBJID")
    assert m.newest_date == iso_dates(df, ["RFSTDTC"])
    assert m.timeliness_days == (AS_OF.date() - m.newest_date).days
    assert (m.sha256, m.size) == (sha(path), path.stat().st_size)
    assert m.variables.checked == variables and m.variables.source == "SDTMIG 3.4"
    assert set(m.variables.absent) == {v for v in variables if v not in df.columns}
    assert m.tool.startswith("fullchain ")


def test_sdtm_xpt_matches_pandas(tmp_path: Path) -> None:
    rng = random.Random(2)
    rows = [{"STUDYID": "S1", "DOMAIN": "AE", "USUBJID": f"S1-{rng.randint(1, 40):04d}", "AESEQ": float(i + 1),
             "AETERM": rng.choice(["HEADACHE", "NAUSEA", ""]), "AEDECOD": rng.choice(["Headache", ""]),
             "AESER": rng.choice(["Y", "N", ""]), "AESTDTC": rng.choice(["", "2025-03", "2025-11-02T10:00"]),
             "AESEV": "MILD"} for i in range(100)]
    df = pd.DataFrame(rows)
    df.loc[5, "AESEQ"] = float("nan")  # a missing numeric cell
    path = tmp_path / "ae.xpt"
    pyreadstat.write_xport(df, str(path), table_name="AE")
    read, _ = pyreadstat.read_xport(str(path))  # what the file holds, read independently in one go
    m = measure_file(path, as_of=AS_OF)
    variables = shipped("sdtm_variables.csv", "AE")
    assert (m.standard, m.domain, m.format) == ("sdtm", "AE", "xpt")
    assert (m.rows, m.cases, m.completeness_bps) == expected(read, variables, "USUBJID")
    assert m.newest_date == iso_dates(read, ["AESTDTC"]) == date(2025, 11, 2)
    assert m.sha256 == sha(path)


def test_adam_adsl_xpt_with_sas_dates(tmp_path: Path) -> None:
    df = pd.DataFrame({"STUDYID": ["S1"] * 20, "USUBJID": [f"S1-{i:03d}" for i in range(20)],
                       "SUBJID": [f"{i:03d}" for i in range(20)], "SITEID": ["10"] * 20,
                       "AGE": [float(40 + i) for i in range(20)], "AGEU": ["YEARS"] * 20,
                       "SEX": ["F", "M"] * 10, "RACE": ["ASIAN"] * 20, "ARM": ["A"] * 20, "ACTARM": ["A"] * 20,
                       "TRT01P": ["Drug"] * 19 + [""],
                       "TRTSDT": [date(2025, 1, 1) + timedelta(days=i) for i in range(20)]})
    path = tmp_path / "adsl.xpt"
    pyreadstat.write_xport(df, str(path), table_name="ADSL", variable_format={"TRTSDT": "DATE9."})
    m = measure_file(path, as_of=AS_OF)
    variables = shipped("adam_variables.csv", "ADSL")
    read, _ = pyreadstat.read_xport(str(path))
    assert (m.standard, m.domain) == ("adam", "ADSL")
    assert (m.rows, m.cases, m.completeness_bps) == expected(read, variables, "USUBJID")
    assert m.newest_date == date(2025, 1, 20)


def test_omop_csv_matches_pandas_and_ignores_open_end_dates(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [{"condition_occurrence_id": i, "person_id": rng.choice([rng.randint(1, 50), ""]),
             "condition_concept_id": rng.choice([201826, 4329847, ""]),
             "condition_start_date": f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
             "condition_end_date": rng.choice(["2099-12-31", ""]),  # the usual "still open" placeholder
             "condition_type_concept_id": rng.choice([32817, ""]), "condition_source_value": "I10"}
            for i in range(1, 400)]
    df = pd.DataFrame(rows).astype(str)
    path = tmp_path / "export_part1.csv"  # named after nothing: the table is told by its id column
    df.to_csv(path, index=False)
    m = measure_file(path, as_of=AS_OF)
    variables = shipped("omop_fields.csv", "condition_occurrence")
    assert (m.standard, m.domain) == ("omop", "condition_occurrence")
    assert (m.rows, m.cases, m.completeness_bps) == expected(df, variables, "person_id")
    assert m.newest_date == iso_dates(df, ["condition_start_date", "condition_end_date"])
    assert m.newest_date.year == 2023


def test_omop_person_table_by_name(tmp_path: Path) -> None:
    df = pd.DataFrame({"person_id": range(1, 31), "gender_concept_id": [8507, 8532, ""] * 10,
                       "year_of_birth": [1950 + i for i in range(30)], "race_concept_id": [""] * 30,
                       "ethnicity_concept_id": [0] * 30}).astype(str)
    path = tmp_path / "person.csv"
    df.to_csv(path, index=False)
    m = measure_file(path, as_of=AS_OF)
    assert (m.domain, m.rows, m.cases) == ("person", 30, 30)
    assert m.completeness_bps == expected(df, shipped("omop_fields.csv", "person"), "person_id")[2] == 7333
    assert m.newest_date is None and m.timeliness_days is None


def fhir_lines(tmp_path: Path) -> Path:
    rng = random.Random(4)
    resources_ = []
    for i in range(120):
        obs: dict = {"resourceType": "Observation", "id": f"o{i}", "status": "final",
                     "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}}
        if rng.random() < 0.8:
            obs["subject"] = {"reference": f"Patient/p{rng.randint(1, 25)}"}
        if rng.random() < 0.7:
            obs["effectiveDateTime"] = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:00:00Z"
        if rng.random() < 0.5:
            obs["valueQuantity"] = {"value": 13.2, "unit": "g/dL"}
        if rng.random() < 0.3:
            obs["category"] = [{"coding": [{"code": "laboratory"}]}]
        resources_.append(obs)
    path = tmp_path / "Observation.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in resources_))
    return path


def test_fhir_ndjson_matches_pandas(tmp_path: Path) -> None:
    path = fhir_lines(tmp_path)
    m = measure_file(path, as_of=AS_OF)
    df = pd.read_json(path, lines=True)
    elements = shipped("fhir_elements.csv", "Observation")
    columns = {"status": "status", "category": "category", "code": "code", "subject": "subject",
               "effective[x]": "effectiveDateTime", "value[x]": "valueQuantity"}
    filled = sum(int(df[columns[e]].notna().sum()) for e in elements if columns[e] in df.columns)
    subjects = df["subject"].dropna().map(lambda s: s["reference"].split("/")[1]).nunique()
    assert (m.standard, m.domain, m.format) == ("fhir", "Observation", "ndjson")
    assert (m.rows, m.cases, m.completeness_bps) == (len(df), subjects, filled * 10_000 // (len(df) * len(elements)))
    assert m.newest_date == pd.to_datetime(df["effectiveDateTime"]).max().date()


def test_fhir_patients_are_counted_by_id(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    patients = [{"resourceType": "Patient", "id": f"p{i % 10}", "gender": "female", "birthDate": "1970"}
                for i in range(15)]
    path.write_text("\n".join(json.dumps(p) for p in patients) + "\n")
    m = measure_file(path, as_of=AS_OF)
    assert (m.domain, m.rows, m.cases, m.completeness_bps) == ("Patient", 15, 10, 10_000)


def test_report_json_is_canonical_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "dm.csv"
    sdtm_dm(30).to_csv(path, index=False)
    m = measure_file(path, as_of=AS_OF)
    raw = report_json(m)
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    assert DataMeasurement.model_validate_json(raw) == m
    assert measure_file(path, as_of=AS_OF) == m  # deterministic


def test_data_amount_halves_each_full_year_beyond_the_first(tmp_path: Path) -> None:
    path = tmp_path / "dm.csv"
    sdtm_dm(60).to_csv(path, index=False)
    m = measure_file(path, as_of=AS_OF)
    base = m.cases * m.completeness_bps // 10_000
    assert base > 0
    newest = datetime.combine(m.newest_date, datetime.min.time(), timezone.utc)
    for days, amount in [(0, base), (729, base), (730, base // 2), (1094, base // 2), (1095, base // 4)]:
        later = with_as_of(m, newest + timedelta(days=days))
        assert later.timeliness_days == days
        assert data_amount(later) == amount
    undated = m.model_copy(update={"newest_date": None, "timeliness_days": None})
    assert data_amount(undated) == base // 2
    kept = m.model_copy(update={"as_of": None, "timeliness_days": None})
    with pytest.raises(InvalidInput, match="without an as_of") as err:
        data_amount(kept)
    assert "with_as_of" in err.value.hint


def test_undetectable_and_unknown_files_are_refused_with_the_fix(tmp_path: Path) -> None:
    plain = tmp_path / "table.csv"
    plain.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="cannot tell the data standard") as err:
        measure_file(plain)
    assert "--standard" in err.value.hint
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidInput, match="not CSV, SAS XPT or NDJSON"):
        measure_file(binary)
    ragged = tmp_path / "dm.csv"
    ragged.write_text("USUBJID,AGE\nS-1,40\nS-2,41,EXTRA\n")
    with pytest.raises(InvalidInput, match="not a well-formed CSV"):
        measure_file(ragged)


def test_cli_measure_json_is_the_measurement(tmp_path: Path) -> None:
    path = tmp_path / "dm.csv"
    sdtm_dm(40).to_csv(path, index=False)
    out = run_cli("meter", "measure", str(path), "--json")
    assert out.returncode == 0, out.stderr
    printed = DataMeasurement.model_validate_json(out.stdout)
    direct = measure_file(path)
    assert printed.model_copy(update={"as_of": None, "timeliness_days": None}) == \
        direct.model_copy(update={"as_of": None, "timeliness_days": None})
    text = run_cli("meter", "measure", str(path), "--standard", "sdtm")
    assert text.returncode == 0 and f"cases         {direct.cases}" in text.stdout
    bad = run_cli("meter", "measure", str(tmp_path / "missing.csv"))
    assert bad.returncode == 2
