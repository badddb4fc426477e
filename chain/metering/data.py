"""Measuring a dataset file: how many cases, how complete, how recent.

    cases         distinct subjects: USUBJID (SDTM, ADaM), person_id (OMOP), Patient id or the
                  Patient a resource's subject/patient refers to (FHIR)
    completeness  non-missing cells among the standard's required and expected variables of the
                  domain (or table, or resource type), in basis points; a variable absent from
                  the file counts as missing in every row. The lists are data, with their
                  source named: fullchain/data/{sdtm_variables,adam_variables,omop_fields,
                  fhir_elements}.csv
    timeliness    days from the newest date in the data (birth dates left out; dates after
                  `as_of`, such as OMOP's 2099-12-31 "still open" end dates, left out) to `as_of`

Counts are exact and completeness is an integer ratio, so a re-measurement of the same file by
another member gives the same figures (attesting is re-measuring). The file is streamed: memory
grows with the number of distinct subjects (one set entry per subject), not with rows.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidInput
from .data_formats import Table, column_name
from .data_variables import domains, variable_list

if TYPE_CHECKING:
    import pyarrow as pa

MeasuredStandard = Literal["sdtm", "adam", "omop", "fhir"]
_ISO_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_ISO_PREFIX = r"^\d{4}(-\d{2}(-\d{2})?)?"
_CASES_HALF_LIFE_DAYS = 365


class VariableCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checked: list[str] = Field(description="the required and expected variables counted for completeness")
    absent: list[str] = Field(description="those of them the file does not have (missing in every row)")
    source: str = Field(description="where the list comes from, e.g. SDTMIG 3.4")


class DataMeasurement(BaseModel):
    """What `measure_file` found. Canonical bytes: `report_json`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    standard: MeasuredStandard
    domain: str = Field(description="SDTM/ADaM domain (DM, ADSL), OMOP table (person), FHIR resource type")
    format: Literal["xpt", "csv", "ndjson"]
    rows: int = Field(ge=0)
    cases: int = Field(ge=0, description="distinct subjects")
    completeness_bps: int = Field(ge=0, le=10_000)
    newest_date: date | None
    as_of: datetime | None = Field(description="the moment timeliness is counted to (None: not counted)")
    timeliness_days: int | None = Field(description="newest_date to as_of, in days")
    sha256: str
    size: int = Field(ge=0)
    variables: VariableCheck
    tool: str


def measure_file(path: Path, *, standard: str | None = None, as_of: datetime | None = None) -> DataMeasurement:
    """Measure the file at `path` (CSV, SAS XPT or FHIR NDJSON). `standard` overrides detection.
    Raises InvalidInput when the file is of another format, or its standard or domain cannot be
    told or has no variable list."""
    from .data_inspect import inspect_file

    inspection = inspect_file(Path(path), standard=standard, as_of=as_of, scan=False)
    if inspection.measurement_error is not None:
        raise inspection.measurement_error
    if inspection.measurement is None:
        raise InvalidInput(f"{path} cannot be measured: {inspection.measurement_skipped}",
                           hint="measure a CSV, SAS XPT or FHIR NDJSON file of a supported standard")
    return inspection.measurement


def report_json(m: DataMeasurement) -> bytes:
    """Canonical JSON (sorted keys, no spaces): the evidence stored and hashed."""
    return json.dumps(m.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def with_as_of(m: DataMeasurement, as_of: datetime) -> DataMeasurement:
    """The measurement with its timeliness counted to `as_of` (e.g. a version's registration time
    on chain, for a measurement kept in the metadata without one)."""
    days = None if m.newest_date is None else (_utc(as_of).date() - m.newest_date).days
    return m.model_copy(update={"as_of": _utc(as_of), "timeliness_days": days})


def data_amount(m: DataMeasurement) -> int:
    """The amount a data record carries on chain: quality-adjusted cases.

        amount = cases * completeness_bps // 10000, then halved (integer) once for each full
                 365 days of timeliness beyond the first year

    So data up to 729 days old keeps its full amount, 730..1094 days half, and so on. Data with no
    date at all is counted as if one year beyond (halved once): leaving dates out must not pay.
    Dates after as_of were left out of newest_date, so timeliness is never negative here."""
    amount = m.cases * m.completeness_bps // 10_000
    if m.newest_date is None:
        return amount >> 1
    if m.timeliness_days is None:
        raise InvalidInput("this measurement has no timeliness (it was kept without an as_of)",
                           hint="count it to a moment first: with_as_of(measurement, registered_at)")
    halvings = max(0, m.timeliness_days - _CASES_HALF_LIFE_DAYS) // _CASES_HALF_LIFE_DAYS
    return amount >> min(halvings, 255)


def tool_version() -> str:
    from .. import __version__

    return f"fullchain {__version__}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


# ---- detection ----


def detect_tabular(table: Table, standard: str | None) -> tuple[str, str]:
    """(standard, domain) of a CSV or XPT file; InvalidInput when it cannot be told."""
    upper = {c.upper() for c in table.columns}
    lower = {c.lower() for c in table.columns}
    stem = table.path.name.split(".", 1)[0]
    if standard == "fhir":
        raise InvalidInput(f"{table.path} is {table.format.upper()}, and FHIR data is measured from NDJSON",
                           hint="give the FHIR bulk export's .ndjson file, or another --standard")
    if standard in ("sdtm", "adam") or (standard is None and "USUBJID" in upper):
        names = [n.upper() for n in (table.table_name, stem) if n]
        if standard is None:
            standard = "adam" if "DOMAIN" not in upper and any(n.startswith("AD") for n in names) else "sdtm"
        known = domains(standard)
        domain = next((n for n in names if n in known), None)
        if domain is None and standard == "sdtm":
            domain = _sdtm_domain_from_columns(table, upper, known)
        if domain is None and standard == "adam" and "TRT01P" in upper:
            domain = "ADSL"
        if domain is None:
            raise InvalidInput(f"cannot tell the {standard.upper()} domain of {table.path}",
                               hint=f"name the file after its domain (e.g. {known[0].lower()}.csv) or add a "
                                    "DOMAIN column")
        return standard, domain
    if standard == "omop" or (standard is None and "person_id" in lower):
        known = domains("omop")
        names = [n.lower() for n in (table.table_name, stem) if n]
        table_name = next((n for n in names if n in known), None)
        if table_name is None:
            table_name = next((t for t in known if f"{t}_id" in lower and t != "person"), None)
        if table_name is None:
            table_name = "person" if "year_of_birth" in lower else "death" if "death_date" in lower else None
        if table_name is None:
            raise InvalidInput(f"cannot tell which OMOP CDM table {table.path} holds",
                               hint=f"name the file after its table (one of {', '.join(known)})")
        return "omop", table_name
    raise InvalidInput(f"cannot tell the data standard of {table.path} (no USUBJID or person_id column)",
                       hint="give --standard sdtm, adam or omop")


def _sdtm_domain_from_columns(table: Table, upper: set[str], known: list[str]) -> str | None:
    for c in upper:  # --SEQ and --TESTCD carry the domain prefix
        for suffix in ("SEQ", "TESTCD", "TRT", "TERM"):
            if c.endswith(suffix) and len(c) == len(suffix) + 2 and c[:2] in known:
                return c[:2]
    if "DOMAIN" in upper and table.format == "csv":
        value = _first_value(table, "DOMAIN")
        if value and value.upper() in known:
            return value.upper()
    return None


def _first_value(table: Table, column: str) -> str | None:
    import csv
    import io

    with table.path.open("rb") as fh:
        head = fh.read(1 << 16).decode("utf-8-sig", errors="replace")
    rows = csv.reader(io.StringIO(head), delimiter=table.delimiter)
    header = [c.strip().upper() for c in next(rows, [])]
    row = next(rows, None)
    if row is None or column not in header or header.index(column) >= len(row):
        return None
    return row[header.index(column)].strip()


def _find(columns: list[str], name: str) -> int | None:
    """Index of the first column named `name` (case-insensitively)."""
    wanted = name.lower()
    return next((i for i, c in enumerate(columns) if c.lower() == wanted), None)


def date_columns(standard: str, columns: list[str]) -> list[int]:
    """Columns whose values date the data (birth dates are not about the data's recency)."""
    out = []
    for i, c in enumerate(columns):
        u = c.upper()
        if standard in ("sdtm", "adam"):
            if "BRTH" in u:
                continue
            if u.endswith("DTC") or (standard == "adam" and u.endswith("DT")):
                out.append(i)
        elif standard == "omop":
            low = c.lower()
            if "birth" not in low and (low.endswith("_date") or low.endswith("_datetime")):
                out.append(i)
    return out


# ---- accumulators (fed one batch or resource at a time by data_inspect) ----


class TableMeasurer:
    def __init__(self, table: Table, standard: str, domain: str, as_of: datetime) -> None:
        self.standard, self.domain, self.format = standard, domain, table.format
        spec = variable_list(standard, domain)
        self.spec = spec
        self.present = {v: i for v in spec.variables if (i := _find(table.columns, v)) is not None}
        self.nonmissing = dict.fromkeys(spec.variables, 0)
        subject = "person_id" if standard == "omop" else "USUBJID"
        self.subject = _find(table.columns, subject)
        if self.subject is None:
            raise InvalidInput(f"{table.path} has no {subject} column, so its cases cannot be counted",
                               hint=f"every {standard.upper()} {domain} record names its subject in {subject}")
        self.dates = date_columns(standard, table.columns)
        self.as_of = as_of
        self.as_of_text = as_of.date().isoformat()
        self.rows = 0
        self.subjects: set[Any] = set()
        self.newest: date | None = None

    def update(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        n = batch.num_rows
        self.rows += n
        for name, i in self.present.items():
            self.nonmissing[name] += n - batch.column(i).null_count
        subjects = batch.column(self.subject)
        if subjects.null_count < n:
            self.subjects.update(pc.unique(subjects.drop_null()).to_pylist())
        for i in self.dates:
            found = newest_in(batch.column(i), self.as_of_text)
            if found is not None and (self.newest is None or found > self.newest):
                self.newest = found

    def result(self, *, sha256: str, size: int) -> DataMeasurement:
        return _measurement(self.standard, self.domain, self.format, self.rows, len(self.subjects),
                            sum(self.nonmissing.values()), self.rows * len(self.spec.variables), self.newest,
                            self.as_of, sha256, size,
                            VariableCheck(checked=list(self.spec.variables),
                                          absent=[v for v in self.spec.variables if v not in self.present],
                                          source=self.spec.source))


def newest_in(column: pa.Array, as_of_text: str) -> date | None:
    """The newest date of a column not after `as_of_text` (ISO 8601 text, or a date type); a
    partial date (2020-03) counts as its first day."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count == len(column):
        return None
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # The usual case first: the greatest text is a well-formed date that is not in the future.
        top = pc.max(column).as_py()
        if top is not None and _ISO_DATE.match(top[:10]) and top[:10] <= as_of_text:
            return _iso_date(top[:10])
        head = pc.utf8_slice_codeunits(column.drop_null(), 0, 10)
        head = head.filter(pc.match_substring_regex(head, _ISO_PREFIX + "$"))
        head = head.filter(pc.less_equal(head, as_of_text))
        top = pc.max(head).as_py()
        return _iso_date(top) if top else None
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.date32())
    if pa.types.is_date(column.type):
        kept = column.filter(pc.less_equal(column, pa.scalar(date.fromisoformat(as_of_text), column.type)))
        return pc.max(kept).as_py() if len(kept) else None
    return None


def _iso_date(text: str) -> date | None:
    if not _ISO_DATE.match(text):
        return None
    parts = (text + "-01-01")[:10] if len(text) == 4 else (text + "-01")[:10] if len(text) == 7 else text
    try:
        return date.fromisoformat(parts)
    except ValueError:  # 2021-02-30 and the like
        return None


def _measurement(standard: str, domain: str, fmt: str, rows: int, cases: int, filled: int, cells: int,
                 newest: date | None, as_of: datetime, sha256: str, size: int,
                 variables: VariableCheck) -> DataMeasurement:
    completeness = filled * 10_000 // cells if cells else 0
    return DataMeasurement(
        standard=standard, domain=domain, format=fmt, rows=rows, cases=cases, completeness_bps=completeness,  # type: ignore[arg-type]
        newest_date=newest, as_of=as_of, timeliness_days=None if newest is None else (as_of.date() - newest).days,
        sha256=sha256, size=size, variables=variables, tool=tool_version())


# ---- FHIR ----

_FHIR_DATES = ("effectiveDateTime", "effectiveInstant", "issued", "onsetDateTime", "abatementDateTime",
               "recordedDate", "authoredOn", "performedDateTime", "occurrenceDateTime", "deceasedDateTime", "date")
_FHIR_PERIODS = ("effectivePeriod", "onsetPeriod", "abatementPeriod", "performedPeriod", "period")


class FhirMeasurer:
    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.as_of_text = as_of.date().isoformat()
        self.rows = 0
        self.subjects: set[str] = set()
        self.types: dict[str, int] = {}
        self.filled = 0
        self.cells = 0
        self.seen: dict[str, set[str]] = {}
        self.newest_text: str | None = None

    def update(self, resource: dict[str, Any]) -> None:
        self.rows += 1
        rtype = str(resource.get("resourceType") or "")
        self.types[rtype] = self.types.get(rtype, 0) + 1
        subject = fhir_subject(resource)
        if subject is not None:
            self.subjects.add(subject)
        try:
            spec = variable_list("fhir", rtype)
        except InvalidInput:
            spec = None
        if spec is not None:
            seen = self.seen.setdefault(rtype, set())
            for element in spec.variables:
                self.cells += 1
                if _has_element(resource, element):
                    self.filled += 1
                    seen.add(element)
        for text in _fhir_dates(resource):
            head = text[:10]
            if _ISO_DATE.match(head) and head <= self.as_of_text and (self.newest_text is None or head > self.newest_text):
                self.newest_text = head

    def result(self, *, sha256: str, size: int) -> DataMeasurement:
        listed = [t for t in self.types if t in domains("fhir")]
        if not listed:
            found = ", ".join(sorted(self.types)) or "no resources"
            raise InvalidInput(f"no element list for these FHIR resources ({found}); fullchain has "
                               f"{', '.join(domains('fhir'))}", hint="measure a Patient, Observation or Condition export")
        checked = [f"{t}.{e}" for t in listed for e in variable_list("fhir", t).variables]
        absent = [f"{t}.{e}" for t in listed for e in variable_list("fhir", t).variables if e not in self.seen.get(t, ())]
        newest = None if self.newest_text is None else _iso_date(self.newest_text)
        return _measurement("fhir", ",".join(sorted(self.types)), "ndjson", self.rows, len(self.subjects),
                            self.filled, self.cells, newest, self.as_of, sha256, size,
                            VariableCheck(checked=checked, absent=absent, source="FHIR R4"))


def fhir_subject(resource: dict[str, Any]) -> str | None:
    """The Patient a resource is about: its own id for a Patient, else its subject/patient reference."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return str(rid) if rid else None
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and "Patient/" in ref["reference"]:
            return ref["reference"].rsplit("Patient/", 1)[1].split("/", 1)[0]
    return None


def _has_element(resource: dict[str, Any], element: str) -> bool:
    if element.endswith("[x]"):
        stem = element[:-3]
        return any(k.startswith(stem) and k[len(stem):][:1].isupper() and _filled(v) for k, v in resource.items())
    return _filled(resource.get(element))


def _filled(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _fhir_dates(resource: dict[str, Any]) -> Iterator[str]:
    for key in _FHIR_DATES:
        value = resource.get(key)
        if isinstance(value, str):
            yield value
    for key in _FHIR_PERIODS:
        period = resource.get(key)
        if isinstance(period, dict):
            for end in ("start", "end"):
                if isinstance(period.get(end), str):
                    yield period[end]


__all__ = ["DataMeasurement", "VariableCheck", "data_amount", "measure_file", "report_json", "with_as_of",
           "column_name"]
