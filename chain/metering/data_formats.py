"""Reading a dataset file as a stream: CSV and SAS XPT as Arrow record batches, FHIR NDJSON as
one resource per line. Memory stays at a few batches whatever the file's size.

Every CSV column is read as text: a typed read infers types from the first block and fails on a
later one that does not fit, and both the measurement and the red-line check look at the text.
An empty cell is missing (null); nothing else is.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

Format = str  # "csv" | "xpt" | "ndjson"

_CSV_SUFFIXES = {".csv", ".tsv"}
_NDJSON_SUFFIXES = {".ndjson", ".jsonl"}
_DELIMITERS = ",\t;|"
# Arrow reads a few blocks ahead: the block size sets most of the peak memory (8 MiB: ~330 MB
# RSS, 2 MiB: ~230 MB), while larger blocks were not measurably faster here.
CSV_BLOCK = 2 << 20
XPT_CHUNK = 50_000


def detect_format(path: Path) -> Format | None:
    """The file's format from its first bytes, then its name; None when it is none of ours."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"HEADER RECORD*******LIB"):
        return "xpt"
    suffix = path.suffix.lower()
    if suffix in _NDJSON_SUFFIXES:
        return "ndjson"
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix != ".xpt" and _looks_like_ndjson(head):
        return "ndjson"
    return None


def _looks_like_ndjson(head: bytes) -> bool:
    first = head.lstrip().split(b"\n", 1)[0]
    if not first.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict) and b"\n" in head.lstrip()
    except ValueError:
        return False


@dataclass
class Table:
    """A tabular file opened for streaming: its columns (in file order), their labels (XPT), the
    dataset name it declares (XPT), and its batches."""

    path: Path
    format: Format
    columns: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    table_name: str | None = None
    delimiter: str = ","

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.format == "csv":
            return self._csv_batches()
        return self._xpt_batches()

    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyarrow import csv as pacsv

        # Column names are given, not read: duplicate or empty header cells still get a column
        # each, and a byte-order mark never becomes part of the first name.
        names = [f"{n}\x00{i}" for i, n in enumerate(self.columns)]
        read = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=CSV_BLOCK, use_threads=True)
        parse = pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True)
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, null_values=[""],
                                       strings_can_be_null=True, quoted_strings_can_be_null=True)
        try:
            reader = pacsv.open_csv(self.path, read_options=read, parse_options=parse, convert_options=convert)
            for batch in reader:
                yield batch
        except pa.ArrowInvalid as exc:
            raise InvalidInput(f"{self.path} is not a well-formed CSV file ({_first_line(exc)})",
                               hint="fix the file (UTF-8 text, every row with as many cells as the header) and try again") \
                from None

    def _xpt_batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyreadstat

        offset = 0
        while True:
            # pyreadstat's read_file_in_chunks never ends on XPT (the row count is unknown to it)
            chunk, _ = pyreadstat.read_xport(str(self.path), row_offset=offset, row_limit=XPT_CHUNK,
                                             output_format="dict")
            n = len(next(iter(chunk.values()), []))
            if n == 0:
                return
            arrays = [_xpt_array(chunk[c]) for c in self.columns]
            yield pa.RecordBatch.from_arrays(arrays, names=[f"{c}\x00{i}" for i, c in enumerate(self.columns)])
            offset += n
            if n < XPT_CHUNK:
                return


def _xpt_array(values: list[Any]) -> pa.Array:
    import pyarrow as pa

    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, str):
        # XPT has no null for text: an empty (blank) value is missing
        return pa.array([v if v and v.strip() else None for v in values], type=pa.string())
    if isinstance(sample, float):
        return pa.array([None if v is None or v != v else v for v in values], type=pa.float64())
    return pa.array(values)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def open_table(path: Path, fmt: Format) -> Table:
    if fmt == "csv":
        return _open_csv(path)
    if fmt == "xpt":
        return _open_xpt(path)
    raise ValueError(fmt)


def _open_csv(path: Path) -> Table:
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InvalidInput(f"the header of {path} is not UTF-8 text",
                           hint="save the CSV file as UTF-8 and try again") from None
    if not text.strip():
        raise InvalidInput(f"{path} has no header row", hint="the first line of a CSV file names its columns")
    delimiter = max(_DELIMITERS, key=text.count) if any(d in text for d in _DELIMITERS) else ","
    columns = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    return Table(path=path, format="csv", columns=[c.strip() for c in columns], delimiter=delimiter)


def _open_xpt(path: Path) -> Table:
    import pyreadstat

    try:
        _, meta = pyreadstat.read_xport(str(path), metadataonly=True, output_format="dict")
    except Exception as exc:  # pyreadstat raises its own ReadstatError and plain ones
        raise InvalidInput(f"{path} could not be read as SAS XPT ({_first_line(exc)})",
                           hint="export it again as SAS transport (XPORT v5 or v8)") from None
    labels = {c: lab for c, lab in zip(meta.column_names, meta.column_labels or []) if lab}
    return Table(path=path, format="xpt", columns=list(meta.column_names), labels=labels,
                 table_name=meta.table_name or None)


def ndjson_resources(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """(line number, raw line, resource) for each non-empty line."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except ValueError:
                raise InvalidInput(f"line {number} of {path} is not JSON",
                                   hint="NDJSON holds one JSON object per line (a FHIR bulk export file)") from None
            if not isinstance(resource, dict):
                raise InvalidInput(f"line {number} of {path} is not a JSON object",
                                   hint="NDJSON holds one JSON object per line (a FHIR bulk export file)")
            yield number, line, resource


def column_name(arrow_name: str) -> str:
    """The file's column name of a batch column (batches carry the position too, for duplicates)."""
    return arrow_name.split("\x00", 1)[0]
