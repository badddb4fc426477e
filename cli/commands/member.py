from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import click

from fullchain.addresses import to_bytes_hex
from fullchain.durations import parse_duration
from fullchain.errors import InvalidInput
from fullchain.models import Member, Proposal, Role

from ..context import common_options, connect, view
from ..names import local_names, named, resolve
from ..output import emit_json, fields, is_json, table, to_jsonable
from ..types import PROPOSAL_ID, THRESHOLD

MEMBER_COLUMNS = ("account", "profile", "roles", "status", "joined")


def member_rows(members: Iterable[Member], names: dict[str, str]) -> list[tuple[str, ...]]:
    return [(m.account, names.get(m.account, ""), ", ".join(m.roles) or "-", m.status,
             m.joined_at.strftime("%Y-%m-%d %H:%M") if m.joined_at else "") for m in members]


@click.group()
def member() -> None:
    """Consortium members and their governance (k-of-n proposals)."""


@member.command("list")
@common_options
@click.option("--all", "show_all", is_flag=True, help="Include removed members.")
def list_(show_all: bool) -> None:
    """List the members."""
    v = view()
    members = v.index.members(status=None if show_all else "active")
    names = v.local_names()
    if is_json():
        emit_json([{**to_jsonable(m), "profile": names.get(m.account)} for m in members])
        return
    table(f"Members of {v.consortium_address}", MEMBER_COLUMNS, member_rows(members, names))


@member.command()
@common_options
@click.argument("account")
def show(account: str) -> None:
    """Show one member (ACCOUNT: an address or a local profile name)."""
    fc = connect()
    address, _ = resolve(fc.home, account)
    m = fc.consortium.member(address)
    if m.status == "none":
        raise InvalidInput(f"{address} is not a member of {fc.consortium.address}",
                           hint="list the members with `fullchain member list --all`")
    if is_json():
        emit_json(m)
        return
    fields([("account", m.account), ("profile", local_names().get(m.account, "-")), ("status", m.status),
            ("roles", ", ".join(m.roles) or "-"), ("joined", m.joined_at), ("hpke public key", m.hpke_public_key),
            ("metadata hash", m.metadata_hash)])


@member.command()
@common_options
@click.option("--pending", is_flag=True, help="Only proposals that can still be voted on.")
def proposals(pending: bool) -> None:
    """List governance proposals."""
    items = view().index.proposals(status="pending" if pending else None)
    if is_json():
        emit_json(items)
        return
    names = local_names()
    table("Proposals", ("id", "kind", "status", "approvals", "deadline", "details"),
          [(p.id, p.kind.replace("_", " "), p.status, p.approvals, p.deadline.strftime("%Y-%m-%d %H:%M"),
            describe(p, names)) for p in items])


def _details(p: Proposal) -> str:
    d = p.details
    if "enode" in d:
        return d["enode"]
    parts = [d.get("account", "")]
    if "roles" in d:
        parts.append(",".join(d["roles"]))
    if "threshold" in d:
        parts.append(f"k={d['threshold']}")
    if "voting_period" in d:
        parts.append(f"voting period {_duration_text(d['voting_period'])}")
    return " ".join(x for x in parts if x)


# A proposal in words (the kinds are the contract's enum names).
_INTENT = {"admit_member": "admit {account} as {roles}", "remove_member": "remove {account}",
           "change_roles": "set the roles of {account} to {roles}", "set_threshold": "set the threshold to {threshold}",
           "allow_account": "allow account {account}", "disallow_account": "disallow account {account}",
           "allow_node": "allow node {enode}", "disallow_node": "disallow node {enode}",
           "set_voting_period": "set the voting period to {voting_period}"}


def describe(p: Proposal, names: dict[str, str]) -> str:
    d = p.details
    values = {"account": d.get("account", ""), "roles": ", ".join(d.get("roles") or []) or "no roles",
              "threshold": d.get("threshold", ""), "enode": d.get("enode", ""),
              "voting_period": _duration_text(d["voting_period"]) if "voting_period" in d else ""}
    template = _INTENT.get(p.kind)
    text = template.format(**values) if template else f"{p.kind.replace('_', ' ')} {_details(p)}".strip()
    return named(text, names)


@member.group()
def propose() -> None:
    """Propose a change; governors then vote and anyone executes it."""


def _proposed(proposal_id: int, what: str) -> None:
    if is_json():
        emit_json({"proposal_id": proposal_id})
        return
    click.echo(f"proposal {proposal_id}: {named(what, local_names())}")
    click.echo(f"governors approve with `fullchain member vote {proposal_id}`; "
               f"then `fullchain member execute {proposal_id}`")


@propose.command()
@common_options
@click.argument("account")
@click.option("--roles", required=True, help="Comma-separated roles, e.g. pharma or hospital,governor.")
@click.option("--hpke-key", help="The candidate's HPKE public key (hex). Not needed for a local profile.")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The candidate's metadata document; only its SHA-256 goes on chain.")
def admit(account: str, roles: str, hpke_key: str | None, metadata_file: Path | None) -> None:
    """Propose to admit ACCOUNT (an address or a local profile name)."""
    fc = connect()
    address, profile = resolve(fc.home, account)
    if hpke_key is None and profile is not None:
        hpke_key = profile.hpke_public_key
    if hpke_key is None:
        raise InvalidInput(f"no HPKE public key for {address}",
                           hint="pass --hpke-key with the key the candidate's `fullchain init` printed")
    key = to_bytes_hex(hpke_key, what="HPKE public key")
    digest = hashlib.sha256(metadata_file.read_bytes()).digest() if metadata_file else b"\0" * 32
    role_bits = Role.parse(roles)
    pid = fc.consortium.propose_admit(address, role_bits, key, digest)
    _proposed(pid, f"admit {address} as {', '.join(role_bits.names())}")


@propose.command()
@common_options
@click.argument("account")
def remove(account: str) -> None:
    """Propose to remove the member ACCOUNT."""
    fc = connect()
    address, _ = resolve(fc.home, account)
    _proposed(fc.consortium.propose_remove(address), f"remove {address}")


@propose.command()
@common_options
@click.argument("account")
@click.option("--roles", required=True, help="The complete new set of roles, comma-separated.")
def roles(account: str, roles: str) -> None:
    """Propose to replace the roles of ACCOUNT."""
    fc = connect()
    address, _ = resolve(fc.home, account)
    role_bits = Role.parse(roles)
    _proposed(fc.consortium.propose_roles(address, role_bits), f"set roles of {address} to {', '.join(role_bits.names())}")


@propose.command()
@common_options
@click.argument("k", type=THRESHOLD)
def threshold(k: int) -> None:
    """Propose K as the number of governor approvals a proposal needs."""
    _proposed(connect().consortium.propose_threshold(k), f"threshold {k}")


@propose.command("voting-period")
@common_options
@click.argument("duration")
def voting_period(duration: str) -> None:
    """Propose DURATION (e.g. 3d, 12h) as how long later proposals stay open."""
    seconds = parse_duration(duration)
    _proposed(connect().consortium.propose_voting_period(seconds), f"voting period {_duration_text(seconds)}")


def _duration_text(seconds: int) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@propose.command("allow-account")
@common_options
@click.argument("account")
def allow_account(account: str) -> None:
    """Propose to add ACCOUNT to the account allowlist."""
    fc = connect()
    address, _ = resolve(fc.home, account)
    _proposed(fc.consortium.propose_account(address, allowed=True), f"allow account {address}")


@propose.command("disallow-account")
@common_options
@click.argument("account")
def disallow_account(account: str) -> None:
    """Propose to remove ACCOUNT from the account allowlist."""
    fc = connect()
    address, _ = resolve(fc.home, account)
    _proposed(fc.consortium.propose_account(address, allowed=False), f"disallow account {address}")


@propose.command("allow-node")
@common_options
@click.argument("enode")
def allow_node(enode: str) -> None:
    """Propose to add a node (enode://KEY@HOST:PORT) to the node allowlist."""
    _proposed(connect().consortium.propose_node(enode, allowed=True), f"allow node {enode}")


@propose.command("disallow-node")
@common_options
@click.argument("enode")
def disallow_node(enode: str) -> None:
    """Propose to remove a node (enode://KEY@HOST:PORT) from the node allowlist."""
    _proposed(connect().consortium.propose_node(enode, allowed=False), f"disallow node {enode}")


@member.command()
@common_options
@click.argument("proposal_id", type=PROPOSAL_ID)
def vote(proposal_id: int) -> None:
    """Approve proposal PROPOSAL_ID (governors only)."""
    fc = connect()
    fc.consortium.approve(proposal_id)
    p = fc.consortium.proposal(proposal_id)
    if is_json():
        emit_json(p)
        return
    needed = fc.consortium.threshold()
    click.echo(f"approved proposal {proposal_id} ({p.approvals} of {needed} approvals)")


@member.command()
@common_options
@click.argument("proposal_id", type=PROPOSAL_ID)
def execute(proposal_id: int) -> None:
    """Execute proposal PROPOSAL_ID once enough governors approved it."""
    fc = connect()
    fc.consortium.execute(proposal_id)
    p = fc.consortium.proposal(proposal_id)
    if is_json():
        emit_json(p)
        return
    click.echo(f"executed proposal {proposal_id}: {describe(p, local_names())}")


@member.command()
@common_options
@click.argument("proposal_id", type=PROPOSAL_ID)
def cancel(proposal_id: int) -> None:
    """Withdraw your own pending proposal PROPOSAL_ID."""
    fc = connect()
    fc.consortium.cancel(proposal_id)
    if is_json():
        emit_json(fc.consortium.proposal(proposal_id))
        return
    click.echo(f"cancelled proposal {proposal_id}")


@member.command()
@common_options
def allowlist() -> None:
    """Show the account and node allowlists (what node-config exports)."""
    fc = connect()
    accounts, nodes = fc.consortium.allowed_accounts(), fc.consortium.allowed_nodes()
    if is_json():
        emit_json({"accounts": accounts, "nodes": nodes})
        return
    table("Allowed accounts", ("account",), [(a,) for a in accounts])
    table("Allowed nodes", ("enode",), [(n.enode,) for n in nodes])
