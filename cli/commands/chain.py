from __future__ import annotations

import click

from fullchain.consortium import DEFAULT_VOTING_PERIOD, Founder
from fullchain.errors import InvalidInput
from fullchain.models import MeterParameters, Role
from fullchain.addresses import to_account, to_bytes_hex
from fullchain.profiles import load_profile

from ..context import common_options, connect
from ..output import emit_json, fields, is_json
from ..types import DURATION, THRESHOLD, BoundedInt

ATTESTATIONS = BoundedInt("number of attestations", 1, 32)


@click.group()
def chain() -> None:
    """Deploy the contracts and inspect the chain."""


@chain.command()
@common_options
@click.option("--founder", "founders", multiple=True, metavar="SPEC",
              help="A founding member: PROFILE:ROLES for a local profile, or ADDRESS:ROLES:HPKE_PUBLIC_KEY. "
                   "Repeat for each founder. Default: this profile as governor.")
@click.option("--threshold", type=THRESHOLD, default=None,
              help="Governor approvals needed per proposal (default: a majority of the founding governors).")
@click.option("--voting-period", type=DURATION, default=f"{DEFAULT_VOTING_PERIOD // 86400}d", show_default=True,
              help="How long a proposal stays open (e.g. 7d, 12h).")
@click.option("--epoch-length", type=DURATION, default="30d", show_default=True,
              help="ContributionMeter: length of a metering epoch (1m to 365d).")
@click.option("--dispute-window", type=DURATION, default="7d", show_default=True,
              help="ContributionMeter: how long after an epoch's end its records stay open to disputes.")
@click.option("--attestations", type=ATTESTATIONS, default=1, show_default=True,
              help="ContributionMeter: attestations a record needs to count.")
@click.option("--meter-only", is_flag=True,
              help="Only add a ContributionMeter and its BenefitDistributor to the deployment recorded for "
                   "this chain (one made before metering existed), governed by its Consortium.")
def deploy(founders: tuple[str, ...], threshold: int | None, voting_period: int, epoch_length: int,
           dispute_window: int, attestations: int, meter_only: bool) -> None:
    """Deploy the contracts: the Consortium with its founding members, the dataset registry,
    licensing and the contribution meter."""
    fc = connect()
    meter = MeterParameters(epoch_length=epoch_length, dispute_window=dispute_window, attestations=attestations)
    if meter_only:
        if founders or threshold is not None:
            raise click.UsageError("--meter-only deploys no Consortium: drop --founder and --threshold")
        deployment = fc.deploy_meter(meter)
        if is_json():
            emit_json(deployment)
            return
        fields([*deployment.contracts.items(), ("chain id", deployment.chain_id)])
        return
    specs = [_founder(fc.home, spec) for spec in founders] or [
        Founder(fc.address, Role.GOVERNOR, bytes.fromhex(fc.profile.hpke_public_key[2:]))]
    governors = sum(1 for f in specs if f.roles & Role.GOVERNOR)
    k = threshold if threshold is not None else governors // 2 + 1
    deployment = fc.deploy(specs, threshold=k, voting_period=voting_period, meter=meter)
    if is_json():
        emit_json(deployment)
        return
    fields([*deployment.contracts.items(), ("chain id", deployment.chain_id),
            ("block", deployment.block_number), ("founders", len(specs)), ("threshold", f"{k} of {governors}")])


def _founder(home, spec: str) -> Founder:  # noqa: ANN001
    parts = spec.split(":")
    if len(parts) == 2:
        config = load_profile(home, parts[0])
        return Founder(config.address, Role.parse(parts[1]), bytes.fromhex(config.hpke_public_key[2:]))
    if len(parts) == 3:
        return Founder(to_account(parts[0], what="founder"), Role.parse(parts[1]),
                       to_bytes_hex(parts[2], what="HPKE public key"))
    raise InvalidInput(f"founder '{spec}' is malformed",
                       hint="write PROFILE:ROLES (e.g. hospital:hospital,governor) or ADDRESS:ROLES:HPKE_PUBLIC_KEY")


@chain.command()
@common_options
def status() -> None:
    """Show the chain, the Consortium contract and this profile's standing."""
    fc = connect()
    s = fc.status()
    if is_json():
        emit_json(s)
        return
    # What a data steward needs: which chain, how far it is, the consortium, and where this
    # profile stands in it. Endpoint files, genesis hash, balances: --json.
    consortium = s.contracts.get("Consortium")
    membership = "not a member (give the governors your account and HPKE key from `fullchain init`)"
    if s.member is not None:
        membership = s.member.status if s.member.status != "active" else \
            f"active, roles: {', '.join(s.member.roles) or 'none'}"
    fields([
        ("chain", "embedded (on this machine)" if s.backend == "embedded" else f"node {s.endpoint}"),
        ("chain id", s.chain_id), ("block", s.block_number),
        ("consortium", consortium or "not deployed (run `fullchain chain deploy`)"),
        *([("members", f"{s.members} active; a proposal needs {s.threshold} of {s.governors} governors")]
          if consortium else []),
        ("profile", f"{fc.profile.name} ({s.account})"),
        ("membership", membership),
    ])
