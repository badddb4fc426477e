"""The red-line check: direct identifiers must not leave a member.

Rules (a finding names the column, the rule and the first row where it applies, never a value):

    personal-name   a column named for a person's name (patient_name, first_name, surname...),
                    FHIR Patient.name, and a reference's display text on a resource's subject
    national-id     a column named for one (ssn, national_id, id_card...), a US SSN (123-45-6789)
                    or a Chinese resident identity number (18 digits, valid check digit) anywhere
    phone-number    a column named for one, or a phone number anywhere: international (+CC ...),
                    North American ((555) 123-4567, 555-123-4567), Chinese mobile (1[3-9] + 9
                    digits), or digits after "tel"/"phone"; FHIR telecom of system phone/fax/sms
    email-address   a column named for one, or an e-mail address anywhere
    birth-date      a birth date with its day: BRTHDTC/birth_datetime/dob... holding a full date
                    (a year or year-month is fine), a SAS date or datetime, OMOP day_of_birth
    street-address  a column named for one, or a street address in text ("12 Baker Street",
                    "Hauptstraße 5", "12 rue ...", "...路12号"); FHIR Patient.address

Name rules need at least one non-empty cell. Every text column is scanned, free text included:
first with one RE2 expression per column and batch (Arrow's kernels, so a clean column costs
one pass at C speed), then the few cells it selects are checked precisely. Personal names inside
free text are not detected (no pattern tells a name from other capitalised words); subject key
columns (USUBJID, SUBJID, person_id...) are exempt from the phone and SSN patterns only, since
study ids often look like them.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from .data_formats import Table

if TYPE_CHECKING:
    import pyarrow as pa

Rule = Literal["personal-name", "national-id", "phone-number", "email-address", "birth-date", "street-address"]
RULES: tuple[str, ...] = ("personal-name", "national-id", "phone-number", "email-address", "birth-date",
                          "street-address")


class Finding(BaseModel):
    """A direct identifier found: where (column, first row) and which rule, never the value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    rule: Rule
    row: int  # 1-based data row (CSV: the line after the header is row 1; NDJSON: the line number)
    by: Literal["column name", "value"]


def scan_file(path: Path, *, standard: str | None = None) -> list[Finding]:
    """The red-line findings of a CSV, SAS XPT or FHIR NDJSON file (empty: nothing found).
    A file of another format raises InvalidInput; `inspect_file` says "skipped" instead."""
    from ..errors import InvalidInput
    from .data_inspect import inspect_file

    inspection = inspect_file(Path(path), standard=standard, measure=False)
    if inspection.format is None:
        raise InvalidInput(f"{path} is not CSV, SAS XPT or NDJSON, so the red-line check cannot read it",
                           hint="check a .csv, .tsv, .xpt or .ndjson file")
    return inspection.findings


# ---- column names ----

def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]", "", name.lower())


_NAME_EXACT = {"name", "patientname", "patname", "ptname", "subjectname", "fullname", "firstname", "lastname",
               "surname", "givenname", "givennames", "familyname", "forename", "forenames", "middlename",
               "maidenname", "mothersmaidenname", "fname", "lname", "nickname", "姓名", "名字", "患者姓名"}
_NAME_PARTS = ("patientname", "firstname", "lastname", "surname", "givenname", "familyname", "fullname",
               "maidenname", "姓名")
_ID_EXACT = {"ssn", "socialsecuritynumber", "socialsecurityno", "socsecno", "nationalid", "nationalidnumber",
             "nationalidentifier", "nin", "nino", "idcard", "idcardno", "idcardnumber", "residentid",
             "residentidnumber", "citizenid", "passport", "passportno", "passportnumber", "sfzh", "shenfenzheng",
             "身份证", "身份证号", "身份证号码", "nhsnumber", "medicarenumber", "taxid", "tin"}
_ID_PARTS = ("socialsecurity", "nationalid", "idcard", "passport", "身份证")
_PHONE_EXACT = {"phone", "tel", "telephone", "mobile", "mobilephone", "cellphone", "fax", "contactnumber",
                "电话", "手机", "联系电话", "手机号"}
_PHONE_PARTS = ("phone", "telephone", "mobileno", "mobilenumber", "faxno", "faxnumber", "电话", "手机")
_EMAIL_PARTS = ("email", "emailaddress", "邮箱", "电子邮件")
_EMAIL_EXACT = {"mail", "email"}
_ADDRESS_EXACT = {"address", "addr", "addr1", "addr2", "street", "streetaddress", "homeaddress",
                  "地址", "住址", "家庭住址"}
_ADDRESS_PARTS = ("address", "addressline", "streetaddress", "street", "地址", "住址")
_BIRTH_PARTS = ("brthdtc", "brthdt", "brthdtm", "birthdatetime", "birthdate", "dateofbirth", "dob", "birthday",
                "出生日期", "生日")


def column_rule(name: str) -> str | None:
    """The rule a column's name alone triggers (birth dates are decided by the values)."""
    n = _norm(name)
    if not n:
        return None
    if n in _EMAIL_EXACT or any(p in n for p in _EMAIL_PARTS):
        return "email-address"
    if n in _NAME_EXACT or any(p in n for p in _NAME_PARTS):
        return "personal-name"
    if n in _ID_EXACT or any(p in n for p in _ID_PARTS):
        return "national-id"
    if n in _PHONE_EXACT or any(p in n for p in _PHONE_PARTS):
        return "phone-number"
    if n in _ADDRESS_EXACT or any(p in n for p in _ADDRESS_PARTS):
        return "street-address"
    return None


def is_birth_column(name: str) -> bool:
    n = _norm(name)
    return n in _BIRTH_PARTS or any(p in n for p in ("birthdate", "dateofbirth", "brthdt", "出生日期")) \
        or (n.startswith("dob") and len(n) <= 5)


def _is_subject_key(name: str) -> bool:
    n = name.lower()
    return n in ("usubjid", "subjid", "studyid", "siteid", "person_id", "id") or n.endswith("_id") \
        or n.endswith("seq") or n.endswith("_concept_id")


# ---- value patterns ----
# Each pattern is valid for both RE2 (Arrow) and Python's re. Boundaries are written as
# (?:^|[^...]) groups because RE2 has no look-behind.

_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_SSN = r"(?:^|[^\w-])\d{3}-\d{2}-\d{4}(?:$|[^\w-])"
_CN_ID = r"(?:^|[^\w])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?:$|[^\w])"
_PHONE_INTL = r"(?:^|[^\w+.-])\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,5}(?:$|[^\w.-])"
_PHONE_NANP = r"(?:^|[^\w.-])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}(?:$|[^\w.-])"
_PHONE_CN = r"(?:^|[^\d])1[3-9]\d{9}(?:$|[^\d])"
_PHONE_WORD = r"(?i:tel|phone|mobile|cell|fax)\.?(?: ?no\.?| ?number)?[: ]+[+(]?\d[\d ().-]{6,}\d"
_STREET = (r"(?:\b\d{1,5},? (?:[A-Z][a-z]+ ){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Boulevard|Blvd\.?|Lane|"
           r"Ln\.?|Drive|Dr\.?|Way|Court|Place|Terrace|Square)(?:$|[^\w]))"
           r"|(?:[A-Z][a-zäöüß]+(?:straße|strasse|weg|gasse|allee) \d{1,4}[a-z]?\b)"
           r"|(?:\b\d{1,4},? (?:rue|avenue|boulevard|chemin|impasse|allée) [a-zA-Zé])"
           r"|(?:[\x{4e00}-\x{9fff}]{1,12}(?:路|街|大道|巷|弄)\d{1,5}号)")

_VALUE_RULES: dict[str, list[str]] = {
    "email-address": [_EMAIL],
    "national-id": [_SSN, _CN_ID],
    "phone-number": [_PHONE_INTL, _PHONE_NANP, _PHONE_CN, _PHONE_WORD],
    "street-address": [_STREET],
}
_KEY_EXEMPT = {_SSN, _PHONE_INTL, _PHONE_NANP, _PHONE_CN}


def _py(pattern: str) -> re.Pattern[str]:
    # \x{4e00} is RE2's spelling of a code point; Python's re wants \u4e00
    return re.compile(re.sub(r"\\x\{([0-9a-f]{4})\}", r"\\u\1", pattern))


_PY = {p: _py(p) for patterns in _VALUE_RULES.values() for p in patterns}
_PY_UNION = _py("|".join(f"(?:{p})" for patterns in _VALUE_RULES.values() for p in patterns))
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _cn_id_valid(number: str) -> bool:
    total = sum(int(d) * w for d, w in zip(number[:17], _CN_WEIGHTS))
    return "10X98765432"[total % 11] == number[17].upper()


def _ssn_valid(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


_SHORTEST = 6


@cache
def _union(rules: tuple[str, ...], exempt_numbers: bool) -> str:
    """One RE2 expression for the patterns of `rules`: a cell that matches none breaks none."""
    return "|".join(f"(?:{p})" for r in rules for p in _VALUE_RULES[r]
                    if not (exempt_numbers and p in _KEY_EXEMPT))


def value_rules(text: str, exempt_numbers: bool = False, rules: tuple[str, ...] = tuple(_VALUE_RULES)) \
        -> Iterator[str]:
    """The rules among `rules` a cell's text breaks (precise checks after the patterns)."""
    for rule in rules:
        for pattern in _VALUE_RULES[rule]:
            if exempt_numbers and pattern in _KEY_EXEMPT:
                continue
            for match in _PY[pattern].finditer(text):
                if _confirm(pattern, match.group(0)):
                    yield rule
                    break
            else:
                continue
            break


def _confirm(pattern: str, found: str) -> bool:
    if pattern == _CN_ID:
        digits = re.search(r"\d{17}[\dXx]", found)
        return digits is not None and _cn_id_valid(digits.group(0))
    if pattern == _SSN:
        return _ssn_valid(re.search(r"\d{3}-\d{2}-\d{4}", found).group(0))  # type: ignore[union-attr]
    if pattern in (_PHONE_INTL, _PHONE_WORD):
        return 8 <= sum(ch.isdigit() for ch in found) <= 15
    return True


_FULL_DATE = re.compile(r"^\s*(?:\d{4}-\d{2}-\d{2}|\d{4}/\d{2}/\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4}|\d{8}|"
                        r"\d{2}[A-Za-z]{3}\d{4})")
_FULL_DATE_RE2 = _FULL_DATE.pattern


# ---- tables ----

class TableScanner:
    """Feeds on record batches; `findings` grows with at most one finding per (column, rule)."""

    def __init__(self, table: Table) -> None:
        self.columns = table.columns
        self.found: dict[tuple[int, str], Finding] = {}
        self.by_name: dict[int, str] = {}
        self.birth: list[int] = []
        lower = {c.lower() for c in table.columns}
        for i, c in enumerate(table.columns):
            rule = column_rule(c) or column_rule(table.labels.get(c, ""))
            if rule is not None:
                self.by_name[i] = rule
            elif is_birth_column(c) or is_birth_column(table.labels.get(c, "")):
                self.birth.append(i)
        # OMOP keeps the birth date in parts: a day next to a month is a full date of birth
        self.day_of_birth = next((i for i, c in enumerate(table.columns) if c.lower() == "day_of_birth"), None) \
            if "month_of_birth" in lower else None
        self.key = {i for i, c in enumerate(table.columns) if _is_subject_key(c)}
        self.offset = 0

    @property
    def findings(self) -> list[Finding]:
        return sorted(self.found.values(), key=lambda f: (f.row, f.column, f.rule))

    def _add(self, i: int, rule: str, row: int, by: str) -> None:
        key = (i, rule)
        if key not in self.found or self.found[key].row > row:
            self.found[key] = Finding(column=self.columns[i], rule=rule, row=row, by=by)  # type: ignore[arg-type]

    def update(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        offset = self.offset
        self.offset += batch.num_rows
        for i, rule in self.by_name.items():
            if (i, rule) in self.found:
                continue
            first = _first_true(pc.is_valid(batch.column(i)))
            if first is not None:
                self._add(i, rule, offset + first + 1, "column name")
        for i in self.birth:
            if (i, "birth-date") in self.found:
                continue
            col = batch.column(i)
            if pa.types.is_string(col.type):
                mask = pc.match_substring_regex(col, _FULL_DATE_RE2)
            elif pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
                mask = pc.is_valid(col)  # a SAS date or datetime always has its day
            else:
                continue
            first = _first_true(mask)
            if first is not None:
                self._add(i, "birth-date", offset + first + 1, "value")
        if self.day_of_birth is not None and (self.day_of_birth, "birth-date") not in self.found:
            first = _first_true(pc.is_valid(batch.column(self.day_of_birth)))
            if first is not None:
                self._add(self.day_of_birth, "birth-date", offset + first + 1, "value")
        for i in range(batch.num_columns):
            col = batch.column(i)
            if not pa.types.is_string(col.type) or col.null_count == len(col):
                continue
            pending = tuple(r for r in _VALUE_RULES if (i, r) not in self.found)
            # No pattern fits in fewer than 6 bytes (a@b.co); then the patterns run on the
            # batch's distinct values, which for most clinical columns are few.
            if not pending or (pc.max(pc.binary_length(col)).as_py() or 0) < _SHORTEST:
                continue
            exempt = i in self.key
            values = pc.unique(col).drop_null()
            hits = values.filter(pc.match_substring_regex(values, _union(pending, exempt)))
            confirmed: dict[str, list[str]] = {}
            for text in hits.to_pylist():
                for rule in value_rules(text, exempt, pending):
                    confirmed.setdefault(rule, []).append(text)
            for rule, texts in confirmed.items():
                first = _first_true(pc.is_in(col, value_set=pa.array(texts, pa.string())))
                if first is not None:
                    self._add(i, rule, offset + first + 1, "value")


def _first_true(mask: pa.Array) -> int | None:
    import pyarrow.compute as pc

    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return None
    return int(pc.index(mask, True).as_py())


# ---- FHIR ----

_SSN_SYSTEMS = ("http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1")
_ID_TYPES = {"SS", "SB", "NI", "NIIP", "PPN", "DL", "CZ", "NH"}
_TELECOM = {"phone": "phone-number", "fax": "phone-number", "sms": "phone-number", "pager": "phone-number",
            "email": "email-address"}


class FhirScanner:
    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Finding] = {}

    @property
    def findings(self) -> list[Finding]:
        return sorted(self.found.values(), key=lambda f: (f.row, f.column, f.rule))

    def _add(self, column: str, rule: str, row: int, by: str) -> None:
        if (column, rule) not in self.found:
            self.found[(column, rule)] = Finding(column=column, rule=rule, row=row, by=by)  # type: ignore[arg-type]

    def update(self, number: int, line: bytes, resource: dict[str, Any]) -> None:
        rtype = str(resource.get("resourceType") or "Resource")
        people = [(rtype, resource)] if rtype == "Patient" else []
        if rtype == "Patient":
            people += [(f"{rtype}.contact", c) for c in resource.get("contact") or [] if isinstance(c, dict)]
        for path, person in people:
            if _present(person.get("name")):
                self._add(f"{path}.name", "personal-name", number, "column name")
            for telecom in _dicts(person.get("telecom")):
                rule = _TELECOM.get(str(telecom.get("system")))
                if rule and _present(telecom.get("value")):
                    self._add(f"{path}.telecom", rule, number, "column name")
            for address in _dicts(person.get("address") if path == rtype else [person.get("address")]):
                if _present(address.get("line")) or _present(address.get("text")):
                    self._add(f"{path}.address", "street-address", number, "column name")
        if rtype == "Patient":
            birth = resource.get("birthDate")
            if isinstance(birth, str) and len(birth) >= 10:
                self._add("Patient.birthDate", "birth-date", number, "value")
            for identifier in _dicts(resource.get("identifier")):
                codes = {str(c.get("code")) for c in _dicts((identifier.get("type") or {}).get("coding"))}
                if identifier.get("system") in _SSN_SYSTEMS or codes & _ID_TYPES:
                    self._add("Patient.identifier", "national-id", number, "value")
        for key in ("subject", "patient"):
            ref = resource.get(key)
            if isinstance(ref, dict) and _present(ref.get("display")):
                self._add(f"{rtype}.{key}.display", "personal-name", number, "value")
        if _PY_UNION.search(line.decode("utf-8", errors="replace")):
            for path, text in _leaves(resource, rtype):
                # ids, references, code systems and codes (SNOMED ids run to 18 digits) are not people's
                if path.endswith((".reference", ".system", ".id", ".code", ".version")):
                    continue
                for rule in value_rules(text):
                    self._add(path, rule, number, "value")


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, path)
