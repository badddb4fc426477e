"""`meter value` (algorithm dimension), `meter compute` (GPU time from job records) and
`meter storage` (byte-seconds held, from the chain)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from fullchain.duo import parse_purpose
from fullchain.errors import InvalidInput

from ..context import common_options, connect
from ..output import emit_json, fields, is_json, say, table
from ..types import DATASET_ID

_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


def _pairs(values: tuple[str, ...], what: str, option: str) -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip() or not rest.strip():
            raise click.BadParameter(f"'{value}' is not {what}=...", param_hint=option)
        out.append((key.strip(), rest.strip()))
    return out


@click.command("value")
@common_options
@click.argument("datasets", nargs=-1, type=DATASET_ID)
@click.option("--model", "model", type=click.Choice(["logistic", "gbm"]), default="logistic", show_default=True,
              help="The reference model trained on each coalition of providers.")
@click.option("--target", required=True, help="The column to predict (present in every table).")
@click.option("--eval", "eval_file", required=True, type=_FILE, help="The agreed evaluation CSV file.")
@click.option("--candidate", type=_FILE, help="A contributed ONNX model: its accuracy gain over the baseline.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seeds the models and the permutations: same inputs and seed, same values.")
@click.option("--permutations", type=click.IntRange(2, 100_000),
              help="Monte Carlo permutations (default: exact Shapley up to 10 providers, 200 permutations beyond).")
@click.option("--file", "files", multiple=True, metavar="PROVIDER=PATH",
              help="A local CSV table of PROVIDER (repeatable; several files of one provider are joined).")
@click.option("--purpose", help="Licensees: the DUO purpose of this use (default: each license's).")
@click.option("--disease", help="Disease term for DUO:0000007.")
def value(datasets: tuple[int, ...], model: str, target: str, eval_file: Path, candidate: Path | None, seed: int,
          permutations: int | None, files: tuple[str, ...], purpose: str | None, disease: str | None) -> None:
    """Each data provider's Shapley value of a reference model's held-out accuracy.

    DATASETS are ids of datasets on chain this profile may read (its own, licensed ones): each
    is fetched, decrypted into a private temporary directory and grouped by owner. Each table
    must hold the --target column (join DM and outcome tables before registering them)."""
    from fullchain.metering.value import value_datasets, value_providers

    local: dict[str, list[Path]] = {}
    for provider, path in _pairs(files, "PROVIDER", "--file"):
        local.setdefault(provider, []).append(Path(path))
    if not datasets and not local:
        raise click.UsageError("give DATASET ids or --file PROVIDER=PATH")
    if datasets:
        p = parse_purpose(purpose, disease) if purpose else None
        report = value_datasets(connect(), list(datasets), eval_file=eval_file, target=target,
                                model=model, seed=seed, permutations=permutations,  # type: ignore[arg-type]
                                candidate=candidate, purpose=p, files=local)
    else:
        if purpose:
            raise InvalidInput("--purpose applies to datasets on chain, not to local files",
                               hint="drop --purpose, or give DATASET ids")
        report = value_providers(local, eval_file, target, model, seed,  # type: ignore[arg-type]
                                 permutations=permutations, candidate=candidate)
    if is_json():
        emit_json(report)
        return
    how = "exact" if report.method == "exact" else f"Monte Carlo, {report.permutations} permutations"
    table(f"Shapley values of {report.model} accuracy on {report.eval.name} ({how}, seed {report.seed})",
          ["provider", "rows", "value (accuracy points)", "std error"],
          [(p.provider, p.rows, f"{p.value:+.2f}", f"{p.std_error:.2f}") for p in report.providers])
    pairs = [("grand coalition", f"{report.grand_accuracy:.2f}%"),
             ("baseline", f"{report.baseline_accuracy:.2f}% ({report.baseline})"),
             ("coalitions trained", report.coalitions_evaluated)]
    if report.candidate is not None:
        c = report.candidate
        pairs.append(("candidate", f"{c.name}: {c.accuracy:.2f}% ({c.gain:+.2f} points over the baseline)"))
    fields(pairs)


@click.command("compute")
@common_options
@click.argument("jobs_file", type=_FILE)
@click.option("--account", "accounts", multiple=True, metavar="ACCOUNT=MEMBER",
              help="Slurm files: the member a Slurm account stands for (repeatable; default: the account name).")
def compute(jobs_file: Path, accounts: tuple[str, ...]) -> None:
    """GPU-hours per member from job records: `sacct --json` output or a CSV
    job_id,member,gpu_seconds,started,ended."""
    from fullchain.metering.compute import measure_jobs

    report = measure_jobs(jobs_file, members=dict(_pairs(accounts, "ACCOUNT", "--account")))
    if is_json():
        emit_json(report)
        return
    if report.skipped_without_gpu:
        say(f"{report.skipped_without_gpu} job(s) without GPUs or elapsed time were not counted")
    table(f"GPU time in {report.file} ({report.format}, sha256 {report.sha256[:16]}...)",
          ["member", "jobs", "GPU-hours"],
          [(m.member, m.jobs, f"{m.gpu_hours:.2f}") for m in report.members])
    click.echo(f"total: {report.total_gpu_seconds / 3600:.2f} GPU-hours")


class _Time(click.ParamType):
    """A moment as ISO 8601 (a date alone is midnight UTC) or unix seconds."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        try:
            if text.isdigit():
                return int(text)
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"'{text}' is not a time: write ISO 8601 (2026-01-31 or 2026-01-31T12:00:00Z) or unix seconds",
                      param, ctx)
        return int((when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp())


@click.command("storage")
@common_options
@click.option("--from", "start", required=True, type=_Time(), help="Start of the epoch (included).")
@click.option("--to", "end", required=True, type=_Time(), help="End of the epoch (excluded).")
@click.option("--as-of", "as_of", type=_Time(),
              help="Measure a running epoch up to this time (default: now); give the report's own to re-measure.")
def storage(start: int, end: int, as_of: int | None) -> None:
    """Byte-seconds of dataset versions held per member over [--from, --to), from the chain's
    registrations and erasures."""
    from fullchain.metering.compute import storage_byte_seconds

    report = storage_byte_seconds(connect().read_index(), start, end, as_of=as_of)
    if is_json():
        emit_json(report)
        return
    table(f"Storage held from {report.start.isoformat()} to {report.measured_until.isoformat()}",
          ["member", "versions", "byte-seconds", "GB-days"],
          [(m.member, m.versions, m.byte_seconds, f"{m.byte_seconds / 1e9 / 86400:.6f}") for m in report.members])


def register(group: click.Group) -> None:
    """Attach these commands to the `meter` group."""
    group.add_command(value)
    group.add_command(compute)
    group.add_command(storage)
