"""Consortium contract behaviour, run on the embedded chain and on anvil (the `chain` fixture).

Every restricted function is called by someone not entitled to it and must revert with the
named custom error, decoded the same way on both backends.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import pytest
from web3.logs import DISCARD

from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.contracts import CONSORTIUM, deploy_contract
from fullchain.errors import InvalidInput, TransactionReverted
from fullchain.models import Role

from .conftest import DEMO_PASSWORD, run_cli

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


def raw(client: ConsortiumClient, fn: str, *args: object):  # noqa: ANN201
    """Call the contract directly, past the SDK's own checks, to see what the contract enforces."""
    return client._tx.call_function(getattr(client.contract.functions, fn)(*args), contract="Consortium")


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


def test_only_32_byte_x25519_keys_are_accepted(c: Setup) -> None:
    # The contract: at rotation and at admission (proposal and execution), every other length.
    for length in (0, 1, 31, 33, 64, 1216):
        bad = b"\x01" * length
        err = reverts("ConsortiumInvalidPublicKey", raw, c.hospital, "rotateKey", bad)
        assert err.error_args == {"length": length}
        reverts("ConsortiumInvalidPublicKey", raw, c.gov1, "proposeAdmit", c.newcomer._tx.address, int(Role.CRO),
                bad, ZERO32)
    good = key()
    raw(c.hospital, "rotateKey", good)
    assert c.gov1.member(c.hospital._tx.address).hpke_public_key == "0x" + good.hex()
    # The SDK says so before any transaction, naming the length and the fix.
    with pytest.raises(InvalidInput, match="is 31 bytes; an X25519 public key is 32"):
        c.hospital.rotate_key(b"\x01" * 31)
    with pytest.raises(InvalidInput, match="is 33 bytes"):
        c.gov1.propose_admit(c.newcomer._tx.address, Role.CRO, b"\x01" * 33)
    assert c.gov1.member(c.hospital._tx.address).hpke_public_key == "0x" + good.hex()
    assert c.gov1.contract.functions.proposalCount().call() == 0


def test_constructor_refuses_malformed_founder_keys(chain) -> None:  # noqa: ANN001
    acct, tx = chain.account()
    with pytest.raises(TransactionReverted) as info:
        deploy_contract(tx, chain.w3, CONSORTIUM, [acct.address], [int(Role.GOVERNOR)], [b"\x01" * 31], [ZERO32], 1,
                        3600)
    assert info.value.error_name == "ConsortiumInvalidPublicKey" and info.value.error_args == {"length": 31}
    with pytest.raises(InvalidInput, match="founder"):
        deploy_consortium(tx, chain.w3, [Founder(acct.address, Role.GOVERNOR, b"\x01" * 1216)], threshold=1)


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
    reverts("ConsortiumInvalidPublicKey", raw, c.gov1, "proposeAdmit", c.newcomer._tx.address, int(Role.CRO), b"",
            ZERO32)
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
    s = deploy(chain, voting_period=60)  # the shortest voting period accepted
    pid = s.gov1.propose_threshold(1)
    chain.advance_time(61)
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


# ---- voting period (issue 7 item 8) ----

def test_voting_period_is_bounded_at_deployment(chain) -> None:  # noqa: ANN001
    acct, tx = chain.account()
    args = ([acct.address], [int(Role.GOVERNOR)], [key()], [ZERO32], 1)
    for period in (0, 59, 365 * 86400 + 1, 2**64 - 1):  # 2**64-1 made every propose() panic
        with pytest.raises(TransactionReverted) as info:
            deploy_contract(tx, chain.w3, CONSORTIUM, *args, period)
        assert info.value.error_name == "ConsortiumInvalidVotingPeriod"
        assert info.value.error_args == {"votingPeriod": period, "min": 60, "max": 365 * 86400}
    founders = [Founder(acct.address, Role.GOVERNOR, key())]
    for period in (0, 2**64 - 1):
        with pytest.raises(InvalidInput, match="voting period"):
            deploy_consortium(tx, chain.w3, founders, threshold=1, voting_period=period)
    for period in (60, 365 * 86400):  # both bounds are accepted, and proposing works
        address, _ = deploy_consortium(tx, chain.w3, founders, threshold=1, voting_period=period)
        client = ConsortiumClient(chain.w3, address, tx)
        assert client.voting_period() == period
        pid = client.propose_threshold(1)
        p = client.proposal(pid)
        assert (p.deadline - p.created_at).total_seconds() == period


def test_voting_period_changes_by_proposal(c: Setup) -> None:
    before = c.gov1.proposal(c.gov1.propose_threshold(1))
    assert (before.deadline - before.created_at).total_seconds() == 3600
    pid = c.gov1.propose_voting_period(2 * 86400)
    assert c.gov1.proposal(pid).kind == "set_voting_period"
    assert c.gov1.proposal(pid).details == {"voting_period": 2 * 86400}
    c.gov2.approve(pid)
    receipt = raw(c.gov1, "execute", pid)
    changed = c.gov1.contract.events.VotingPeriodChanged().process_receipt(receipt, errors=DISCARD)
    assert [dict(e["args"]) for e in changed] == [{"oldPeriod": 3600, "newPeriod": 2 * 86400, "proposalId": pid}]
    assert c.gov1.voting_period() == 2 * 86400
    after = c.gov1.proposal(c.gov1.propose_threshold(1))
    assert (after.deadline - after.created_at).total_seconds() == 2 * 86400
    # an open proposal keeps the deadline it was created with
    assert c.gov1.proposal(before.id).deadline == before.deadline
    # out of bounds: refused by the contract at proposal (and again at execution) and by the SDK
    for period in (0, 59, 365 * 86400 + 1, 2**64 - 1):
        err = reverts("ConsortiumInvalidVotingPeriod", raw, c.hospital, "proposeVotingPeriod", period)
        assert err.error_args["votingPeriod"] == period
        with pytest.raises(InvalidInput, match="voting period"):
            c.hospital.propose_voting_period(period)
    reverts("ConsortiumNotMember", raw, c.stranger, "proposeVotingPeriod", 3600)


# ---- approvals and governor terms (issue 7 item 9, issue 13 item 4) ----

def _three_governors(c: Setup) -> str:
    """Promote the hospital to a third governor (threshold stays 2); returns its address."""
    c.passed(c.gov1.propose_roles(c.hospital._tx.address, Role.HOSPITAL | Role.GOVERNOR))
    return c.hospital._tx.address


def test_a_demoted_governors_approval_cannot_reach_the_threshold(c: Setup) -> None:
    third = _three_governors(c)
    target = c.gov1.propose_threshold(1)  # gov1's approval: 1 of 2
    c.hospital.approve(target)  # the approval that would reach the threshold
    assert c.gov1.proposal(target).approvals == 2
    c.passed(c.gov1.propose_roles(third, Role.HOSPITAL))  # demoted since
    assert not c.gov1.has_approved(target, third)
    assert c.gov1.proposal(target).approvals == 1
    err = reverts("ConsortiumNotEnoughApprovals", c.gov1.execute, target)
    assert err.error_args == {"proposalId": target, "approvals": 1, "threshold": 2}
    assert c.gov1.threshold() == 2 and c.gov1.proposal(target).status == "pending"  # nothing applied

    # promoted again: the approval of the earlier term still does not count...
    c.passed(c.gov1.propose_roles(third, Role.HOSPITAL | Role.GOVERNOR))
    assert not c.gov1.has_approved(target, third) and c.gov1.proposal(target).approvals == 1
    reverts("ConsortiumNotEnoughApprovals", c.gov1.execute, target)
    assert c.gov1.threshold() == 2
    # ...until it approves again in its new term (once: it is listed once, never counted twice)
    c.hospital.approve(target)
    reverts("ConsortiumAlreadyApproved", c.hospital.approve, target)
    assert c.gov1.has_approved(target, third) and c.gov1.proposal(target).approvals == 2
    c.gov1.execute(target)
    assert c.gov1.threshold() == 1


def test_a_readmitted_governors_old_approval_does_not_count(c: Setup) -> None:
    third = _three_governors(c)
    target = c.gov1.propose_threshold(3)
    c.hospital.approve(target)
    c.passed(c.gov1.propose_remove(third))
    c.passed(c.gov1.propose_admit(third, Role.HOSPITAL | Role.GOVERNOR, key()))
    assert c.gov1.member(third).status == "active" and not c.gov1.has_approved(target, third)
    reverts("ConsortiumNotEnoughApprovals", c.gov1.execute, target)
    assert c.gov1.threshold() == 2


def test_a_removed_proposer_cannot_cancel(c: Setup) -> None:
    proposer = c.hospital._tx.address
    pid = c.hospital.propose_threshold(1)
    c.gov2.approve(pid)  # approved, on its way
    c.passed(c.gov1.propose_remove(proposer))
    err = reverts("ConsortiumNotMember", c.hospital.cancel, pid)
    assert err.error_args == {"account": proposer}
    # admitted again, it is a new membership, not the one that proposed
    c.passed(c.gov1.propose_admit(proposer, Role.HOSPITAL, key()))
    err = reverts("ConsortiumNotProposer", c.hospital.cancel, pid)
    assert err.error_args == {"proposalId": pid, "caller": proposer}
    assert c.gov1.proposal(pid).status == "pending"
    c.gov1.approve(pid)
    c.gov1.execute(pid)  # the proposal itself stands on its approvals
    assert c.gov1.threshold() == 1
    own = c.hospital.propose_threshold(1)  # its proposals of the new membership are its own
    c.hospital.cancel(own)
    assert c.gov1.proposal(own).status == "cancelled"


def test_admissions_are_numbered(c: Setup) -> None:
    fn = c.gov1.contract.functions
    target = c.hospital._tx.address
    assert fn.activeAdmission(target).call() == 1
    assert fn.activeAdmission(c.stranger._tx.address).call() == 0
    c.passed(c.gov1.propose_remove(target))
    assert fn.activeAdmission(target).call() == 0
    c.passed(c.gov1.propose_admit(target, Role.HOSPITAL, key()))
    assert fn.activeAdmission(target).call() == 2
    _roles, status, _joined, admission, governor_term, _meta, _key = fn.member(target).call()
    assert (status, admission, governor_term) == (1, 2, 0)
    assert tuple(fn.member(c.gov1._tx.address).call()[3:5]) == (1, 1)


def test_cli_proposes_a_voting_period(home, demo_copy) -> None:  # noqa: ANN001
    pw = {"FULLCHAIN_PASSWORD": DEMO_PASSWORD}
    demo_copy(pw["FULLCHAIN_PASSWORD"])
    out = run_cli("-p", "hospital", "member", "propose", "voting-period", "2d", env=pw)
    assert out.returncode == 0, out.stderr
    assert "voting period 2d" in out.stdout
    pid = out.stdout.split(":")[0].split()[-1]
    assert run_cli("-p", "pharma", "member", "vote", pid, env=pw).returncode == 0
    done = run_cli("-p", "pharma", "member", "execute", pid, env=pw)
    assert done.returncode == 0, done.stderr
    assert "set the voting period to 2d" in done.stdout
    later = run_cli("-p", "hospital", "member", "propose", "threshold", "1", "--json", env=pw)
    shown = json.loads(run_cli("-p", "cro", "member", "proposals", "--json", env=pw).stdout)
    new = next(p for p in shown if p["id"] == json.loads(later.stdout)["proposal_id"])
    created, deadline = (datetime.fromisoformat(new[k]) for k in ("created_at", "deadline"))
    assert (deadline - created).total_seconds() == 2 * 86400
    for bad, words in (("400d", "outside 60 s .. 365 days"), ("30s", "outside"), ("soon", "is not a duration")):
        refused = run_cli("-p", "hospital", "member", "propose", "voting-period", bad, env=pw)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], refused.stderr
