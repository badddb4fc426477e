from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fullchain.audit.check import check_dataset, report_json
from fullchain.audit.headers import BlockHeader
from fullchain.audit.qbft import block_hash as qbft_block_hash
from fullchain.audit.trail import DEFAULT_PAGE, Trail, dataset_trail, member_trail, parse_bound, trail_json

from ..context import common_options, connect, view
from ..names import named, resolve
from ..output import is_json, table
from ..progress import stage_progress
from ..types import DATASET_ID, HASH32, OFFSET, PAGE_SIZE


@click.group()
def audit() -> None:
    """Auditors: trails, license-at-time-of-use checks, offline-verifiable bundles, PROV-JSON and HTML."""


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
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the bundle (JSON) to this file.")
def bundle(dataset_id: int, output: Path) -> None:
    """One file holding a dataset's trail with its proofs: headers, transactions, receipts, contracts."""
    from fullchain.audit.bundle import build_bundle, write_bundle

    fc = connect()
    with stage_progress() as progress:
        made = build_bundle(fc.w3, fc.read_index(), fc.contracts(), dataset_id, store=fc.store,
                            progress=progress)
    size = write_bundle(made, output)
    head = BlockHeader.from_rlp(bytes.fromhex(made["headers"][-1][2:]))
    trusted = "0x" + (qbft_block_hash(head) if made["consensus"] == "qbft" else head.hash()).hex()
    if is_json():
        _emit({"path": str(output), "bytes": size, "dataset_id": str(dataset_id), "events": len(made["events"]),
               "headers": len(made["headers"]), "blocks": len(made["blocks"]), "head": head.number,
               "head_hash": trusted})
        return
    click.echo(f"Wrote {output} ({size:,} bytes): dataset {dataset_id}, {len(made['events'])} events, "
               f"{len(made['blocks'])} blocks with their transactions and receipts, {len(made['headers'])} headers "
               f"up to block {head.number}")
    click.echo(f"Head block {head.number}: {trusted}  (an auditor checks it with --trust-block)")


@audit.command("verify-bundle")
@common_options
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust-block", "trust_block", type=HASH32, help="Hash of the block you trust (the bundle's last).")
@click.option("--validators", "validators_file", type=click.Path(dir_okay=False, path_type=Path),
              help="QBFT validator set: JSON list, Besu genesis.json, or one address per line.")
@click.option("--deployment", "deployment_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The consortium's deployment as you know it (`fullchain chain deploy --json`).")
def verify_bundle_command(path: Path, trust_block: bytes | None, validators_file: Path | None,
                          deployment_file: Path | None) -> None:
    """Check a bundle with no node and no network; exit 1 naming the first check that fails."""
    from fullchain.audit.bundle import load_bundle, load_validators, verify_bundle
    from fullchain.errors import VerificationFailed

    validators = load_validators(validators_file) if validators_file else None
    deployment = _deployment(deployment_file)
    passed: list[tuple[str, str]] = []
    as_json = is_json()

    def heard(what: str, result: str) -> None:
        passed.append((what, result))
        if not as_json:
            click.echo(f"ok    {what}: {result}")

    try:
        with verify_bundle(load_bundle(path), trust_block=trust_block, validators=validators, deployment=deployment,
                           on_check=heard) as verified:
            report = verified.report
    except VerificationFailed as exc:
        if as_json:
            _emit({"ok": False, "passed": [{"check": w, "result": r} for w, r in passed],
                   "failure": exc.message, "hint": exc.hint})
            sys.exit(1)
        raise  # the usual one-line error on stderr, after the checks that held
    if as_json:
        _emit({"ok": True, "dataset_id": str(report.dataset_id), "trusted": report.trusted,
               "trusted_by": report.trusted_by, "checks": [{"check": w, "result": r} for w, r in report.checks]})
        return
    click.echo(f"Bundle verified: dataset {report.dataset_id}, trusted block {report.trusted} "
               f"({_TRUSTED_BY[report.trusted_by]})")


def _deployment(path: Path | None) -> dict[str, str] | None:
    from fullchain.deployments import load_deployment_file

    return dict(load_deployment_file(path).contracts) if path is not None else None


_TRUSTED_BY = {"--trust-block": "given with --trust-block",
               "validators": "sealed by the validators given",
               "bundle": "the bundle's own last header: compare it with a node you trust, or pass --trust-block"}


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
@click.option("--bundle", "bundle_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Report from this audit bundle, verified first (no node, no profile needed).")
@click.option("--trust-block", "trust_block", type=HASH32, help="With --bundle: the block hash you trust.")
@click.option("--validators", "validators_file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --bundle: the QBFT validator set.")
@click.option("--deployment", "deployment_file", type=click.Path(dir_okay=False, path_type=Path),
              help="With --bundle: the consortium's deployment as you know it.")
def report(dataset_id: int, output: Path, bundle_file: Path | None, trust_block: bytes | None,
           validators_file: Path | None, deployment_file: Path | None) -> None:
    """Write a self-contained HTML audit report of a dataset: summary, lineage, license timeline, accesses, checks."""
    from fullchain.audit.prov import write_export
    from fullchain.audit.report import build_report_data, render_report

    if bundle_file is None:
        if trust_block is not None or validators_file is not None or deployment_file is not None:
            raise click.UsageError("--trust-block, --validators and --deployment apply to --bundle")
        v = view()
        data = build_report_data(v.index, dataset_id, v.local_names())
    else:
        from fullchain.audit.bundle import load_bundle, load_validators, verify_bundle
        from fullchain.home import fullchain_home
        from fullchain.profiles import local_names

        validators = load_validators(validators_file) if validators_file else None
        with verify_bundle(load_bundle(bundle_file), trust_block=trust_block, validators=validators,
                           deployment=_deployment(deployment_file)) as verified:
            if verified.report.dataset_id != dataset_id:
                raise click.UsageError(f"{bundle_file} is the bundle of dataset {verified.report.dataset_id}, "
                                       f"not {dataset_id}")
            source = (f"the bundle {bundle_file.name}, verified offline up to block {verified.report.trusted} "
                      f"({_TRUSTED_BY[verified.report.trusted_by]})")
            checks = [(f"bundle: {what}", result) for what, result in verified.report.checks
                      if what != "license at time of use"]
            checks.append(("bundle: lineage", "ancestors proven complete; descendants proven registered as shown, "
                                              "not proven complete (their registrations name this dataset only "
                                              "in log data)"))
            data = build_report_data(verified.index, dataset_id, local_names(fullchain_home(None)), checks,
                                     source=source)
    write_export(output, render_report(data))
    if is_json():
        _emit({"file": str(output), "dataset_id": str(dataset_id), "accesses": data.accesses_total,
               "uncovered": data.accesses_uncovered, "licenses": data.licenses_total,
               "verification": [{"check": c, "result": r} for c, r in data.verification]})
    else:
        click.echo(f"Wrote {output}: audit report of dataset {dataset_id} ({data.accesses_total} accesses, "
                   f"{data.accesses_uncovered} not covered, {data.licenses_total} licenses)")
