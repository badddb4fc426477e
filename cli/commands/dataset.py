from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from fullchain.duo import parse_purpose
from fullchain.errors import InvalidInput
from fullchain.metadata import MEASURED_FIELDS, STANDARD_CODES, TIER_CODES, build_metadata

from ..context import common_options, connect, view
from ..names import resolve, who
from ..output import emit_json, fields, is_json, table, to_jsonable
from ..progress import file_size, transfer_progress
from ..types import DATASET_ID, DURATION, OFFSET, PAGE_SIZE, VERSION


@click.group()
def dataset() -> None:
    """Register, fetch and verify encrypted datasets anchored on chain."""


def storage_option(func):  # noqa: ANN001, ANN201
    return click.option("--storage", help="'embedded' or an IPFS RPC API URL (default: the profile's).")(func)


def _metadata(meta_file: Path | None, inherited: dict[str, Any] | None = None, **fields_: Any):  # noqa: ANN202
    base: dict[str, Any] = dict(inherited or {})
    if meta_file is not None:
        try:
            base = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"cannot read metadata file {meta_file} ({exc})",
                               hint="give a JSON object with title, standard, tier, ...") from None
        if not isinstance(base, dict):
            raise InvalidInput(f"metadata file {meta_file} must hold a JSON object", hint="e.g. {\"title\": \"...\"}")
    return build_metadata(base, **fields_)


def _registered(reg) -> None:  # noqa: ANN001
    if is_json():
        emit_json(reg)
        return
    note = " (finished an interrupted registration)" if reg.resumed else ""
    fields([("dataset", reg.dataset_id), ("version", reg.version), ("cid", reg.cid),
            ("commitment", reg.commitment), ("size", f"{reg.size} bytes")]
           + ([("priority", f"window open until {reg.priority_closes_at:%Y-%m-%d %H:%M} UTC: only owners of its "
                            "parent datasets may request it until then")] if reg.priority_closes_at else []))
    if note:
        click.echo(note.strip())


_meta_options = [
    click.option("--title", help="Title (required unless in --meta)."),
    click.option("--description", help="Free text description."),
    click.option("--standard", type=click.Choice(sorted(STANDARD_CODES)), help="Data standard."),
    click.option("--tier", type=click.Choice(sorted(TIER_CODES)), help="Sensitivity tier (default consortium)."),
    click.option("--domain", help="Therapeutic or data domain, e.g. oncology."),
    click.option("--subjects", "subject_count", type=click.IntRange(min=0), help="Number of subjects."),
    click.option("--data-use", multiple=True, help="Default data-use condition (GA4GH DUO id or shorthand); repeat."),
    click.option("--meta", "meta_file", type=click.Path(dir_okay=False, path_type=Path),
                 help="A JSON metadata document; command-line fields override it."),
]


def identifiers_options(func):  # noqa: ANN001, ANN201
    func = click.option("--reason", help="Why the identifiers may be shared (required with --allow-identifiers; "
                                         "recorded in the encrypted metadata).")(func)
    return click.option("--allow-identifiers", is_flag=True,
                        help="Register even if the red-line check finds direct identifiers.")(func)


def _override(allow: bool, reason: str | None) -> str | None:
    """The override's reason; a usage error when one is given without the other."""
    if allow and not (reason and reason.strip()):
        raise click.UsageError("--allow-identifiers needs --reason TEXT (why these identifiers may be shared)")
    if reason is not None and not allow:
        raise click.UsageError("--reason goes with --allow-identifiers")
    return reason if allow else None


def meta_options(func):  # noqa: ANN001, ANN201
    for option in reversed(_meta_options):
        func = option(func)
    return func


def _meta_from(kw: dict[str, Any], inherited: dict[str, Any] | None = None):  # noqa: ANN202
    data_use = list(kw.pop("data_use") or []) or None
    return _metadata(kw.pop("meta_file"), inherited, data_use=data_use, **kw)


@dataset.command()
@common_options
@storage_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@meta_options
@click.option("--derived-from", "derived_from", multiple=True, type=DATASET_ID, help="Parent dataset id; repeat.")
@click.option("--priority", type=DURATION, help="With --derived-from: a priority window (1d to 365d, e.g. 90d) "
                                                "during which only owners of the parents may request it.")
@identifiers_options
def register(file: Path, storage: str | None, derived_from: tuple[int, ...], priority: int | None,
             allow_identifiers: bool, reason: str | None, **meta: Any) -> None:
    """Encrypt FILE, store it, and anchor it on chain as a new dataset you own.

    The file is measured and red-line checked first: one with direct identifiers (names, national
    ids, phone numbers, e-mail, full birth dates, addresses) is refused unless overridden."""
    override = _override(allow_identifiers, reason)
    if priority is not None and not derived_from:
        raise click.UsageError("--priority needs --derived-from: only a dataset derived from others has a "
                               "priority window")
    metadata = _meta_from(meta)
    fc = connect(storage=storage)
    with transfer_progress(file_size(file)) as progress:
        reg = fc.datasets.register(file, metadata, derived_from=derived_from, allow_identifiers=override,
                                   priority=priority, progress=progress)
    _registered(reg)


@dataset.command("version")
@common_options
@storage_option
@click.argument("dataset_id", type=DATASET_ID)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@meta_options
@identifiers_options
def add_version(dataset_id: int, file: Path, storage: str | None, allow_identifiers: bool, reason: str | None,
                **meta: Any) -> None:
    """Add FILE as the next version of dataset DATASET_ID (owner only), red-line checked as in register."""
    override = _override(allow_identifiers, reason)
    fc = connect(storage=storage)
    inherited = None
    if not meta.get("meta_file"):
        # A new version keeps the previous version's metadata (title, standard, tier, data use...)
        # except for the fields given on the command line.
        current = fc.datasets.metadata(dataset_id)
        inherited = current.model_dump(mode="json") if current is not None else None
        if inherited is not None:  # measured from the file: the new file gets its own
            for name in MEASURED_FIELDS:
                inherited.pop(name, None)
    metadata = _meta_from(meta, inherited)
    with transfer_progress(file_size(file)) as progress:
        reg = fc.datasets.add_version(dataset_id, file, metadata, allow_identifiers=override, progress=progress)
    _registered(reg)


@dataset.command("list")
@common_options
@storage_option
@click.option("--limit", type=PAGE_SIZE, help="At most this many datasets (a page).")
@click.option("--offset", type=OFFSET, default=0, help="Skip this many first (with --limit: the next pages).")
@click.option("--owner", help="Only datasets of this owner (an address or a local profile name).")
@click.option("--mine", is_flag=True, help="Only datasets this profile owns.")
@click.option("--standard", type=click.Choice(sorted(STANDARD_CODES)), help="Only this data standard (latest version).")
@click.option("--tier", type=click.Choice(sorted(TIER_CODES)), help="Only this sensitivity tier (latest version).")
@click.option("--data-use", help="Only datasets whose public terms include this DUO code (e.g. HMB).")
def list_(storage: str | None, limit: int | None, offset: int, owner: str | None, mine: bool,
          standard: str | None, tier: str | None, data_use: str | None) -> None:
    """List the datasets, from the event index (titles shown where this profile can read them)."""
    v = view(storage=storage, keys=True)
    if mine:
        owner = v.address
    elif owner is not None:
        owner, _ = resolve(v.home, owner)
    filters = {"owner": owner, "standard": standard, "tier": tier, "data_use": data_use}
    items = v.datasets(limit=limit, offset=offset, **filters)
    if is_json():
        emit_json([{**to_jsonable(e.info), "erased_versions": e.erased_versions,
                    "standard": e.latest.standard if e.latest else None,
                    "tier": e.latest.tier if e.latest else None} for e in items])
        return
    total = v.count_datasets(**filters)
    names = v.local_names()
    shown = f"{offset + 1}-{offset + len(items)} of {total}" if items else f"none of {total}"
    table(f"Datasets ({shown})", ("id", "title", "owner", "versions", "standard", "tier", "derived from"),
          [(e.info.dataset_id, e.info.title or "(encrypted)", who(e.info.owner, names),
            _versions(e.info.version_count, e.erased_versions), e.latest.standard if e.latest else "-",
            e.latest.tier if e.latest else "-", ", ".join(map(str, e.info.derived_from)) or "-") for e in items])


def _versions(count: int, erased: list[int]) -> str:
    """The version count, and which versions were erased (a steward must see that at a glance)."""
    if not erased:
        return str(count)
    return f"{count} ({', '.join(map(str, erased))} erased)"


@dataset.command()
@common_options
@storage_option
@click.argument("text", default="")
@click.option("--standard", type=click.Choice(sorted(STANDARD_CODES)), help="Only this data standard.")
@click.option("--data-use", help="Only datasets whose terms include this DUO code (e.g. HMB or DUO:0000006).")
@click.option("--limit", type=PAGE_SIZE, help="At most this many results.")
def search(text: str, storage: str | None, standard: str | None, data_use: str | None, limit: int | None) -> None:
    """Find datasets by the words of TEXT in the metadata this profile can read (public metadata,
    and encrypted metadata of your own datasets and those you are licensed for)."""
    fc = connect(storage=storage)
    found = fc.datasets.search(text, standard=standard, data_use=data_use, limit=limit)
    if is_json():
        emit_json([{**to_jsonable(e.info), "metadata": meta} for e, meta in found])
        return
    names = fc.local_names()
    table(f"Datasets matching {text!r}" if text else "Datasets", ("id", "title", "owner", "standard", "data use", "tier"),
          [(e.info.dataset_id, meta.title, who(e.info.owner, names), meta.standard or "-",
            ", ".join(meta.data_use) or "-", e.latest.tier if e.latest else "-") for e, meta in found])


@dataset.command()
@common_options
@storage_option
@click.argument("dataset_id", type=DATASET_ID)
def show(dataset_id: int, storage: str | None) -> None:
    """Show a dataset, its latest version and its metadata (if readable)."""
    fc = connect(storage=storage)
    info = fc.datasets.get(dataset_id)
    latest = fc.datasets.version(dataset_id)
    meta = fc.datasets.metadata(dataset_id)
    closes = fc.licensing.priority_window(dataset_id)
    if is_json():
        emit_json({"dataset": info, "latest": latest, "metadata": meta,
                   "priority_closes_at": closes.isoformat() if closes else None})
        return
    fields([("dataset", info.dataset_id), ("title", info.title or "(encrypted: no key for this profile)"),
            ("owner", who(info.owner, fc.local_names())),
            ("versions", _versions(info.version_count, [v.version for v in fc.datasets.history(dataset_id) if v.erased])),
            ("derived from", ", ".join(map(str, info.derived_from)) or "-"),
            ("latest cid", latest.payload_cid), ("commitment", latest.commitment),
            ("size", f"{latest.size} bytes"), ("standard", latest.standard), ("tier", latest.tier),
            ("priority", _priority(closes, fc.licensing.chain_time()))])
    if meta is not None:
        fields([("description", meta.description or "-"), ("domain", meta.domain or "-"),
                ("subjects", meta.subject_count if meta.subject_count is not None else "-"),
                ("data use", ", ".join(meta.data_use) or "-")])
        fields(_measured(meta))


def _priority(closes: datetime | None, now: datetime) -> str:
    if closes is None:
        return "no window"
    when = f"{closes:%Y-%m-%d %H:%M} UTC"
    if closes > now:
        return f"window open until {when}: only owners of its parent datasets may request it until then"
    return f"window closed {when}"


def _measured(meta) -> list[tuple[str, str]]:  # noqa: ANN001
    """The figures and the red-line record the SDK put in the metadata at registration."""
    out = []
    m = meta.measurement
    if m is not None:
        out.append(("measured", f"{m.standard} {m.domain}: {m.rows} rows, {m.cases} cases, "
                                f"{m.completeness_bps / 100:.2f}% complete, newest date {m.newest_date or '-'}"))
    elif meta.measurement_skipped:
        out.append(("measured", f"no ({meta.measurement_skipped})"))
    if meta.redline is not None:
        check = meta.redline.status
        if meta.redline.status == "skipped":
            check += f" ({meta.redline.reason})"
        elif meta.redline.findings:
            found = ", ".join(f"{f.column} ({f.rule})" for f in meta.redline.findings)
            check += f": {found}; reason: {meta.allow_identifiers}"
        out.append(("red-line check", check))
    return out


@dataset.command()
@common_options
@storage_option
@click.argument("dataset_id", type=DATASET_ID)
def history(dataset_id: int, storage: str | None) -> None:
    """List every version of a dataset."""
    versions = view(storage=storage).history(dataset_id)
    if is_json():
        emit_json(versions)
        return
    table(f"Dataset {dataset_id}", ("version", "registered", "size", "standard", "tier", "cid", "status"),
          [(v.version, v.registered_at.strftime("%Y-%m-%d %H:%M"), v.size, v.standard, v.tier, v.payload_cid,
            "erased" if v.erased else "live") for v in versions])


@dataset.command()
@common_options
@storage_option
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--version", "version", type=VERSION, help="Version number (default: the latest).")
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path), help="Where to write the plaintext.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--purpose", help="Licensees: the DUO purpose of this use (default: your license's).")
@click.option("--disease", help="Disease term for DUO:0000007.")
def fetch(dataset_id: int, version: int | None, output: Path, storage: str | None, purpose: str | None,
          disease: str | None, force: bool) -> None:
    """Fetch, decrypt and verify a dataset version into OUTPUT (licensees: the use is recorded)."""
    p = parse_purpose(purpose, disease) if purpose else None
    # Before anything is recorded on chain: a steward fetching into the original's path must not lose it.
    if not force and (output.exists() or output.is_symlink()) and not output.is_dir():
        raise InvalidInput(f"{output} already exists", hint="pass --force to replace it, or choose another -o path")
    fc = connect(storage=storage)
    v = fc.datasets.version(dataset_id, version)
    with transfer_progress(v.size) as progress:
        result = fc.datasets.fetch(dataset_id, output, version=v.version, purpose=p, progress=progress)
    if is_json():
        emit_json(result)
        return
    click.echo(f"wrote {result.path} ({result.size} bytes): dataset {dataset_id} version {result.version}, "
               f"commitment verified")


@dataset.command()
@common_options
@storage_option
@click.argument("dataset_id", type=DATASET_ID)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=VERSION, help="Version number (default: the latest).")
def verify(dataset_id: int, file: Path, version: int | None, storage: str | None) -> None:
    """Check that FILE is exactly a registered version; exit 1 if it is not."""
    result = connect(storage=storage).datasets.verify(dataset_id, file, version=version)
    if is_json():
        emit_json(result)
    elif result.matches:
        click.echo(f"{file} matches dataset {dataset_id} version {result.version} (commitment {result.commitment})")
    if not result.matches:
        click.echo(f"error: {file} does not match dataset {dataset_id} version {result.version} "
                   f"(its SHA-256 is {result.sha256}; the commitment on chain is {result.commitment})", err=True)
        raise click.exceptions.Exit(1)


@dataset.command()
@common_options
@storage_option
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--version", "version", type=VERSION, required=True, help="The version to erase.")
@click.option("--yes", "-y", is_flag=True, help="Confirm without being asked (needed without a terminal).")
def erase(dataset_id: int, version: int, storage: str | None, yes: bool) -> None:
    """Erase a version: tombstone on chain, unpin content, destroy the keys held here."""
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput(f"dataset {dataset_id} version {version} was not erased: erasing is for good and "
                               "there is no terminal to confirm on", hint="add --yes to confirm")
        if not click.confirm(f"Erase dataset {dataset_id} version {version} for good (keys destroyed, content "
                             "unpinned)?", err=True):
            click.echo("not erased", err=True)
            raise click.exceptions.Exit(1)
    v = connect(storage=storage).datasets.erase(dataset_id, version)
    if is_json():
        emit_json(v)
        return
    click.echo(f"dataset {dataset_id} version {version} erased")
