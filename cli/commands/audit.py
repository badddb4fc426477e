from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fullchain.audit.check import check_dataset, report_json
from fullchain.audit.trail import DEFAULT_PAGE, Trail, dataset_trail, member_trail, parse_bound, trail_json

from ..context import common_options, view
from ..names import named, resolve
from ..output import is_json, table
from ..types import DATASET_ID, OFFSET, PAGE_SIZE


@click.group()
def audit() -> None:
    """Auditors: the trail of a dataset or member, license-at-time-of-use checks, PROV-JSON and HTML exports."""


def _range_options(func):  # noqa: ANN001, ANN201
    func = click.option("--offset", type=OFFSET, default=0, help="Skip this many first events (the next pages).")(func)
    func = click.option("--limit", type=PAGE_SIZE, default=DEFAULT_PAGE, show_default=True,
                        help="At most this many events (a page).")(func)
    func = click.option("--to", "to_", help="Up to this block number or date/time (inclusive; ISO, UTC).")(func)
    return click.option("--from", "from_", help="From this block number or date/time (ISO, UTC).")(func)


def _bounds(from_: str | None, to_: str | None) -> dict:
    return {"start": parse_bound(from_) if from_ else None, "end": parse_bound(to_, end=True) if to_ else None}


def _emit(value: dict) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def _show(trail: Trail, names: dict[str, str]) -> None:
    if is_json():
        _emit(trail_json(trail))
        return
    last = trail.offset + len(trail.events)
    if not trail.events:
        click.echo(f"Trail of {trail.subject}: no events past offset {trail.offset} ({trail.total} in range)"
                   if trail.total else f"Trail of {trail.subject}: no events in range")
        return
    table(f"Trail of {trail.subject}: events {trail.offset + 1}-{last} of {trail.total}",
          ("block", "time (UTC)", "event", "what", "account", "tx"),
          [(e.block, e.timestamp.strftime("%Y-%m-%d %H:%M:%S"), e.name, e.summary,
            e.account_name or e.account or "", e.tx_hash) for e in trail.events])
    if last < trail.total:
        click.echo(f"more: --offset {last}", err=True)


@audit.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@_range_options
def trail(dataset_id: int, from_: str | None, to_: str | None, limit: int, offset: int) -> None:
    """Every event about a dataset, in block order: versions, licenses, accesses, consent, metering."""
    v = view()
    names = v.local_names()
    _show(dataset_trail(v.index, dataset_id, limit=limit, offset=offset, names=names, **_bounds(from_, to_)), names)


@audit.command()
@common_options
@click.argument("account")
@_range_options
def member(account: str, from_: str | None, to_: str | None, limit: int, offset: int) -> None:
    """Every event about one account (an address or a local profile name), in block order."""
    v = view()
    address, _ = resolve(v.home, account)
    names = v.local_names()
    _show(member_trail(v.index, address, limit=limit, offset=offset, names=names, **_bounds(from_, to_)), names)


@audit.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--all", "every", is_flag=True, help="List every access, not only those not covered.")
def check(dataset_id: int, every: bool) -> None:
    """Re-check each recorded access against its license's state at that block; exit 1 if any is not covered."""
    v = view()
    names = v.local_names()
    report = check_dataset(v.index, dataset_id, names)
    if is_json():
        _emit(report_json(report, every=every))
    else:
        listed = report.verdicts if every else report.uncovered
        title = (f"Accesses to dataset {dataset_id}: {report.accesses - len(report.uncovered)} of {report.accesses} "
                 "covered by a valid license" + ("" if every or report.ok else "; not covered:"))
        if not listed:
            click.echo(title)
        else:
            table(title, ("block", "time (UTC)", "licensee", "license", "version", "license then", "verdict"),
                  [(x.access.block, x.access.timestamp.strftime("%Y-%m-%d %H:%M:%S"), names.get(x.licensee, x.licensee),
                    x.license_id, x.version, x.license_status,
                    "covered" if x.covered else "NOT COVERED: " + "; ".join(
                        f"{r.rule} ({named(r.detail, names)})" for r in x.violations)) for x in listed])
    if not report.ok:
        sys.exit(1)


@audit.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--format", "format_", type=click.Choice(["prov-json"]), default="prov-json", show_default=True,
              help="The export format: W3C PROV-JSON.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the document (replaced whole, never half-written).")
def export(dataset_id: int, format_: str, output: Path) -> None:
    """Export a dataset's provenance (versions, lineage, licenses, accesses, members) as W3C PROV-JSON."""
    from fullchain.audit.prov import counts, prov_document, prov_json, write_export

    v = view()
    doc = prov_document(v.index, dataset_id, v.local_names())
    write_export(output, prov_json(doc))
    n = counts(doc)
    if is_json():
        _emit({"file": str(output), "format": format_, **n})
    else:
        click.echo(f"Wrote {output}: PROV-JSON of dataset {dataset_id}, {n['entity']} entities, {n['activity']} "
                   f"activities, {n['agent']} agents, {n['relations']} relations")


@audit.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the HTML file (replaced whole, never half-written).")
def report(dataset_id: int, output: Path) -> None:
    """Write a self-contained HTML audit report of a dataset: summary, lineage, license timeline, accesses, checks."""
    from fullchain.audit.prov import write_export
    from fullchain.audit.report import build_report_data, render_report

    v = view()
    data = build_report_data(v.index, dataset_id, v.local_names())
    write_export(output, render_report(data))
    if is_json():
        _emit({"file": str(output), "dataset_id": str(dataset_id), "accesses": data.accesses_total,
               "uncovered": data.accesses_uncovered, "licenses": data.licenses_total,
               "verification": [{"check": c, "result": r} for c, r in data.verification]})
    else:
        click.echo(f"Wrote {output}: audit report of dataset {dataset_id} ({data.accesses_total} accesses, "
                   f"{data.accesses_uncovered} not covered, {data.licenses_total} licenses)")
