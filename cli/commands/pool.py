"""`fullchain pool`: benefit distribution. Fund an epoch's pool, see who is owed what, claim your
share; the split and sweeps go through governance proposals. Amounts are typed and printed in
the token's units (12.5 FCS); `--json` gives base units as strings."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..context import common_options, connect
from ..names import local_names, named, resolve, who
from ..output import emit_json, fields, is_json, table
from ..types import BoundedInt

if TYPE_CHECKING:
    from fullchain.distribution import PoolView, TokenInfo

EPOCH = BoundedInt("epoch", 0, 2**64 - 1)
BPS = BoundedInt("basis points", 0, 10_000)
TOKEN_HELP = "The ERC-20 token's address (default: the deployment's settlement token)."
# The parts of an account's share, in the order the table shows them.
PARTS = ("data", "algorithm", "compute", "patient", "operations")


def _amount(units: int, token: TokenInfo) -> str:
    from fullchain.distribution import format_amount

    return format_amount(units, token.decimals, token.symbol)


def _when(moment) -> str:  # noqa: ANN001
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "-"


@click.group()
def pool() -> None:
    """Benefit distribution: fund epochs' pools, claim shares, split and sweep by vote."""


@pool.command()
@common_options
@click.argument("epoch", type=EPOCH)
@click.argument("amount")
@click.option("--token", help=TOKEN_HELP)
def fund(epoch: int, amount: str, token: str | None) -> None:
    """Put AMOUNT (in the token's units: 12.5, not base units) into EPOCH's pool."""
    result = connect().pool.fund(epoch, amount, token)
    if is_json():
        emit_json(result)
        return
    how = "one transaction with a signed permit" if result.permit else f"{len(result.transactions)} transaction(s)"
    click.echo(f"funded epoch {epoch} with {_amount(result.amount, result.token)} ({how})")


def show_pool(v: PoolView) -> None:
    """An epoch's pool for people: figures, each account's share, and the balance line."""
    names = local_names()
    t = v.token
    split = v.split
    split_text = "-" if split is None else (
        f"operations {split.operations_bps / 100:.2f}% ({who(split.operations, names)}), "
        f"patients {split.patients_bps / 100:.2f}%, data {split.data_bps / 100:.2f}%, "
        f"algorithm {split.algorithm_bps / 100:.2f}%, compute {split.compute_bps / 100:.2f}%"
        + ("" if v.split_fixed else " (current; fixed at the first funding)"))
    fields([("epoch", v.epoch), ("token", f"{t.symbol} ({t.name}, {t.address})"), ("state", v.state),
            ("finalized", _when(v.finalized_at)), ("claims until", _when(v.claim_deadline)), ("split", split_text),
            ("deposited", _amount(v.deposited, t)),
            *((f"  from {who(d.funder, names) if not d.sweep else 'a sweep'}", _amount(d.amount, t))
              for d in v.deposits),
            ("budgets", ", ".join(f"{part} {_amount(b, t)}" for part, b in v.budgets.items())),
            ("points", ", ".join(f"{part} {total}" for part, total in v.totals.items())),
            *([("swept", f"{_amount(v.swept, t)} to epoch {v.swept_to}")] if v.swept_to is not None else [])])
    from fullchain.distribution import format_amount

    def units(amount: int) -> str:  # the table's title names the token once
        return format_amount(amount, t.decimals)

    table(f"Shares ({t.symbol})", ("account", *PARTS, "entitled", "claimed", "claimable"),
          [(who(a.account, names), *(units(a.parts[p]) if p in a.parts else "" for p in PARTS),
            units(a.entitled), units(a.claimed), units(a.claimable)) for a in v.accounts])
    swept = f" + swept {_amount(v.swept, t)}" if v.swept else ""
    click.echo(f"balance: deposits {_amount(v.deposited, t)} = claims {_amount(v.claimed, t)} + remaining "
               f"{_amount(v.claimable, t)}{swept} + dust {_amount(v.dust, t)}")


@pool.command()
@common_options
@click.argument("epoch", type=EPOCH)
@click.option("--token", help=TOKEN_HELP)
def show(epoch: int, token: str | None) -> None:
    """EPOCH's pool: deposits, split, budgets, and each account's share, claims and what it may still claim."""
    v = connect().pool.show(epoch, token)
    if is_json():
        emit_json(v)
        return
    show_pool(v)


@pool.command()
@common_options
@click.argument("epochs", nargs=-1, type=EPOCH)
@click.option("--token", help=TOKEN_HELP)
def claim(epochs: tuple[int, ...], token: str | None) -> None:
    """Claim your share of EPOCHS (default: every final epoch where something is due to you)."""
    result = connect().pool.claim(list(epochs), token)
    if is_json():
        emit_json(result)
        return
    for epoch, paid in sorted(result.paid.items()):
        click.echo(f"claimed {_amount(paid, result.token)} from epoch {epoch}")
    if len(result.paid) > 1:
        click.echo(f"total {_amount(result.total, result.token)}")


@pool.group()
def split() -> None:
    """The split of pools into operations, patients and the three dimensions (governance)."""


@split.command("propose")
@common_options
@click.option("--operations", "operations", required=True,
              help="Who is paid the operations part (a local profile name or an address).")
@click.option("--operations-bps", type=BPS, required=True, help="Operations part, basis points (1000 = 10%).")
@click.option("--patients-bps", type=BPS, required=True, help="Patients' part, basis points.")
@click.option("--data-bps", type=BPS, required=True, help="Data dimension's part, basis points.")
@click.option("--algorithm-bps", type=BPS, required=True, help="Algorithm dimension's part, basis points.")
@click.option("--compute-bps", type=BPS, required=True, help="Compute dimension's part, basis points.")
def split_propose(operations: str, operations_bps: int, patients_bps: int, data_bps: int, algorithm_bps: int,
                  compute_bps: int) -> None:
    """Propose a new split (the five parts add up to 10000); it applies to epochs not yet funded."""
    from fullchain.distribution import make_split

    fc = connect()
    s = make_split(resolve(fc.home, operations, what="operations account")[0], operations_bps=operations_bps,
                   patients_bps=patients_bps, data_bps=data_bps, algorithm_bps=algorithm_bps, compute_bps=compute_bps)
    pid = fc.pool.propose_split(s)
    if is_json():
        emit_json({"proposal_id": pid, "split": s})
        return
    _proposed(pid, f"split operations {operations_bps / 100:.2f}% ({s.operations}), patients "
                   f"{patients_bps / 100:.2f}%, data {data_bps / 100:.2f}%, algorithm {algorithm_bps / 100:.2f}%, "
                   f"compute {compute_bps / 100:.2f}%")


@pool.command()
@common_options
@click.argument("epoch", type=EPOCH)
@click.option("--to", "to_epoch", type=EPOCH, required=True, help="The later, not yet final, epoch to move it to.")
@click.option("--token", help=TOKEN_HELP)
def sweep(epoch: int, to_epoch: int, token: str | None) -> None:
    """Propose moving what is left in EPOCH's pool after its claim deadline into a later epoch's pool."""
    pid = connect().pool.propose_sweep(epoch, to_epoch, token)
    if is_json():
        emit_json({"proposal_id": pid, "epoch": epoch, "to_epoch": to_epoch})
        return
    _proposed(pid, f"sweep what is left of epoch {epoch}'s pool into epoch {to_epoch}")


def _proposed(pid: int, what: str) -> None:
    click.echo(f"proposal {pid}: {named(what, local_names())}")
    click.echo(f"governors approve with `fullchain member vote {pid}`; then `fullchain member execute {pid}`")


@pool.command()
@common_options
@click.argument("to")
@click.argument("amount")
def mint(to: str, amount: str) -> None:
    """Mint AMOUNT settlement tokens to TO (a profile name or an address): governors, development chains only."""
    fc = connect()
    result = fc.pool.mint(resolve(fc.home, to, what="recipient")[0], amount)
    if is_json():
        emit_json(result)
        return
    names = local_names()
    click.echo(f"minted {_amount(result.amount, result.token)} to {who(result.to, names)}; it holds "
               f"{_amount(result.balance, result.token)}")
