from __future__ import annotations

import click

from fullchain.demo import DEMO_PASSWORD, run_demo

from ..context import common_options
from ..names import named
from ..output import emit_json, is_json, say
from .member import member_rows, MEMBER_COLUMNS


@click.command()
@common_options
@click.option("--reset", is_flag=True, help="Delete the profiles, keys and embedded chain in FULLCHAIN_HOME first.")
def demo(reset: bool) -> None:
    """Play the consortium story on the embedded chain in a fresh FULLCHAIN_HOME."""
    result = run_demo(reset=reset, progress=lambda step: say(f"- {step}"))
    names = {address: name for name, address in result.profiles.items()}
    if is_json():
        emit_json({"home": str(result.home), "profiles": result.profiles, "deployment": result.deployment,
                   "proposal_id": result.proposal_id, "members": result.members,
                   "registration": result.registration, "fetched": result.fetched, "verified": result.verified,
                   "license_id": result.license_id, "licensed_fetch": result.licensed_fetch,
                   "refusals": result.refusals})
        return
    from ..output import table

    table(f"Consortium {result.deployment.contracts['Consortium']} (chain {result.deployment.chain_id})",
          MEMBER_COLUMNS, member_rows(result.members, names))
    reg = result.registration
    click.echo(f"\nDataset {reg.dataset_id} registered by hospital: {reg.size} bytes, encrypted payload {reg.cid}")
    click.echo(f"  commitment on chain {reg.commitment}")
    click.echo(f"  fetched back to {result.fetched.path}: decrypted, "
               f"{'matches' if result.verified.matches else 'DOES NOT MATCH'} the commitment")
    click.echo(f"\nLicense {result.license_id}: pharma, health/medical/biomedical research (DUO:0000006), 90 days")
    click.echo(f"  pharma fetched {result.licensed_fetch.path}: use recorded on chain, commitment verified")
    for who, why in result.refusals.items():
        click.echo(f"  refused, {who}: {named(why, names)}")
    secret = "the password in FULLCHAIN_PASSWORD" if result.password_from_env else f"the demo password '{DEMO_PASSWORD}'"
    click.echo(f"\nState is in {result.home}; the profiles hospital, pharma and cro are protected by {secret}.")
    click.echo("Try: fullchain --profile hospital member list")
