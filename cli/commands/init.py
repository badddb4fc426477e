from __future__ import annotations

from pathlib import Path

import click

import fullchain
from fullchain.deployments import load_deployment_file

from ..context import common_options, password_source, settings
from ..output import emit_json, fields, is_json


@click.command()
@common_options
@click.option("--chain", default="embedded", show_default=True,
              help="'embedded' (a local chain in FULLCHAIN_HOME) or the JSON-RPC URL of a node.")
@click.option("--storage", default="embedded", show_default=True,
              help="'embedded' (a local block store in FULLCHAIN_HOME) or the RPC API URL of an IPFS node.")
@click.option("--deployment", "deployment_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Join contracts deployed elsewhere: the JSON that `fullchain chain deploy --json` printed.")
def init(chain: str, storage: str, deployment_file: Path | None) -> None:
    """Create a profile: an encrypted signing key and an encrypted HPKE key pair.

    On the embedded chain the new account is funded so it can transact at once. Give the
    printed account and HPKE public key to the governors so they can propose your admission.
    """
    name = settings().profile
    deployment = load_deployment_file(deployment_file) if deployment_file else None
    config = fullchain.init(name, password=password_source(confirm=True, profile=name), chain=chain,
                            storage=storage, deployment=deployment)
    if is_json():
        emit_json(config)
        return
    fields([("profile", config.name), ("account", config.address), ("hpke public key", config.hpke_public_key),
            ("chain", config.chain), ("storage", config.storage),
            ("contracts", ", ".join(f"{k} {v}" for k, v in config.contracts.items()) or "(those deployed on this chain)")])
