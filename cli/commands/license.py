from __future__ import annotations

from pathlib import Path

import click

from fullchain.duo import modifier_mask, parse_purpose
from fullchain.models import License

from ..context import common_options, connect, view
from ..names import local_names, resolve, who
from ..output import emit_json, fields, is_json, table
from ..types import DATASET_ID, DURATION, LICENSE_ID, OFFSET, PAGE_SIZE, REQUEST_ID


@click.group("license")
def license_() -> None:
    """Data-use licenses: request, grant, revoke, check (purposes are GA4GH DUO codes)."""


def _one(lic: License) -> None:
    if is_json():
        emit_json(lic)
        return
    fields([("license", lic.id), ("dataset", lic.dataset_id), ("requester", who(lic.requester, local_names())),
            ("status", lic.status),
            ("valid now", "yes" if lic.valid else "no"), ("purpose", f"{lic.purpose} {lic.purpose_label}"),
            ("modifiers", ", ".join(lic.modifiers) or "-"),
            ("expires", f"{lic.expires_at:%Y-%m-%d %H:%M} UTC" if lic.expires_at else f"(requested term {lic.term_seconds} s)"),
            ("versions", f"{lic.from_version}{' and later' if lic.future_versions else ' only'}"
             if lic.from_version is not None else "-"),
            ("batched access", ("yes" if lic.batched_access else "no") if lic.from_version is not None else "-")])


@license_.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--purpose", required=True, help="DUO permission, e.g. DUO:0000006 (HMB) or DUO:0000007 (DS).")
@click.option("--disease", help="Disease term for DUO:0000007, e.g. MONDO:0005015.")
@click.option("--modifier", "modifiers", multiple=True, help="DUO modifier you accept, e.g. DUO:0000046 (NCU); repeat.")
@click.option("--term", required=True, type=DURATION, help="How long you need it, e.g. 90d.")
@click.option("--justification", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A document explaining the use; only its SHA-256 goes on chain.")
def request(dataset_id: int, purpose: str, disease: str | None, modifiers: tuple[str, ...], term: int,
            justification: Path | None) -> None:
    """Ask the owner of DATASET_ID for a license.

    While the dataset's priority window is open (`dataset show` says until when), only owners of
    the datasets it derives from may request it."""
    p = parse_purpose(purpose, disease)
    lid = connect().licensing.request(dataset_id, p, modifiers=modifier_mask(modifiers), term_seconds=term,
                                      justification=justification)
    if is_json():
        emit_json({"request_id": lid})
        return
    click.echo(f"request {lid}: dataset {dataset_id} for {p.label()}; the owner decides with "
               f"`fullchain license grant {lid}` or `license reject {lid}`")


@license_.command("list")
@common_options
@click.option("--mine", "which", flag_value="mine", help="Requests and licenses you hold.")
@click.option("--incoming", "which", flag_value="incoming", help="Requests and licenses for datasets you own.")
@click.option("--dataset", "dataset_id", type=DATASET_ID, help="Only those of this dataset.")
@click.option("--status", type=click.Choice(["requested", "granted", "expired", "rejected", "revoked", "superseded"]),
              help="Only those in this state.")
@click.option("--limit", type=PAGE_SIZE, help="At most this many (a page).")
@click.option("--offset", type=OFFSET, default=0, help="Skip this many first.")
def list_(which: str | None, dataset_id: int | None, status: str | None, limit: int | None, offset: int) -> None:
    """List requests and licenses, from the event index."""
    v = view()
    filters = {"dataset_id": dataset_id, "status": status,
               "licensee": v.address if which == "mine" else None,
               "owner": v.address if which == "incoming" else None}
    items = v.index.licenses(limit=limit, offset=offset, **filters)
    if is_json():
        emit_json(items)
        return
    total = v.index.count_licenses(**filters)
    names = v.local_names()
    shown = f"{offset + 1}-{offset + len(items)} of {total}" if items else f"none of {total}"
    table(f"Licenses ({shown})", ("id", "dataset", "requester", "purpose", "status", "valid", "expires"),
          [(lic.id, lic.dataset_id, who(lic.requester, names), lic.purpose_label, lic.status, "yes" if lic.valid else "no",
            f"{lic.expires_at:%Y-%m-%d %H:%M}" if lic.expires_at else "-") for lic in items])


@license_.command()
@common_options
@click.argument("license_id", type=LICENSE_ID)
def show(license_id: int) -> None:
    """Show one request or license."""
    _one(connect().licensing.get(license_id))


@license_.command()
@common_options
@click.argument("request_id", type=REQUEST_ID)
@click.option("--expires", "expires", type=DURATION, help="Shorter term than requested, e.g. 30d (default: the requested term).")
@click.option("--narrow", help="Grant a narrower DUO purpose than requested, e.g. DUO:0000007.")
@click.option("--disease", help="Disease term when narrowing to DUO:0000007.")
@click.option("--modifier", "modifiers", multiple=True, help="Extra DUO modifier to impose; repeat.")
@click.option("--this-version-only", is_flag=True, help="Do not cover versions added later.")
@click.option("--batched-access", is_flag=True,
              help="Let the licensee record its uses in Merkle batches (`license record-batch`).")
def grant(request_id: int, expires: int | None, narrow: str | None, disease: str | None,
          modifiers: tuple[str, ...], this_version_only: bool, batched_access: bool) -> None:
    """Grant request REQUEST_ID and deliver the data key to the licensee."""
    purpose = parse_purpose(narrow, disease) if narrow else None
    lic = connect().licensing.grant(request_id, expires_in=expires,
                                    purpose=purpose, extra_modifiers=modifier_mask(modifiers),
                                    future_versions=not this_version_only, batched_access=batched_access)
    if is_json():
        emit_json({"license_id": lic.id, "license": lic})
        return
    click.echo(f"license {lic.id} granted to {who(lic.requester, local_names())} for {lic.purpose_label} until "
               f"{lic.expires_at:%Y-%m-%d %H:%M} UTC; key delivered for version {lic.from_version}")


@license_.command()
@common_options
@click.argument("license_id", type=LICENSE_ID)
def reject(license_id: int) -> None:
    """Decline request LICENSE_ID."""
    _one(connect().licensing.reject(license_id))


@license_.command()
@common_options
@click.argument("license_id", type=LICENSE_ID)
def revoke(license_id: int) -> None:
    """End license LICENSE_ID now (it cannot recall data already downloaded; see README)."""
    _one(connect().licensing.revoke(license_id))


@license_.command()
@common_options
@click.argument("license_id", type=LICENSE_ID)
@click.option("--term", required=True, type=DURATION, help="New term from now, e.g. 90d.")
def renew(license_id: int, term: int) -> None:
    """Extend license LICENSE_ID."""
    _one(connect().licensing.renew(license_id, term_seconds=term))


@license_.command("record-batch")
@common_options
@click.argument("license_id", type=LICENSE_ID)
@click.option("--version", "version", required=True, type=click.IntRange(1, 2**32 - 1),
              help="The dataset version the reads were of.")
@click.option("--kind", required=True, type=click.Choice(["fetch", "compute", "export"]), help="What the reads were.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def record_batch(license_id: int, version: int, kind: str, file: Path) -> None:
    """Record many uses under LICENSE_ID as one Merkle batch (the license must allow it).

    FILE holds one JSON object per line, {"time": ISO 8601 or unix seconds, "detail": "free
    text"}; each detail is hashed (SHA-256) and only the hash is recorded. The records go to the
    content store, their Merkle root on chain."""
    # Only here: fullchain.audit loads the event index, which the other license commands skip.
    from fullchain.audit.anchor import ACCESS_KINDS, find_records_cid, read_access_log

    records = read_access_log(file)
    fc = connect()
    batch_id, receipt = fc.anchor.record_access_batch(license_id, version, ACCESS_KINDS[kind], records)
    batch = fc.anchor.batch(batch_id)
    cid = find_records_cid(fc.store, batch.metadata_digest)
    if is_json():
        emit_json({"batch_id": batch_id, "license_id": license_id, "version": version, "kind": kind,
                   "count": batch.count, "root": "0x" + batch.root.hex(), "records_cid": cid,
                   "metadata_digest": "0x" + batch.metadata_digest.hex(),
                   "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(), "block": receipt["blockNumber"]})
        return
    click.echo(f"batch {batch_id}: {batch.count} {kind} records of version {version} under license {license_id}")
    fields([("root", "0x" + batch.root.hex()), ("records CID", cid),
            ("transaction", "0x" + bytes(receipt["transactionHash"]).hex())])


@license_.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--purpose", required=True, help="DUO permission to check, e.g. DUO:0000006.")
@click.option("--disease", help="Disease term for DUO:0000007.")
@click.option("--account", help="Whose authorization to check (address or local profile; default: yours).")
def check(dataset_id: int, purpose: str, disease: str | None, account: str | None) -> None:
    """Is an account authorized to use DATASET_ID for a purpose now? Exit 1 if not."""
    fc = connect()
    p = parse_purpose(purpose, disease)
    account_ = resolve(fc.home, account, what="account")[0] if account else fc.address
    ok = fc.licensing.is_authorized(dataset_id, p, account_)
    if is_json():
        emit_json({"dataset_id": dataset_id, "account": account_, "purpose": p.code, "disease": p.disease,
                   "authorized": ok})
    else:
        click.echo(f"{who(account_, local_names())} {'is' if ok else 'is NOT'} authorized to use dataset {dataset_id} "
                   f"for {p.label()}")
    if not ok:
        raise click.exceptions.Exit(1)


@click.group()
def consent() -> None:
    """Patient consent for consent-required datasets."""


@consent.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
@click.option("--patient", required=True, help="The patient's account (address or local profile).")
def require(dataset_id: int, patient: str) -> None:
    """Flag DATASET_ID as needing PATIENT's consent (owner only)."""
    fc = connect()
    fc.licensing.require_consent(dataset_id, resolve(fc.home, patient, what="patient")[0])
    _consent_state(fc, dataset_id, just_required=True)


@consent.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
def give(dataset_id: int) -> None:
    """Give consent for DATASET_ID (the patient named for it)."""
    fc = connect()
    fc.licensing.set_consent(dataset_id, given=True)
    _consent_state(fc, dataset_id)


@consent.command()
@common_options
@click.argument("dataset_id", type=DATASET_ID)
def withdraw(dataset_id: int) -> None:
    """Withdraw consent for DATASET_ID: no license on it is usable until consent is given again."""
    fc = connect()
    fc.licensing.set_consent(dataset_id, given=False)
    _consent_state(fc, dataset_id)


def _consent_state(fc, dataset_id: int, *, just_required: bool = False) -> None:  # noqa: ANN001
    required, patient, given = fc.licensing.consent(dataset_id)
    if is_json():
        emit_json({"dataset_id": dataset_id, "required": required, "patient": patient, "given": given})
        return
    name = who(patient, local_names())
    if just_required:
        # The contract presumes consent until the patient withdraws it: say so, not "given".
        click.echo(f"dataset {dataset_id} now requires the consent of {name}; licenses stay usable until "
                   f"the patient withdraws it (`fullchain consent withdraw {dataset_id}`)")
        return
    click.echo(f"dataset {dataset_id}: consent of {name} {'given' if given else 'WITHDRAWN'}")
