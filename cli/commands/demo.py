from __future__ import annotations

import time

import click

from fullchain.demo import DEMO_PASSWORD, run_demo

from ..context import common_options
from ..names import named, who
from ..output import emit_json, is_json, say
from .member import member_rows, MEMBER_COLUMNS
from .meter_chain import show_epoch
from .pool import show_pool


@click.command()
@common_options
@click.option("--reset", is_flag=True, help="Delete the profiles, keys and embedded chain in FULLCHAIN_HOME first.")
def demo(reset: bool) -> None:
    """Play the consortium story on the embedded chain in a fresh FULLCHAIN_HOME: membership,
    an encrypted dataset, licenses used, refused and revoked, an epoch of contribution
    metering (data, algorithm, compute), measured, attested and finalized, and its pool funded
    and claimed."""
    started = time.monotonic()
    result = run_demo(reset=reset, progress=lambda step: say(f"- {step}"))
    names = {address: name for name, address in result.profiles.items()}
    if is_json():
        emit_json({"home": str(result.home), "profiles": result.profiles, "deployment": result.deployment,
                   "proposal_id": result.proposal_id, "members": result.members,
                   "registration": result.registration, "fetched": result.fetched, "verified": result.verified,
                   "license_id": result.license_id, "licensed_fetch": result.licensed_fetch,
                   "refusals": result.refusals, "clinic_registration": result.clinic_registration,
                   "valuation": result.valuation, "records": result.records,
                   "clock_advanced_seconds": result.clock_advanced, "epoch": result.epoch,
                   "split_proposal": result.split_proposal, "funding": result.funding, "claims": result.claims,
                   "pool": result.pool})
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
    for person, why in result.refusals.items():
        click.echo(f"  refused, {person}: {named(why, names)}")

    v = result.valuation
    click.echo(f"\nContribution metering, epoch {result.epoch.epoch}: datasets {reg.dataset_id} (hospital) and "
               f"{result.clinic_registration.dataset_id} (clinic), each attested by the cro after measuring again")
    click.echo(f"  pharma's valuation ({v.model} model, target {v.target}, {v.eval.rows} held-out rows): accuracy "
               f"{v.baseline_accuracy:.2f}% with no data, {v.grand_accuracy:.2f}% with both; Shapley values "
               + ", ".join(f"{who(p.provider, names)} {p.value:+.2f} points" for p in v.providers))
    table("Records", ("id", "member", "measure", "subject", "amount", "points", "attested by"),
          [(r.id, who(r.member, names), r.kind, r.subject_label if r.kind == "data" else r.subject_label[:18] + "...",
            r.amount, r.points, ", ".join(who(a, names) for a in r.attesters)) for r in result.records])
    click.echo(f"The demo advanced the development chain's clock by {result.clock_advanced} s (time travel) to end the "
               f"epoch and its dispute window, then finalized it:")
    show_epoch(result.epoch)
    _show_distribution(result, names)
    secret = "the password in FULLCHAIN_PASSWORD" if result.password_from_env else f"the demo password '{DEMO_PASSWORD}'"
    click.echo(f"\nState is in {result.home}; the profiles {', '.join(result.profiles)} are protected by {secret}.")
    click.echo(f"Try: fullchain --profile hospital member list   (the demo took {time.monotonic() - started:.0f} s)")


def _show_distribution(result, names: dict[str, str]) -> None:  # noqa: ANN001 (a DemoResult)
    from fullchain.distribution import format_amount

    pool, token = result.pool, result.pool.token
    click.echo(f"\nBenefit distribution, epoch {pool.epoch}: the governors voted (proposal {result.split_proposal}) that "
               f"the operations share goes to the cro; pharma funded the pool with "
               f"{format_amount(result.funding.amount, token.decimals, token.symbol)} in one transaction (EIP-2612 permit)")
    for name, claim in result.claims.items():
        click.echo(f"  {name} claimed {format_amount(claim.total, token.decimals, token.symbol)}")
    show_pool(pool)
