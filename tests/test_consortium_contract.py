"""Consortium contract behaviour, run on the embedded chain and on anvil (the `chain` fixture).

Every restricted function is called by someone not entitled to it and must revert with the
named custom error, decoded the same way on both backends.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from web3.logs import DISCARD

from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.errors import TransactionReverted
from fullchain.models import Role

ZERO32 = b"\0" * 32


def key() -> bytes:
    return secrets.token_bytes(32)


@dataclass
class Setup:
    gov1: ConsortiumClient
    gov2: ConsortiumClient
    hospital: ConsortiumClient  # a member without the governor role
    stranger: ConsortiumClient
    newcomer: ConsortiumClient  # funded, not a member yet
    address: str

    def passed(self, proposal_id: int) -> None:
        """Second governor approves, then the proposal is executed."""
        self.gov2.approve(proposal_id)
        self.gov1.execute(proposal_id)


def deploy(chain, *, voting_period: int = 3600) -> Setup:  # noqa: ANN001
    actors = {name: chain.account() for name in ("gov1", "gov2", "hospital", "stranger", "newcomer")}
    founders = [
        Founder(actors["gov1"][0].address, Role.GOVERNOR | Role.HOSPITAL, key()),
        Founder(actors["gov2"][0].address, Role.GOVERNOR | Role.PHARMA, key()),
        Founder(actors["hospital"][0].address, Role.HOSPITAL, key()),
    ]
    address, _ = deploy_consortium(actors["gov1"][1], chain.w3, founders, threshold=2, voting_period=voting_period)
    clients = {name: ConsortiumClient(chain.w3, address, tx) for name, (_, tx) in actors.items()}
    return Setup(address=address, **clients)


@pytest.fixture
def c(chain) -> Setup:  # noqa: ANN001
    return deploy(chain)


def reverts(error: str, call, *args, **kwargs) -> TransactionReverted:  # noqa: ANN001
    with pytest.raises(TransactionReverted) as info:
        call(*args, **kwargs)
    assert info.value.error_name == error, info.value
    return info.value


def test_founders_are_members_with_their_roles(c: Setup) -> None:
    members = {m.account: m for m in c.gov1.members()}
    assert members[c.gov1._tx.address].roles == ["hospital", "governor"]
    assert members[c.hospital._tx.address].roles == ["hospital"]
    assert all(m.status == "active" for m in members.values())
    assert c.gov1.threshold() == 2 and c.gov1.governor_count() == 2
    assert set(c.gov1.allowed_accounts()) == set(members)


def test_admission_needs_k_of_n_governors(c: Setup) -> None:
    newcomer = c.newcomer._tx.address
    pid = c.gov1.propose_admit(newcomer, Role.CRO, key())
    assert c.gov1.proposal(pid).approvals == 1  # the proposing governor counts
    err = reverts("ConsortiumNotEnoughApprovals", c.gov1.execute, pid)
    assert err.error_args == {"proposalId": pid, "approvals": 1, "threshold": 2}
    c.passed(pid)
    assert c.gov1.member(newcomer).status == "active"
    assert c.gov1.member(newcomer).roles == ["cro"]
    assert c.gov1.proposal(pid).status == "executed"
    reverts("ConsortiumProposalNotPending", c.gov1.execute, pid)


def test_non_members_cannot_propose(c: Setup) -> None:
    who = c.stranger._tx.address
    for call, args in [
        (c.stranger.propose_admit, (c.newcomer._tx.address, Role.CRO, key())),
        (c.stranger.propose_remove, (c.hospital._tx.address,)),
        (c.stranger.propose_roles, (c.hospital._tx.address, Role.PHARMA)),
        (c.stranger.propose_threshold, (1,)),
    ]:
        err = reverts("ConsortiumNotMember", call, *args)
        assert err.error_args == {"account": who}
    reverts("ConsortiumNotMember", c.stranger.propose_account, c.newcomer._tx.address, allowed=True)
    reverts("ConsortiumNotMember", c.stranger.propose_node, "enode://" + "ab" * 64 + "@10.0.0.1:30303", allowed=True)


def test_only_governors_approve(c: Setup) -> None:
    pid = c.gov1.propose_threshold(1)
    err = reverts("ConsortiumNotGovernor", c.hospital.approve, pid)
    assert err.error_args == {"account": c.hospital._tx.address}
    reverts("ConsortiumNotGovernor", c.stranger.approve, pid)
    reverts("ConsortiumAlreadyApproved", c.gov1.approve, pid)


def test_only_the_proposer_cancels(c: Setup) -> None:
    pid = c.hospital.propose_threshold(1)
    assert c.hospital.proposal(pid).approvals == 0  # a non-governor's proposal starts unapproved
    reverts("ConsortiumNotProposer", c.gov1.cancel, pid)
    reverts("ConsortiumNotProposer", c.stranger.cancel, pid)
    c.hospital.cancel(pid)
    assert c.gov1.proposal(pid).status == "cancelled"
    reverts("ConsortiumProposalNotPending", c.gov2.approve, pid)
    reverts("ConsortiumUnknownProposal", c.gov1.cancel, 999)


def test_self_service_is_for_members_only(c: Setup) -> None:
    reverts("ConsortiumNotMember", c.stranger.rotate_key, key())
    with pytest.raises(TransactionReverted) as info:
        c.stranger._tx.call_function(c.stranger.contract.functions.updateMetadata(ZERO32), contract="Consortium")
    assert info.value.error_name == "ConsortiumNotMember"
    new_key = key()
    c.hospital.rotate_key(new_key)
    assert c.gov1.member(c.hospital._tx.address).hpke_public_key == "0x" + new_key.hex()
    reverts("ConsortiumInvalidPublicKey", c.hospital.rotate_key, b"")


def test_removed_member_loses_rights_and_allowlisting(c: Setup) -> None:
    target = c.hospital._tx.address
    pid = c.gov1.propose_remove(target)
    c.passed(pid)
    assert c.gov1.member(target).status == "removed"
    assert target not in c.gov1.allowed_accounts()
    reverts("ConsortiumNotMember", c.hospital.propose_threshold, 1)
    reverts("ConsortiumNotMember", c.hospital.rotate_key, key())
    # ...and can be admitted again by vote, once, without a duplicate in the member list.
    pid = c.gov1.propose_admit(target, Role.HOSPITAL, key())
    c.passed(pid)
    assert [m.account for m in c.gov1.members()].count(target) == 1


def test_governance_cannot_lock_itself_out(c: Setup) -> None:
    # 2 governors, threshold 2: removing or demoting one would leave governance frozen.
    pid = c.gov1.propose_roles(c.gov2._tx.address, Role.PHARMA)
    c.gov2.approve(pid)
    err = reverts("ConsortiumInvalidThreshold", c.gov1.execute, pid)
    assert err.error_args == {"threshold": 2, "governors": 1}
    reverts("ConsortiumInvalidThreshold", c.gov1.propose_threshold, 3)
    reverts("ConsortiumInvalidThreshold", c.gov1.propose_threshold, 0)
    pid = c.gov1.propose_threshold(1)
    c.passed(pid)
    assert c.gov1.threshold() == 1


def test_approvals_of_demoted_governors_do_not_count(c: Setup) -> None:
    # A third governor, then threshold 2 of 3.
    pid = c.gov1.propose_roles(c.hospital._tx.address, Role.HOSPITAL | Role.GOVERNOR)
    c.passed(pid)
    pending = c.hospital.propose_threshold(3)  # approved by hospital (now a governor)
    demote = c.gov1.propose_roles(c.hospital._tx.address, Role.HOSPITAL)
    c.passed(demote)
    err = reverts("ConsortiumNotEnoughApprovals", c.gov1.execute, pending)
    assert err.error_args["approvals"] == 0


def test_invalid_proposals_are_refused_up_front(c: Setup) -> None:
    reverts("ConsortiumAlreadyMember", c.gov1.propose_admit, c.hospital._tx.address, Role.CRO, key())
    reverts("ConsortiumInvalidRoles", c.gov1.propose_admit, c.newcomer._tx.address, Role(1 << 8), key())
    reverts("ConsortiumInvalidPublicKey", c.gov1.propose_admit, c.newcomer._tx.address, Role.CRO, b"")
    reverts("ConsortiumNotMember", c.gov1.propose_remove, c.stranger._tx.address)
    reverts("ConsortiumAccountAlreadyAllowed", c.gov1.propose_account, c.hospital._tx.address, allowed=True)
    reverts("ConsortiumAccountNotAllowed", c.gov1.propose_account, c.stranger._tx.address, allowed=False)
    reverts("ConsortiumUnknownProposal", c.gov2.approve, 4242)


def test_account_and_node_allowlists(c: Setup) -> None:
    outsider = c.stranger._tx.address
    c.passed(c.gov1.propose_account(outsider, allowed=True))
    assert outsider in c.gov1.allowed_accounts()
    enode = "enode://" + "cd" * 64 + "@10.1.2.3:30303"
    c.passed(c.gov1.propose_node(enode, allowed=True))
    nodes = c.gov1.allowed_nodes()
    assert [(n.enode, n.host, n.port) for n in nodes] == [(enode, "10.1.2.3", 30303)]
    reverts("ConsortiumNodeAlreadyAllowed", c.gov1.propose_node, enode, allowed=True)
    c.passed(c.gov1.propose_node(enode, allowed=False))
    assert c.gov1.allowed_nodes() == []
    c.passed(c.gov1.propose_account(outsider, allowed=False))
    assert outsider not in c.gov1.allowed_accounts()


def test_expired_proposals_cannot_pass(chain) -> None:  # noqa: ANN001
    s = deploy(chain, voting_period=1)
    pid = s.gov1.propose_threshold(1)
    chain.advance_time(2)
    assert s.gov1.proposal(pid).status == "expired"
    reverts("ConsortiumProposalExpired", s.gov2.approve, pid)


def test_every_change_emits_an_event(c: Setup) -> None:
    contract = c.gov1.contract
    pid = c.gov1.propose_admit(c.newcomer._tx.address, Role.CRO, key())
    c.gov2.approve(pid)
    receipt = c.gov1._tx.call_function(contract.functions.execute(pid), contract="Consortium")
    admitted = contract.events.MemberAdmitted().process_receipt(receipt, errors=DISCARD)
    assert admitted[0]["args"]["account"] == c.newcomer._tx.address
    assert admitted[0]["args"]["proposalId"] == pid
    assert contract.events.ProposalExecuted().process_receipt(receipt, errors=DISCARD)[0]["args"]["proposalId"] == pid
    assert contract.events.AccountAllowlisted().process_receipt(receipt, errors=DISCARD)[0]["args"]["account"] == c.newcomer._tx.address


def test_constructor_rejects_inconsistent_founders(chain) -> None:  # noqa: ANN001
    acct, tx = chain.account()
    with pytest.raises(TransactionReverted) as info:
        deploy_consortium(tx, chain.w3, [Founder(acct.address, Role.HOSPITAL, key())], threshold=1)
    assert info.value.error_name == "ConsortiumInvalidThreshold"  # no governor among the founders
    assert info.value.error_args == {"threshold": 1, "governors": 0}
