"""One pass over a dataset file that both measures it and runs the red-line check, so that
registering a large file reads it once for both (and once more to hash it, on a thread)."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InvalidInput
from .data import DataMeasurement, FhirMeasurer, TableMeasurer, detect_tabular
from .data_formats import detect_format, ndjson_resources, open_table
from .data_variables import STANDARDS
from .redline import FhirScanner, Finding, TableScanner

UNKNOWN_FORMAT = "not CSV, SAS XPT or NDJSON (judged by its first bytes and its name)"


@dataclass
class Inspection:
    format: str | None
    measurement: DataMeasurement | None = None
    measurement_skipped: str | None = None  # why there is no measurement
    measurement_error: InvalidInput | None = None  # the error measure_file raises for it
    findings: list[Finding] = field(default_factory=list)
    scan_skipped: str | None = None  # why the red-line check did not run


class _Hasher(threading.Thread):
    """SHA-256 of the file on a thread: hashlib releases the GIL, so it overlaps the parsing."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="fullchain-measure-hash", daemon=True)
        self.path = path
        self.digest = ""
        self.size = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            h = hashlib.sha256()
            with self.path.open("rb") as fh:
                while chunk := fh.read(4 << 20):
                    h.update(chunk)
                    self.size += len(chunk)
            self.digest = h.hexdigest()
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc

    def result(self) -> tuple[str, int]:
        self.join()
        if self.error is not None:
            raise self.error
        return self.digest, self.size


def inspect_file(path: Path, *, standard: str | None = None, as_of: datetime | None = None,
                 measure: bool = True, scan: bool = True) -> Inspection:
    """Measure (`measure`) and red-line check (`scan`) the file in one pass. A file of another
    format is neither, with the reason in `measurement_skipped`/`scan_skipped`; a malformed file
    of ours raises InvalidInput."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} is not a readable file", hint="give the path of the dataset file")
    moment = datetime.now(timezone.utc) if as_of is None else _utc(as_of)
    wanted = standard if standard in STANDARDS else None
    fmt = detect_format(path)
    if fmt is None:
        return Inspection(format=None, measurement_skipped=UNKNOWN_FORMAT, scan_skipped=UNKNOWN_FORMAT)
    out = Inspection(format=fmt)
    if fmt == "ndjson":
        if wanted not in (None, "fhir"):
            raise InvalidInput(f"{path} is NDJSON, which fullchain measures as FHIR, not {wanted.upper()}",
                               hint="give --standard fhir, or the CSV or XPT file")
        fhir_measurer = FhirMeasurer(moment) if measure else None
        fhir_scanner = FhirScanner() if scan else None
        hasher = _start(path, measure)
        for number, line, resource in ndjson_resources(path):
            if fhir_measurer is not None:
                fhir_measurer.update(resource)
            if fhir_scanner is not None:
                fhir_scanner.update(number, line, resource)
        if fhir_measurer is not None and hasher is not None:
            digest, size = hasher.result()
            try:
                out.measurement = fhir_measurer.result(sha256=digest, size=size)
            except InvalidInput as exc:
                out.measurement_skipped, out.measurement_error = exc.message, exc
        out.findings = fhir_scanner.findings if fhir_scanner is not None else []
        return out

    table = open_table(path, fmt)
    measurer = None
    if measure:
        try:
            found_standard, domain = detect_tabular(table, wanted)
            measurer = TableMeasurer(table, found_standard, domain, moment)
        except InvalidInput as exc:
            out.measurement_skipped, out.measurement_error = exc.message, exc
    scanner = TableScanner(table) if scan else None
    hasher = _start(path, measurer is not None)
    for batch in table.batches():
        if measurer is not None:
            measurer.update(batch)
        if scanner is not None:
            scanner.update(batch)
    if measurer is not None and hasher is not None:
        digest, size = hasher.result()
        out.measurement = measurer.result(sha256=digest, size=size)
    out.findings = scanner.findings if scanner is not None else []
    return out


def _start(path: Path, needed: bool) -> _Hasher | None:
    if not needed:
        return None
    hasher = _Hasher(path)
    hasher.start()
    return hasher


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
