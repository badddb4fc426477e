"""GA4GH Data Use Ontology (DUO) terms, from the copy shipped in `fullchain/data/duo.csv`.

Credit: Data Use Ontology, GA4GH (EBISPOT/DUO), licensed CC BY 4.0.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from .errors import InvalidInput

DATA_USE_PERMISSION = "DUO:0000001"
DATA_USE_MODIFIER = "DUO:0000017"


@dataclass(frozen=True)
class DuoTerm:
    id: str
    shorthand: str
    label: str
    description: str

    @property
    def is_permission(self) -> bool:
        return self.id in PERMISSIONS


PERMISSIONS = ("DUO:0000004", "DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011")


@cache
def terms() -> dict[str, DuoTerm]:
    text = resources.files("fullchain").joinpath("data", "duo.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return {r["id"]: DuoTerm(r["id"], r["shorthand"], r["label"], r["description"]) for r in rows
            if r["shorthand"]}  # the two rows without shorthand are the class roots, not usable terms


def lookup(code: str) -> DuoTerm:
    """A DUO term by id (`DUO:0000007`) or shorthand (`DS`)."""
    wanted = code.strip()
    by_id = terms().get(wanted.upper())
    if by_id:
        return by_id
    for term in terms().values():
        if term.shorthand.upper() == wanted.upper():
            return term
    accepted = ", ".join(f"{t.id} ({t.shorthand})" for t in terms().values())
    raise InvalidInput(f"unknown DUO code '{code}'", hint=f"use one of: {accepted}")
