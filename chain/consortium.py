"""Consortium membership and governance: members, k-of-n proposals, allowlists."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from eth_abi import decode as abi_decode
from web3 import Web3
from web3.logs import DISCARD

from .addresses import format_enode, parse_enode, to_account
from .contracts import CONSORTIUM, bind, deploy_contract
from .errors import InvalidInput
from .models import AllowedNode, Member, Proposal, ProposalKind, ProposalStatus, Role
from .transactions import Transactor

CONTRACT = CONSORTIUM
DEFAULT_VOTING_PERIOD = 7 * 24 * 3600
# The bounds Consortium enforces (MIN_VOTING_PERIOD, MAX_VOTING_PERIOD), checked here first so that
# a mistake gets a plain answer instead of a reverted transaction.
MIN_VOTING_PERIOD = 60
MAX_VOTING_PERIOD = 365 * 24 * 3600
# Data keys are wrapped with HPKE over X25519: a member's public key is exactly 32 bytes.
HPKE_PUBLIC_KEY_LENGTH = 32

_PAYLOAD_TYPES: dict[ProposalKind, tuple[list[str], list[str]]] = {
    ProposalKind.ADMIT_MEMBER: (["address", "uint32", "bytes", "bytes32"],
                                ["account", "roles", "hpke_public_key", "metadata_hash"]),
    ProposalKind.REMOVE_MEMBER: (["address"], ["account"]),
    ProposalKind.CHANGE_ROLES: (["address", "uint32"], ["account", "roles"]),
    ProposalKind.SET_THRESHOLD: (["uint256"], ["threshold"]),
    ProposalKind.ALLOW_ACCOUNT: (["address"], ["account"]),
    ProposalKind.DISALLOW_ACCOUNT: (["address"], ["account"]),
    ProposalKind.ALLOW_NODE: (["bytes", "string", "uint16"], ["public_key", "host", "port"]),
    ProposalKind.DISALLOW_NODE: (["bytes", "string", "uint16"], ["public_key", "host", "port"]),
    ProposalKind.SET_VOTING_PERIOD: (["uint64"], ["voting_period"]),
    ProposalKind.CALL: (["address", "bytes"], ["target", "data"]),
}


def check_hpke_public_key(key: bytes, *, who: str = "the member") -> None:
    """Refuse anything but a 32-byte X25519 public key: nobody could wrap a data key to it."""
    if len(key) != HPKE_PUBLIC_KEY_LENGTH:
        raise InvalidInput(f"the HPKE public key of {who} is {len(key)} bytes; an X25519 public key is "
                           f"{HPKE_PUBLIC_KEY_LENGTH}",
                           hint="give the 64 hex digits `fullchain init` printed as the profile's HPKE public key")


def check_voting_period(seconds: int) -> None:
    """Refuse a voting period outside the bounds the Consortium contract accepts."""
    if not MIN_VOTING_PERIOD <= seconds <= MAX_VOTING_PERIOD:
        raise InvalidInput(f"a voting period of {seconds} s is outside {MIN_VOTING_PERIOD} s .. 365 days",
                           hint="give a duration between 1m and 365d, e.g. 7d")


@dataclass(frozen=True)
class Founder:
    """A founding member, fixed at deployment."""

    account: str
    roles: Role
    hpke_public_key: bytes
    metadata_hash: bytes = b"\0" * 32


def deploy_consortium(tx: Transactor, w3: Web3, founders: Sequence[Founder], *, threshold: int,
                      voting_period: int = DEFAULT_VOTING_PERIOD) -> tuple[str, int]:
    """Deploy a Consortium; returns its address and the deployment block."""
    if not founders:
        raise InvalidInput("a consortium needs at least one founding member", hint="name founders with --founder")
    for f in founders:
        check_hpke_public_key(f.hpke_public_key, who=f"founder {f.account}")
    check_voting_period(voting_period)
    return deploy_contract(
        tx, w3, CONTRACT, [f.account for f in founders], [int(f.roles) for f in founders],
        [f.hpke_public_key for f in founders], [f.metadata_hash for f in founders], threshold, voting_period)


class ConsortiumClient:
    """Reads and governs one deployed Consortium; writes are signed by the transactor's account."""

    def __init__(self, w3: Web3, address: str, transactor: Transactor) -> None:
        self._w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = bind(w3, CONTRACT, address)
        self._tx = transactor

    # ---- members ----

    def members(self) -> list[Member]:
        accounts = self.contract.functions.memberAccounts().call()
        return [self.member(a) for a in accounts]

    def member(self, account: str) -> Member:
        account = to_account(account)
        return Member.from_chain(account, self.contract.functions.member(account).call())

    def has_roles(self, account: str, roles: Role) -> bool:
        return self.contract.functions.hasRoles(to_account(account), int(roles)).call()

    def threshold(self) -> int:
        return self.contract.functions.threshold().call()

    def governor_count(self) -> int:
        return self.contract.functions.governorCount().call()

    # ---- proposals ----

    def propose_admit(self, account: str, roles: Role, hpke_public_key: bytes,
                      metadata_hash: bytes = b"\0" * 32) -> int:
        check_hpke_public_key(hpke_public_key, who=str(account))
        fn = self.contract.functions.proposeAdmit(to_account(account), int(roles), hpke_public_key, metadata_hash)
        return self._proposal_id(fn)

    def propose_remove(self, account: str) -> int:
        return self._proposal_id(self.contract.functions.proposeRemove(to_account(account)))

    def propose_roles(self, account: str, roles: Role) -> int:
        return self._proposal_id(self.contract.functions.proposeRoles(to_account(account), int(roles)))

    def propose_threshold(self, threshold: int) -> int:
        return self._proposal_id(self.contract.functions.proposeThreshold(threshold))

    def propose_voting_period(self, seconds: int) -> int:
        """Propose how long later proposals stay open; open proposals keep their deadline."""
        check_voting_period(seconds)
        return self._proposal_id(self.contract.functions.proposeVotingPeriod(seconds))

    def voting_period(self) -> int:
        return self.contract.functions.votingPeriod().call()

    def propose_account(self, account: str, *, allowed: bool) -> int:
        return self._proposal_id(self.contract.functions.proposeAccountAllowlist(to_account(account), allowed))

    def propose_node(self, enode: str, *, allowed: bool) -> int:
        key, host, port = parse_enode(enode)
        return self._proposal_id(self.contract.functions.proposeNodeAllowlist(key, host, port, allowed))

    def propose_call(self, target: str, data: bytes) -> int:
        """Propose that the Consortium calls `target` (a contract it governs, such as the
        ContributionMeter) with the ABI-encoded `data`, once enough governors approved."""
        return self._proposal_id(self.contract.functions.proposeCall(to_account(target, what="call target"), data))

    def approve(self, proposal_id: int) -> None:
        self._tx.call_function(self.contract.functions.approve(proposal_id), contract=CONTRACT)

    def execute(self, proposal_id: int) -> None:
        self._tx.call_function(self.contract.functions.execute(proposal_id), contract=CONTRACT)

    def cancel(self, proposal_id: int) -> None:
        self._tx.call_function(self.contract.functions.cancel(proposal_id), contract=CONTRACT)

    def proposal(self, proposal_id: int) -> Proposal:
        raw = self.contract.functions.proposal(proposal_id).call()
        kind, status, proposer, created_at, deadline, approvals, _proposer_admission, payload = raw
        if status == ProposalStatus.NONE:
            raise InvalidInput(f"there is no proposal {proposal_id}",
                               hint="list them with `fullchain member proposals`")
        kind = ProposalKind(kind)
        label = ProposalStatus(status).name.lower()
        now = self._w3.eth.get_block("latest")["timestamp"]
        if status == ProposalStatus.PENDING and now > deadline:
            label = "expired"
        return Proposal(
            id=proposal_id, kind=kind.name.lower(), status=label, proposer=proposer,
            created_at=datetime.fromtimestamp(created_at, tz=timezone.utc),
            deadline=datetime.fromtimestamp(deadline, tz=timezone.utc),
            approvals=approvals, details=_decode_payload(kind, bytes(payload)),
        )

    def proposals(self) -> list[Proposal]:
        count = self.contract.functions.proposalCount().call()
        return [self.proposal(i) for i in range(1, count + 1)]

    def has_approved(self, proposal_id: int, account: str) -> bool:
        return self.contract.functions.hasApproved(proposal_id, to_account(account)).call()

    # ---- allowlists ----

    def allowed_accounts(self) -> list[str]:
        return list(self.contract.functions.allowedAccounts().call())

    def allowed_nodes(self) -> list[AllowedNode]:
        nodes = self.contract.functions.allowedNodes().call()
        return [AllowedNode(enode=format_enode(bytes(k), h, p), public_key="0x" + bytes(k).hex(), host=h, port=p)
                for k, h, p in nodes]

    # ---- self service ----

    def rotate_key(self, hpke_public_key: bytes) -> None:
        check_hpke_public_key(hpke_public_key, who=self._tx.address)
        self._tx.call_function(self.contract.functions.rotateKey(hpke_public_key), contract=CONTRACT)

    def _proposal_id(self, fn: Any) -> int:
        receipt = self._tx.call_function(fn, contract=CONTRACT)
        events = self.contract.events.ProposalCreated().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["proposalId"])


def _decode_payload(kind: ProposalKind, payload: bytes) -> dict[str, Any]:
    types, names = _PAYLOAD_TYPES[kind]
    values = {n: Web3.to_checksum_address(v) if t == "address" else v
              for n, t, v in zip(names, types, abi_decode(types, payload))}
    if "roles" in values:
        values["roles"] = Role(values["roles"]).names()
    for key in ("hpke_public_key", "metadata_hash", "data"):
        if key in values:
            values[key] = "0x" + bytes(values[key]).hex()
    if "public_key" in values:
        values["enode"] = format_enode(bytes(values["public_key"]), values["host"], values["port"])
        values["public_key"] = "0x" + bytes(values["public_key"]).hex()
    return values
