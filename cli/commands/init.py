from __future__ import annotations

import click

import fullchain

from ..context import common_options, password_source, settings
from ..output import emit_json, fields, is_json


@click.command()
@common_options
@click.option("--chain", default="embedded", show_default=True,
              help="'embedded' (a local chain in FULLCHAIN_HOME) or the JSON-RPC URL of a node.")
@click.option("--consortium", metavar="ADDRESS", help="Address of an existing Consortium contract to join.")
def init(chain: str, consortium: str | None) -> None:
    """Create a profile: an encrypted signing key and an encrypted HPKE key pair.

    On the embedded chain the new account is funded so it can transact at once. Give the
    printed account and HPKE public key to the governors so they can propose your admission.
    """
    name = settings().profile
    config = fullchain.init(name, password=password_source(confirm=True, profile=name), chain=chain,
                            consortium=consortium)
    if is_json():
        emit_json(config)
        return
    fields([("profile", config.name), ("account", config.address), ("hpke public key", config.hpke_public_key),
            ("chain", config.chain), ("consortium", config.consortium or "(the one deployed on this chain)")])
