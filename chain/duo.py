"""GA4GH Data Use Ontology (DUO) terms, from the copy shipped in `fullchain/data/duo.csv`.

Credit: Data Use Ontology, GA4GH (EBISPOT/DUO), licensed CC BY 4.0.
"""
from __future__ import annotations

import csv
import re
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


# Bits of the on-chain modifier mask; append only, never reorder.
MODIFIER_BITS: tuple[str, ...] = (
    "DUO:0000012", "DUO:0000015", "DUO:0000016", "DUO:0000018", "DUO:0000019", "DUO:0000020",
    "DUO:0000021", "DUO:0000022", "DUO:0000024", "DUO:0000025", "DUO:0000026", "DUO:0000027",
    "DUO:0000028", "DUO:0000029", "DUO:0000043", "DUO:0000044", "DUO:0000045", "DUO:0000046",
)
DISEASE_SPECIFIC = "DUO:0000007"
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*:[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Purpose:
    """A DUO permission, with its disease term for disease-specific research."""

    code: str
    disease: str | None = None

    @property
    def number(self) -> int:
        return int(self.code.split(":")[1])

    @property
    def disease_bytes(self) -> bytes:
        return (self.disease or "").encode().ljust(32, b"\0")

    def label(self) -> str:
        term = terms()[self.code]
        return f"{term.shorthand}({self.disease})" if self.disease else term.shorthand

    @classmethod
    def from_chain(cls, number: int, disease: bytes) -> Purpose:
        text = bytes(disease).rstrip(b"\0").decode("ascii", "replace")
        return cls(f"DUO:{number:07d}", text or None)


def parse_purpose(code: str, disease: str | None = None) -> Purpose:
    """A permission code (id or shorthand) and, for DS only, a disease CURIE (e.g. MONDO:0005015)."""
    term = lookup(code)
    if term.id not in PERMISSIONS:
        permissions = ", ".join(f"{terms()[p].id} ({terms()[p].shorthand})" for p in PERMISSIONS)
        raise InvalidInput(f"{term.id} ({term.shorthand}) is a data use modifier, not a purpose",
                           hint=f"give a permission as --purpose: {permissions}; modifiers go in --modifier")
    if term.id == DISEASE_SPECIFIC:
        if not disease:
            raise InvalidInput("disease-specific research (DUO:0000007) needs a disease term",
                               hint="add --disease with an ontology id, e.g. --disease MONDO:0005015")
        if not _CURIE.match(disease) or len(disease) > 32:
            raise InvalidInput(f"'{disease}' is not a disease term id",
                               hint="give a CURIE of at most 32 characters, e.g. MONDO:0005015")
        return Purpose(term.id, disease)
    if disease:
        raise InvalidInput(f"a disease term only applies to disease-specific research, not {term.id} ({term.shorthand})",
                           hint="drop --disease, or use --purpose DUO:0000007")
    return Purpose(term.id)


def modifier_mask(codes: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for code in codes:
        term = lookup(code)
        if term.id not in MODIFIER_BITS:
            raise InvalidInput(f"{term.id} ({term.shorthand}) is a purpose, not a data use modifier",
                               hint="modifiers are e.g. DUO:0000046 (NCU), DUO:0000019 (PUB), DUO:0000021 (IRB)")
        mask |= 1 << MODIFIER_BITS.index(term.id)
    return mask


def modifier_codes(mask: int) -> list[str]:
    return [code for bit, code in enumerate(MODIFIER_BITS) if mask & (1 << bit)]
