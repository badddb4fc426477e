"""The variable lists a measurement checks for completeness, from the CSV files shipped in
`fullchain/data/` (each names its source: SDTMIG 3.4, ADaMIG 1.3, OMOP CDM v5.4, FHIR R4)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from ..errors import InvalidInput

STANDARDS = ("sdtm", "adam", "omop", "fhir")
_FILES = {"sdtm": "sdtm_variables.csv", "adam": "adam_variables.csv", "omop": "omop_fields.csv",
          "fhir": "fhir_elements.csv"}


@dataclass(frozen=True)
class VariableList:
    standard: str
    domain: str
    variables: tuple[str, ...]
    source: str


@cache
def _load(standard: str) -> dict[str, VariableList]:
    text = resources.files("fullchain").joinpath("data", _FILES[standard]).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO("".join(line for line in text.splitlines(keepends=True)
                                              if not line.startswith("#"))))
    grouped: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    for row in rows:
        grouped.setdefault(row["domain"], []).append(row["variable"])
        sources[row["domain"]] = row["source"]
    return {d: VariableList(standard, d, tuple(v), sources[d]) for d, v in grouped.items()}


def domains(standard: str) -> list[str]:
    return list(_load(standard))


def variable_list(standard: str, domain: str) -> VariableList:
    lists = _load(standard)
    if domain not in lists:
        raise InvalidInput(f"no variable list for {standard.upper()} domain {domain!r} (fullchain has "
                           f"{', '.join(lists)})", hint="measure a supported domain or table, or give --standard")
    return lists[domain]
