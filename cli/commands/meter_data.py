"""`fullchain meter measure` and `fullchain meter redline`: the data dimension, from the file."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from fullchain.metering.data import data_amount, measure_file
from fullchain.metering.data_variables import STANDARDS
from fullchain.metering.redline import scan_file

from ..context import common_options
from ..output import emit_json, fields, is_json, table

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_STANDARD = click.option("--standard", type=click.Choice(STANDARDS),
                         help="The file's data standard (default: told from its columns or resources).")


@click.command()
@common_options
@click.argument("file", type=_FILE)
@_STANDARD
def measure(file: Path, standard: str | None) -> None:
    """Measure FILE (CSV, SAS XPT or FHIR NDJSON): cases, completeness, timeliness, rows, SHA-256.

    With --json, the measurement report (the evidence a data record carries)."""
    m = measure_file(file, standard=standard)
    if is_json():
        emit_json(m)
        return
    fields([("standard", m.standard), ("domain", m.domain), ("format", m.format), ("rows", m.rows),
            ("cases", m.cases), ("completeness", f"{m.completeness_bps / 100:.2f}% ({m.completeness_bps} bps)"),
            ("newest date", m.newest_date or "-"),
            ("timeliness", f"{m.timeliness_days} days" if m.timeliness_days is not None else "-"),
            ("amount", f"{data_amount(m)} (quality-adjusted cases)"),
            ("variables", f"{len(m.variables.checked)} checked ({m.variables.source}), "
                          f"absent: {', '.join(m.variables.absent) or 'none'}"),
            ("sha256", m.sha256), ("size", f"{m.size} bytes"), ("tool", m.tool)])


@click.command()
@common_options
@click.argument("file", type=_FILE)
@_STANDARD
def redline(file: Path, standard: str | None) -> None:
    """Check FILE for direct identifiers (names, national ids, phone numbers, e-mail, full birth
    dates, street addresses) before it is shared. Exit status 1 when any is found."""
    findings = scan_file(file, standard=standard)
    if is_json():
        emit_json({"file": str(file), "passed": not findings, "findings": findings})
    elif findings:
        table(f"{file}: direct identifiers found (values not shown)", ("column", "rule", "first row", "by"),
              [(f.column, f.rule, f.row, f.by) for f in findings])
    else:
        click.echo(f"{file}: no direct identifiers found")
    if findings:
        sys.exit(1)
