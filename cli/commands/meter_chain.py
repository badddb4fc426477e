"""`fullchain meter` commands that talk to the ContributionMeter contract: submit, attest,
dispute, resolve, records, epoch, finalize. Attached to the `meter` group in meter.py."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fullchain.models import MeterEpoch, MeterRecord

from ..context import common_options, connect
from ..names import local_names, resolve, who
from ..output import emit_json, fields, is_json, say, table
from ..types import DATASET_ID, OFFSET, PAGE_SIZE, VERSION, BoundedInt
from .meter_value import _Time

RECORD_ID = BoundedInt("record id", 1, 2**64 - 1)
EPOCH = BoundedInt("epoch", 0, 2**64 - 1)
REPORT = click.Path(exists=True, dir_okay=False, path_type=Path)


def _record(r: MeterRecord) -> None:
    if is_json():
        emit_json(r)
        return
    names = local_names()
    fields([("record", r.id), ("epoch", r.epoch), ("member", who(r.member, names)),
            ("measure", f"{r.kind} ({r.dimension} dimension)"), ("subject", r.subject_label),
            ("amount", r.amount), ("points", r.points),
            ("status", f"{r.status}, {'counted' if r.counted else 'not counted'}"),
            ("attestations", f"{r.attestations} of {r.required}"
             + (f" ({', '.join(who(a, names) for a in r.attesters)})" if r.attesters else "")),
            *([("disputed by", who(r.disputer, names)), ("reason", r.dispute_reason_cid)] if r.disputer else []),
            ("evidence", r.evidence_cid)])


@click.group("submit")
def submit() -> None:
    """Measure a contribution and record it on chain with its evidence."""


@submit.command("data")
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--version", type=VERSION, help="The version to measure (default: the latest).")
@click.option("--standard", help="Override the standard the file is measured as (sdtm, adam, omop, fhir).")
def submit_data(dataset_id: int, version: int | None, standard: str | None) -> None:
    """Measure your DATASET_ID version (cases, completeness, timeliness) and submit its data amount."""
    say(f"measuring dataset {dataset_id}{f' version {version}' if version else ''} ...")
    _record(connect().meter.submit_data(dataset_id, version, standard=standard))


def _subject(text: str | None) -> bytes | None:
    from fullchain.metering.meter import parse_subject

    return parse_subject(text) if text else None


@submit.command("algorithm")
@common_options
@click.option("--report", "report", type=REPORT, required=True,
              help="The valuation report: the JSON of `fullchain meter value --json`, by whoever valued your data.")
@click.option("--subject", help="What it is about: DATASET:VERSION, or a model's SHA-256 (default: the report's SHA-256).")
def submit_algorithm(report: Path, subject: str | None) -> None:
    """Submit your data's Shapley value in a valuation report, in basis points of accuracy."""
    _record(connect().meter.submit_algorithm(report.read_bytes(), subject=_subject(subject)))


@submit.command("compute")
@common_options
@click.argument("jobs_file", type=REPORT, required=False)
@click.option("--slurm-account", help="Slurm files: the account your jobs ran under (default: your address).")
@click.option("--storage", is_flag=True, help="Submit storage byte-seconds held, measured from the chain, instead.")
@click.option("--from", "start", type=_Time(), help="With --storage: start of the period (default: the current epoch's).")
@click.option("--to", "end", type=_Time(), help="With --storage: end of the period, excluded (default: the epoch's end).")
@click.option("--subject", help="What it is about (default: the job file's SHA-256, or the storage period's).")
def submit_compute(jobs_file: Path | None, slurm_account: str | None, storage: bool, start: int | None,
                   end: int | None, subject: str | None) -> None:
    """Measure your GPU-seconds in JOBS_FILE (`sacct --json` output, or a CSV job_id,member,
    gpu_seconds,started,ended naming members by address) and submit them; or, with --storage,
    your storage byte-seconds from the chain."""
    if storage:
        if jobs_file is not None or slurm_account:
            raise click.UsageError("--storage is measured from the chain: give no job file or --slurm-account")
        fc = connect()
        if start is None or end is None:
            index = fc.read_index()
            bounds = index.meter_epoch_bounds(fc.meter.current_epoch())
            start = bounds[0] if start is None and bounds else start
            end = bounds[1] if end is None and bounds else end
        if start is None or end is None:
            raise click.UsageError("give the period with --from and --to")
        _record(fc.meter.submit_storage(start, end, subject=_subject(subject)))
        return
    if jobs_file is None or start is not None or end is not None:
        raise click.UsageError("give a JOBS_FILE (--from and --to go with --storage)")
    _record(connect().meter.submit_compute(jobs_file, slurm_account=slurm_account, subject=_subject(subject)))


@click.command()
@common_options
@click.argument("record_id", type=RECORD_ID)
@click.option("--dispute", "dispute_on_mismatch", is_flag=True,
              help="When the figures differ, dispute the record with the differences as the reason.")
def attest(record_id: int, dispute_on_mismatch: bool) -> None:
    """Measure RECORD_ID's contribution again and attest it only if the figures match."""
    fc = connect()
    check = fc.meter.remeasure(record_id)
    outcome: dict[str, Any] = {"check": check.model_dump(mode="json"), "attested": False, "disputed": False}
    if check.matches:
        outcome["record"] = fc.meter.attest(record_id).model_dump(mode="json")
        outcome["attested"] = True
    elif dispute_on_mismatch:
        reason = json.dumps({"record": record_id, "differences": outcome["check"]["differences"]},
                            sort_keys=True).encode()
        outcome["record"] = fc.meter.dispute(record_id, reason).model_dump(mode="json")
        outcome["disputed"] = True
    if is_json():
        emit_json(outcome)
    else:
        how = "measured again" if check.recomputed else "amount derived again from its evidence report"
        if check.matches:
            click.echo(f"record {record_id}: {how}, the figures match; attested")
        else:
            click.echo(f"record {record_id}: {how}, the figures differ:")
            for d in check.differences:
                click.echo(f"  {d.figure}: recorded {d.recorded}, measured {d.measured}")
            click.echo("disputed with these differences as the reason" if outcome["disputed"] else
                       f"not attested; to dispute: `fullchain meter attest {record_id} --dispute`")
    if not check.matches and not outcome["disputed"]:
        click.get_current_context().exit(1)


@click.command()
@common_options
@click.argument("record_id", type=RECORD_ID)
@click.option("--reason", required=True, help="What is wrong with the record (stored as content; its digest on chain).")
def dispute(record_id: int, reason: str) -> None:
    """Dispute RECORD_ID: its points leave the totals until the governors resolve it."""
    _record(connect().meter.dispute(record_id, reason.encode()))


@click.command("resolve")
@common_options
@click.argument("record_id", type=RECORD_ID)
@click.option("--uphold", "upheld", flag_value=True, default=None, help="The record stands (the dispute fails).")
@click.option("--reject", "upheld", flag_value=False, help="The record is rejected and never counts.")
def resolve_(record_id: int, upheld: bool | None) -> None:
    """Propose resolving RECORD_ID's dispute; governors approve it like any proposal."""
    if upheld is None:
        raise click.UsageError("say how: --uphold or --reject")
    pid = connect().meter.propose_resolution(record_id, upheld=upheld)
    if is_json():
        emit_json({"proposal_id": pid, "record_id": record_id, "upheld": upheld})
        return
    click.echo(f"proposal {pid}: {'uphold' if upheld else 'reject'} record {record_id}; governors approve with "
               f"`fullchain member vote {pid}`, then it is executed with `fullchain member execute {pid}`")


@click.command()
@common_options
@click.option("--epoch", type=EPOCH, help="Only this epoch's records.")
@click.option("--member", help="Only this member's records (a profile name or an address).")
@click.option("--status", type=click.Choice(["submitted", "disputed", "upheld", "rejected"]), help="Only these.")
@click.option("--limit", type=PAGE_SIZE, help="At most this many (a page).")
@click.option("--offset", type=OFFSET, default=0, help="Skip this many first.")
def records(epoch: int | None, member: str | None, status: str | None, limit: int | None, offset: int) -> None:
    """List contribution records, from the event index."""
    fc = connect()
    account = resolve(fc.home, member, what="member")[0] if member else None
    items = fc.meter.records(epoch=epoch, member=account, status=status, limit=limit, offset=offset)
    if is_json():
        emit_json(items)
        return
    names = local_names()
    table(f"Contribution records ({len(items)})",
          ("id", "epoch", "member", "measure", "subject", "amount", "points", "status", "attested", "counted"),
          [(r.id, r.epoch, who(r.member, names), r.kind, r.subject_label, r.amount, r.points, r.status,
            f"{r.attestations}/{r.required}", "yes" if r.counted else "no") for r in items])


def show_epoch(e: MeterEpoch) -> None:
    if is_json():
        emit_json(e)
        return
    fields([("epoch", e.epoch), ("from", f"{e.start:%Y-%m-%d %H:%M:%S} UTC"), ("to", f"{e.end:%Y-%m-%d %H:%M:%S} UTC"),
            ("disputes until", f"{e.window_closes_at:%Y-%m-%d %H:%M:%S} UTC"), ("state", e.state),
            ("records", e.records), ("open disputes", e.open_disputes),
            *((f"total {d}", v) for d, v in e.totals.items())])
    names = local_names()
    dims = list(e.totals)
    table("Points and shares", ("member", *dims),
          [(who(m.member, names), *(f"{m.points[d]} ({m.shares_bps[d] / 100:.2f}%)" for d in dims))
           for m in e.members])


@click.command("epoch")
@common_options
@click.argument("epoch", type=EPOCH, required=False)
def epoch_(epoch: int | None) -> None:
    """An epoch's status, totals, and each member's points and share per dimension (default: the current one)."""
    show_epoch(connect().meter.epoch(epoch))


@click.command()
@common_options
@click.argument("epoch", type=EPOCH)
def finalize(epoch: int) -> None:
    """Close EPOCH for good, once its dispute window is over and no dispute is open."""
    show_epoch(connect().meter.finalize(epoch))


@click.command("anchor")
@common_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["compute", "metering"]), required=True,
              help="compute: job records; metering: measurement evidence.")
def anchor_(file: Path, kind: str) -> None:
    """Anchor FILE's records (one JSON object per line) as one Merkle root on chain, constant gas.

    The records go to the content store; any one of them can later be proven included by its
    SHA-256 alone (OpenZeppelin MerkleProof, on chain or offline)."""
    from fullchain.audit.anchor import BatchKind, read_records

    fc = connect()
    batch_id, receipt, cid = fc.anchor.record_batch(BatchKind[kind.upper()], read_records(file))
    count = fc.anchor.batch(batch_id).count
    if is_json():
        emit_json({"batch_id": str(batch_id), "kind": kind, "count": count, "records_cid": cid,
                   "transaction": "0x" + bytes(receipt["transactionHash"]).hex()})
    else:
        click.echo(f"anchored {count} {kind} records as batch {batch_id} (records {cid})")


def attach_chain_commands(group: click.Group) -> None:
    for command in (submit, attest, dispute, resolve_, records, epoch_, finalize, anchor_):
        group.add_command(command)
