from __future__ import annotations

from pathlib import Path

import click

from fullchain.storage import normalize_cid

from ..context import common_options, connect
from ..output import emit_json, is_json


@click.group()
def storage() -> None:
    """The content store (embedded blocks or an IPFS node)."""


@storage.command("export")
@common_options
@click.option("--storage", "spec", help="'embedded' or an IPFS RPC API URL (default: the profile's).")
@click.argument("cid")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The CAR file to write.")
def export(cid: str, output: Path, spec: str | None) -> None:
    """Write the DAG of CID as a CARv1 file (import it into any IPFS node with `ipfs dag import`)."""
    fc = connect(storage=spec)
    root = normalize_cid(cid)
    tmp = output.with_name(f".{output.name}.partial")
    try:
        with tmp.open("wb") as out:
            fc.store.export_car(root, out)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    if is_json():
        emit_json({"cid": root, "path": str(output), "size": output.stat().st_size})
        return
    click.echo(f"wrote {output} ({output.stat().st_size} bytes) with root {root}")
