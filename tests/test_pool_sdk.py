"""Benefit distribution through the SDK (`fc.pool`), on the embedded chain end to end: a metering
epoch with points in the three dimensions and a patient's consented dataset, finalized; then
funding, the pool view read from the event index (compared with the contract's own figures for
every account), claims, refusals that say why, and a sweep after the claim deadline."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import fullchain
from fullchain.contracts import SETTLEMENT_TOKEN
from fullchain.distribution import (
    NothingToClaim,
    PoolClient,
    budgets,
    format_amount,
    make_split,
    parse_amount,
)
from fullchain.errors import InvalidInput, TransactionReverted
from fullchain.metadata import build_metadata
from fullchain.metering.meter import dataset_subject, digest_subject
from fullchain.models import MeterParameters, Role

PW = "pool-sdk-tests"
EPOCH_LENGTH = 60
WINDOW = 60
ROLES = {"hospital": Role.HOSPITAL, "clinic": Role.HOSPITAL, "pharma": Role.PHARMA | Role.GOVERNOR,
         "cro": Role.CRO | Role.ATTESTER, "patient": Role.PATIENT}
# Points of the epoch (amount = points at the default weights): data of hospital's consented
# dataset and of the clinic's, algorithm of both, compute of pharma's jobs.
CONTRIBUTIONS = (("hospital", "data", 40), ("clinic", "data", 25), ("hospital", "algorithm", 800),
                 ("clinic", "algorithm", 301), ("pharma", "gpu", 7200))


@dataclass
class World:
    fcs: dict[str, fullchain.Fullchain]
    epoch: int  # finalized, with points in every dimension and a patient's
    dataset_id: int  # hospital's dataset, consent required for the patient

    def __getitem__(self, name: str) -> fullchain.Fullchain:
        return self.fcs[name]


def travel(fc: fullchain.Fullchain, moment: int) -> None:
    """Move the chain's clock to `moment` (the development chains' time travel)."""
    if fc.connection.kind == "embedded":
        answer = fc.w3.provider.make_request("testing_timeTravel", [moment])
    else:
        answer = fc.w3.provider.make_request("evm_setNextBlockTimestamp", [moment])
    assert not answer.get("error"), answer
    fc.transactor.transfer(fc.address, 0)  # a block at the new time


def build_world(home: Path, *, chain: str = "embedded", fund_accounts=None) -> World:  # noqa: ANN001
    """hospital and clinic (hospitals), pharma (the governor, threshold 1), cro (attester) and a
    patient; one finalized epoch with points in every dimension."""
    names = tuple(ROLES)
    for name in names:
        fullchain.init(name, home=home, password=PW, chain=chain)
    fcs = {name: fullchain.connect(name, home=home, password=PW) for name in names}
    if fund_accounts is not None:
        fund_accounts([fc.address for fc in fcs.values()])
    founders = [fullchain.Founder(fcs[n].address, ROLES[n], bytes.fromhex(fcs[n].profile.hpke_public_key[2:]))
                for n in ROLES]
    fcs["pharma"].deploy(founders, threshold=1,
                         meter=MeterParameters(epoch_length=EPOCH_LENGTH, dispute_window=WINDOW))
    hospital, cro = fcs["hospital"], fcs["cro"]
    table = home / "trial.csv"
    table.write_text("STUDYID,USUBJID,AGE,SEX\n" + "".join(f"S1,S1-{i:03},{40 + i % 30},{'MF'[i % 2]}\n"
                                                           for i in range(30)))
    dataset_id = hospital.datasets.register(table, build_metadata(
        title="pool test trial", standard="sdtm", subject_count=30, data_use=["HMB"], tier="restricted")).dataset_id
    hospital.licensing.require_consent(dataset_id, fcs["patient"].address)
    index = hospital.read_index()
    epoch = hospital.meter.current_epoch()
    _, end, closes = index.meter_epoch_bounds(epoch)
    if end - int(hospital.w3.eth.get_block("latest")["timestamp"]) < 20:  # the records must land in one epoch
        travel(hospital, end)
        epoch = hospital.meter.current_epoch()
        _, end, closes = index.meter_epoch_bounds(epoch)
    subjects = {"hospital": dataset_subject(dataset_id, 1), "clinic": dataset_subject(dataset_id + 100, 1)}
    for name, kind, amount in CONTRIBUTIONS:
        subject = subjects[name] if kind == "data" else digest_subject(f"{name} {kind}".encode())
        record = fcs[name].meter.submit(kind, subject, amount, json.dumps({"amount": amount}).encode())
        cro.meter.attest(record.id)
    travel(hospital, closes)
    fcs["pharma"].meter.finalize(epoch)
    return World(fcs=fcs, epoch=epoch, dataset_id=dataset_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("pool-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("FULLCHAIN_HOME", str(home))
    mp.setenv("FULLCHAIN_PASSWORD", PW)
    yield build_world(home)
    mp.undo()


def contract_view(pool: PoolClient, epoch: int, token: str, account: str) -> tuple[int, int, int]:
    """The contract's own claimable, entitlement sum and claimed for an account."""
    f = pool.contract.functions
    return (f.claimable(epoch, token, account).call(), sum(f.entitlement(epoch, token, account).call()),
            f.claimed(epoch, token, account).call())


def test_amounts_are_parsed_with_the_token_decimals() -> None:
    assert parse_amount("12.5", 18) == 12_500_000_000_000_000_000
    assert parse_amount("0.000001", 6) == 1 and parse_amount("7", 0) == 7 and parse_amount(".5", 1) == 5
    assert parse_amount("1.50", 1) == 15  # trailing zeros are no extra precision
    with pytest.raises(InvalidInput, match="has 7 decimals; the token has 6"):
        parse_amount("1.0000001", 6, symbol="USDC")
    for bad in ("", "1e3", "-1", "1,5", "0x10", "abc", "1.2.3", "NaN"):
        with pytest.raises(InvalidInput, match="is not an amount"):
            parse_amount(bad, 18)
    with pytest.raises(InvalidInput, match="not above zero"):
        parse_amount("0.000", 18)
    assert format_amount(12_500_000_000_000_000_000, 18, "FCS") == "12.5 FCS"
    assert format_amount(1, 18) == "0.000000000000000001" and format_amount(3 * 10**6, 6, "USDC") == "3 USDC"
    with pytest.raises(InvalidInput, match="add up to 9999 basis points"):
        make_split("0x" + "11" * 20, operations_bps=999, patients_bps=1000, data_bps=4000, algorithm_bps=2500,
                   compute_bps=1500)


def test_fund_show_claim_to_the_last_unit(world: World) -> None:
    pharma, hospital, clinic, cro, patient = (world[n] for n in ("pharma", "hospital", "clinic", "cro", "patient"))
    epoch = world.epoch
    token = pharma.pool.token()
    assert (token.symbol, token.decimals, token.permit) == ("FCS", 18, True)
    assert token.address == pharma.contracts()[SETTLEMENT_TOKEN]
    minted = pharma.pool.mint(pharma.address, "5000")
    assert minted.balance == 5000 * 10**18

    # An amount divisible by nothing: budgets and shares all round down somewhere.
    funding = pharma.pool.fund(epoch, "1234.567890123456789017")
    assert funding.permit and len(funding.transactions) == 1  # one transaction, with a signed permit
    deposited = 1_234_567_890_123_456_789_017
    assert funding.amount == deposited and pharma.pool.balance() == 5000 * 10**18 - deposited

    view = hospital.pool.show(epoch)
    assert view.state == "open for claims" and view.deposited == deposited and view.split_fixed
    assert [(d.funder, d.amount, d.sweep) for d in view.deposits] == [(pharma.address, deposited, False)]
    assert view.split == make_split(pharma.address, operations_bps=1000, patients_bps=1000, data_bps=4000,
                                    algorithm_bps=2500, compute_bps=1500)  # the deployer runs operations
    assert view.budgets == budgets(deposited, view.split)
    assert view.totals == {"data": 65, "algorithm": 1101, "compute": 7200, "patients": 40}
    shares = {a.account: a for a in view.accounts}
    assert list(shares) == [hospital.address, clinic.address, pharma.address, patient.address]
    assert set(shares[hospital.address].parts) == {"data", "algorithm"}
    assert set(shares[pharma.address].parts) == {"compute", "operations"}
    assert shares[patient.address].parts == {"patient": view.budgets["patients"]}  # the only patient
    assert shares[hospital.address].parts["data"] == view.budgets["data"] * 40 // 65
    # The index's figures are the contract's, for every account.
    latest = int(pharma.w3.eth.get_block("latest")["timestamp"])
    assert latest < view.claim_deadline.timestamp()
    for account, share in shares.items():
        assert contract_view(hospital.pool, epoch, token.address, account) == (share.claimable, share.entitled, 0)
    assert view.claimed == 0 and view.claimable == sum(s.entitled for s in shares.values())
    assert view.deposited == view.claimed + view.claimable + view.swept + view.dust and 0 < view.dust <= 5 + 4 * 4

    paid = {}
    for fc in (hospital, clinic, cro, patient, pharma):
        if fc is cro:  # no points, not the operations account: refused, naming the epoch and why
            with pytest.raises(NothingToClaim, match=f"earned nothing in epoch {epoch}"):
                fc.pool.claim([epoch])
            continue
        before = fc.pool.balance()
        result = fc.pool.claim([epoch])
        assert result.paid == {epoch: shares[fc.address].entitled} and fc.pool.balance() == before + result.total
        paid[fc.address] = result.total
        with pytest.raises(NothingToClaim, match=f"already claimed its .* of epoch {epoch}"):
            fc.pool.claim([epoch])
    # The contract refuses a second claim too (not only the SDK's check).
    with pytest.raises(TransactionReverted) as info:
        hospital.transactor.call_function(hospital.pool.contract.functions.claim(epoch, token.address),
                                          contract="BenefitDistributor")
    assert info.value.error_name == "BenefitDistributorNothingToClaim"

    # Without a permit: an approval first, then the funding; none needed while the allowance lasts.
    topped = pharma.pool.fund(epoch, "1.000000000000000007", permit=False)
    assert not topped.permit and len(topped.transactions) == 2
    pharma.transactor.call_function(pharma.pool._erc20(token.address).functions.approve(pharma.pool.address, 10),
                                    contract=SETTLEMENT_TOKEN)
    assert len(pharma.pool.fund(epoch, 10, permit=False).transactions) == 1
    deposited += 10**18 + 17
    grown = {a.account: a for a in hospital.pool.show(epoch).accounts}
    for account, share in grown.items():  # a later funding only adds to what each is due
        assert share.entitled >= shares[account].entitled
        assert contract_view(hospital.pool, epoch, token.address, account) == (
            share.claimable, share.entitled, share.claimed)
    for fc in (hospital, clinic, patient, pharma):  # a claim pays what is due less what was claimed
        again = fc.pool.claim([epoch]).total
        assert again == grown[fc.address].entitled - paid[fc.address] > 0
        paid[fc.address] += again

    after = cro.pool.show(epoch)
    assert after.claimed == sum(paid.values()) == hospital.pool.contract.functions.claimedTotal(
        epoch, token.address).call()
    assert after.deposited == deposited and after.claimable == sum(
        a.claimable for a in after.accounts) == sum(a.entitled - a.claimed for a in after.accounts)
    assert after.deposited == after.claimed + after.claimable + after.swept + after.dust
    assert {a.account: a.claimed for a in after.accounts} == paid
    assert hospital.pool.due_epochs() == []
    with pytest.raises(NothingToClaim, match="nothing is due"):
        hospital.pool.claim()


def test_refusals_name_the_epoch_and_the_reason(world: World) -> None:
    pharma, hospital = world["pharma"], world["hospital"]
    current = pharma.meter.current_epoch()
    with pytest.raises(InvalidInput, match="has 19 decimals; the token has 18"):
        pharma.pool.fund(current, "1.0000000000000000001")
    with pytest.raises(InvalidInput, match=f"epoch {current + 5} has not started"):
        pharma.pool.fund(current + 5, "1")
    with pytest.raises(InvalidInput, match=f"epoch {current + 5} has not started"):
        pharma.pool.show(current + 5)
    with pytest.raises(InvalidInput, match="holds 0 FCS, less than 1 FCS"):
        world["cro"].pool.fund(current, "1")
    with pytest.raises(NothingToClaim, match=f"epoch {current} is not final"):
        hospital.pool.claim([current])
    # An epoch with nothing due stops the whole claim before anything is sent.
    with pytest.raises(NothingToClaim, match=f"already claimed its .* of epoch {world.epoch}"):
        hospital.pool.claim([current, world.epoch])
    with pytest.raises(InvalidInput, match="not an ERC-20 token"):
        pharma.pool.token(pharma.pool.address)
    with pytest.raises(TransactionReverted) as info:
        hospital.pool.mint(hospital.address, "1")
    assert info.value.error_name == "SettlementTokenNotGovernor"
    elsewhere = PoolClient(w3=pharma.w3, address=pharma.pool.address, transactor=pharma.transactor,
                           consortium=pharma.consortium, index=pharma.read_index,
                           settlement_token=pharma.pool.settlement_token, dev_chain=False, signer=pharma._load_signer)
    with pytest.raises(InvalidInput, match="only on development chains"):
        elsewhere.mint(pharma.address, "1")


def test_split_change_by_proposal_applies_to_unfunded_epochs_only(world: World) -> None:
    pharma, hospital = world["pharma"], world["hospital"]
    current = pharma.meter.current_epoch()
    new = make_split(world["cro"].address, operations_bps=500, patients_bps=1500, data_bps=5000,
                     algorithm_bps=2000, compute_bps=1000)
    with pytest.raises(TransactionReverted) as info:  # only through governance
        hospital.transactor.call_function(hospital.pool.contract.functions.setSplit(new.as_tuple()),
                                          contract="BenefitDistributor")
    assert info.value.error_name == "BenefitDistributorNotConsortium"
    pid = pharma.pool.propose_split(new)
    pharma.consortium.execute(pid)
    assert hospital.pool.show(world.epoch).split.operations == pharma.address  # fixed at its funding
    assert hospital.pool.show(current).split == new and not hospital.pool.show(current).split_fixed


def test_sweep_after_the_deadline_moves_the_rest_to_a_later_epoch(world: World) -> None:
    pharma, hospital = world["pharma"], world["hospital"]
    epoch, token = world.epoch, pharma.pool.token()
    current = pharma.meter.current_epoch()
    with pytest.raises(InvalidInput, match=f"epoch {epoch}'s claims are open until"):
        pharma.pool.propose_sweep(epoch, current)
    with pytest.raises(InvalidInput, match="into a later epoch"):
        pharma.pool.propose_sweep(epoch, epoch)
    before = pharma.pool.show(epoch)
    travel(pharma, int(before.claim_deadline.timestamp()))
    closed = pharma.pool.show(epoch)
    assert closed.state == "claims closed" and closed.claimable == 0
    with pytest.raises(NothingToClaim, match=f"the claims of epoch {epoch} closed at"):
        hospital.pool.claim([epoch])
    with pytest.raises(InvalidInput, match=f"the claims of epoch {epoch} closed"):
        pharma.pool.fund(epoch, "1")
    target = pharma.meter.current_epoch()
    rest = closed.deposited - closed.claimed
    pid = pharma.pool.propose_sweep(epoch, target)
    pharma.consortium.execute(pid)
    swept = hospital.pool.show(epoch)
    assert swept.state == "swept" and swept.swept == rest and swept.swept_to == target and swept.dust == 0
    assert swept.deposited == swept.claimed + swept.claimable + swept.swept + swept.dust
    assert pharma.pool.contract.functions.swept(epoch, token.address).call()
    into = hospital.pool.show(target)
    assert [(d.funder, d.amount, d.sweep) for d in into.deposits] == [(pharma.pool.address, rest, True)]
    assert into.deposited == pharma.pool.contract.functions.deposited(target, token.address).call()
    with pytest.raises(InvalidInput, match="already swept"):
        pharma.pool.propose_sweep(epoch, target)
    with pytest.raises(NothingToClaim, match="was swept into epoch"):
        hospital.pool.claim([epoch])


def test_on_anvil_the_index_agrees_with_the_contract_to_the_last_unit(tmp_path: Path) -> None:
    """The same epoch on a real node (its own anvil: the test moves its clock): permit funding,
    the index's shares against the contract's for every account, everyone's claim."""
    from eth_account import Account
    from fullchain.backends.rpc import open_rpc
    from fullchain.transactions import Transactor

    from .conftest import ANVIL_MNEMONIC, AnvilNode

    node = AnvilNode()
    try:
        Account.enable_unaudited_hdwallet_features()
        funder = Account.from_mnemonic(ANVIL_MNEMONIC)
        rpc = open_rpc(node.url)
        bank = Transactor(rpc, lambda: funder, funder.address)

        def fund_accounts(addresses: list[str]) -> None:
            for address in addresses:
                bank.transfer(address, 10 * 10**18)

        world = build_world(tmp_path / "home", chain=node.url, fund_accounts=fund_accounts)
        pharma, hospital = world["pharma"], world["hospital"]
        token = pharma.pool.token()
        pharma.pool.mint(pharma.address, "100")
        assert pharma.pool.fund(world.epoch, "99.999999999999999999").permit
        view = hospital.pool.show(world.epoch)
        assert len(view.accounts) == 4 and view.claimable == sum(a.entitled for a in view.accounts)
        for share in view.accounts:
            assert contract_view(hospital.pool, world.epoch, token.address, share.account) == (
                share.claimable, share.entitled, 0)
        for share in view.accounts:
            name = next(n for n, fc in world.fcs.items() if fc.address == share.account)
            assert world[name].pool.claim([world.epoch]).total == share.entitled
        after = hospital.pool.show(world.epoch)
        assert after.claimable == 0 and after.claimed == sum(a.entitled for a in view.accounts)
        assert after.deposited == after.claimed + after.dust == 99_999_999_999_999_999_999
        assert after.dust == after.deposited - pharma.pool.contract.functions.claimedTotal(
            world.epoch, token.address).call()
    finally:
        node.stop()
