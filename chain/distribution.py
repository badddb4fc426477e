"""Benefit distribution: funders put an ERC-20 into a finalized metering epoch's pool, and every
account that earned something claims its share itself (BenefitDistributor, pull, O(1)).

An epoch's pool of a token is split by the epoch's split (basis points, fixed at its first
funding) into five budgets: operations (paid to one address), patients, and the data,
algorithm and compute dimensions. An account's share of a dimension is its points over the
dimension's total, rounded down; a patient's share of the patient budget is the data points
that accrued to it over all patients' points. What rounding leaves (dust), and what nobody
claimed before the claim deadline, governance sweeps into a later epoch's pool.

Amounts are integers in the token's base units everywhere; :func:`parse_amount` reads what
people type ("12.5") with the token's decimals and :func:`format_amount` writes it back.
Every figure of :meth:`PoolClient.show` is read from the event index and computed here by the
contract's own rule (tests compare it with the contract's `claimable` for every account).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from eth_abi import encode as abi_encode
from eth_utils import keccak
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError, Web3Exception
from web3.logs import DISCARD

from .addresses import to_account
from .contracts import BENEFIT_DISTRIBUTOR, SETTLEMENT_TOKEN, bind
from .errors import InvalidInput, NotDeployed
from .models import BigInt
from .transactions import Transactor

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from .consortium import ConsortiumClient
    from .index import EventIndex, PoolFigures

BPS = 10_000
UINT256_MAX = 2**256 - 1
# The five parts of a pool, in the order of IBenefitDistributor.Split's basis points.
PARTS = ("operations", "patients", "data", "algorithm", "compute")
DIMENSIONS = ("data", "algorithm", "compute")
# How long a permit signature stays usable: it is sent at once, the margin is for a slow node.
PERMIT_LIFETIME = 3600

_AMOUNT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_HINTS = {
    "BenefitDistributorNotConsortium": "governance changes go through a proposal (`fullchain pool split propose`, "
                                       "`fullchain pool sweep`)",
    "BenefitDistributorInvalidSplit": "the five parts must add up to exactly 10000 basis points",
    "BenefitDistributorInvalidAmount": "give an amount above zero",
    "BenefitDistributorInvalidOperations": "name the account paid for operations, or give operations 0 basis points",
    "BenefitDistributorInvalidClaimWindow": "give a claim window between the bounds in the error",
    "BenefitDistributorEpochClosed": "the epoch's claims are closed; fund a later epoch",
    "BenefitDistributorEpochNotFinal": "claims open once the epoch is finalized (`fullchain meter finalize EPOCH`)",
    "BenefitDistributorClaimsStillOpen": "an epoch is swept only after its claim deadline",
    "BenefitDistributorAlreadySwept": "the epoch's pool was already swept",
    "BenefitDistributorInvalidSweepTarget": "sweep into a later epoch that is not final yet",
    "BenefitDistributorTransferAmountMismatch": "the token moved a different amount than asked (a fee-on-transfer "
                                                "token?); fund with a plain ERC-20",
    "BenefitDistributorNothingToClaim": "see what is due with `fullchain pool show EPOCH`",
    "SettlementTokenNotGovernor": "only governors of the consortium mint settlement tokens",
    "ERC20InsufficientBalance": "the account holds fewer tokens than that",
    "ERC20InsufficientAllowance": "the distributor was not allowed to take that much",
}


class NothingToClaim(InvalidInput):
    """Nothing is due to the account in an epoch; the message says why."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Split(_Model):
    """IBenefitDistributor.Split: who is paid for operations, and the five parts in basis points
    (summing to exactly 10000)."""

    operations: str
    operations_bps: int = Field(ge=0, le=BPS)
    patients_bps: int = Field(ge=0, le=BPS)
    data_bps: int = Field(ge=0, le=BPS)
    algorithm_bps: int = Field(ge=0, le=BPS)
    compute_bps: int = Field(ge=0, le=BPS)

    def bps(self) -> dict[str, int]:
        return {part: getattr(self, f"{part}_bps") for part in PARTS}

    def as_tuple(self) -> tuple[str, int, int, int, int, int]:
        return (self.operations, *self.bps().values())  # type: ignore[return-value]

    @classmethod
    def from_event(cls, fields: dict[str, Any]) -> Split:
        return cls(operations=fields["operations"], operations_bps=fields["operationsBps"],
                   patients_bps=fields["patientsBps"], data_bps=fields["dataBps"],
                   algorithm_bps=fields["algorithmBps"], compute_bps=fields["computeBps"])


def make_split(operations: str, *, operations_bps: int, patients_bps: int, data_bps: int, algorithm_bps: int,
               compute_bps: int) -> Split:
    """A split, checked as the contract checks it (the parts add up to 10000 basis points)."""
    parts = {"operations": operations_bps, "patients": patients_bps, "data": data_bps, "algorithm": algorithm_bps,
             "compute": compute_bps}
    for part, bps in parts.items():
        if not 0 <= bps <= BPS:
            raise InvalidInput(f"{part} {bps} basis points is outside 0..{BPS}",
                               hint="basis points are hundredths of a percent: 2500 is 25%")
    total = sum(parts.values())
    if total != BPS:
        raise InvalidInput(f"the split's parts add up to {total} basis points, not {BPS}",
                           hint="operations + patients + data + algorithm + compute must be exactly 10000 (100%)")
    return Split(operations=to_account(operations, what="operations account"),
                 **{f"{k}_bps": v for k, v in parts.items()})


class TokenInfo(_Model):
    address: str
    name: str
    symbol: str
    decimals: int
    permit: bool = Field(description="EIP-2612: funding takes one transaction (a signed permit), not two")


class Deposit(_Model):
    funder: str
    amount: BigInt
    sweep: bool = Field(description="moved here by a sweep of an earlier epoch, not funded by someone")


class AccountShare(_Model):
    """What one account is owed from one pool."""

    account: str
    parts: dict[str, BigInt] = Field(description="part (data, algorithm, compute, patient, operations) -> "
                                                 "entitlement; only the parts it has")
    entitled: BigInt
    claimed: BigInt
    claimable: BigInt = Field(description="what a claim would pay now (0 unless the claims are open)")


PoolState = Literal["not final", "open for claims", "claims closed", "swept"]


class PoolView(_Model):
    """One epoch's pool of one token: deposits, split, budgets, totals, and every account's
    share. Balance: deposited = claimed + claimable + swept + dust."""

    epoch: int
    token: TokenInfo
    state: PoolState
    finalized_at: datetime | None
    claim_deadline: datetime | None
    split: Split | None = Field(description="the epoch's split (fixed at its first funding), else the current one")
    split_fixed: bool
    deposits: list[Deposit]
    deposited: BigInt
    budgets: dict[str, BigInt] = Field(description="part -> floor(deposited * bps / 10000)")
    totals: dict[str, BigInt] = Field(description="points: data, algorithm, compute, and patients")
    accounts: list[AccountShare]
    claimed: BigInt
    claimable: BigInt = Field(description="the sum of what the accounts may still claim")
    swept: BigInt
    swept_to: int | None
    dust: BigInt = Field(description="deposited - claimed - claimable - swept: rounding and budgets nobody earned")


class Funding(_Model):
    epoch: int
    token: TokenInfo
    amount: BigInt
    funder: str
    permit: bool = Field(description="funded with a signed permit in one transaction")
    transactions: list[str]


class ClaimResult(_Model):
    account: str
    token: TokenInfo
    paid: dict[int, BigInt] = Field(description="epoch -> paid")
    total: BigInt
    transaction: str


class Minted(_Model):
    token: TokenInfo
    to: str
    amount: BigInt
    balance: BigInt
    transaction: str


# ---- amounts ----

def parse_amount(text: str | int, decimals: int, *, symbol: str = "") -> int:
    """An amount typed by a person ("12.5") in base units of a token with `decimals`; more
    decimals than the token has is refused, never rounded."""
    if isinstance(text, int) and not isinstance(text, bool):
        units = text
    else:
        raw = str(text).strip()
        unit = f" {symbol}" if symbol else ""
        if not _AMOUNT.fullmatch(raw):
            raise InvalidInput(f"'{text}' is not an amount", hint=f"write a plain decimal number, e.g. 12.5{unit}")
        try:
            value = Decimal(raw)
        except InvalidOperation:  # cannot happen after the pattern; a plain answer anyway
            raise InvalidInput(f"'{text}' is not an amount", hint="write a plain decimal number, e.g. 12.5") from None
        places = -value.normalize().as_tuple().exponent  # type: ignore[operator]
        if places > decimals:
            raise InvalidInput(f"{raw}{unit} has {places} decimals; the token has {decimals}",
                               hint=f"give at most {decimals} digits after the point")
        units = int(value.scaleb(decimals))
    if units <= 0:
        raise InvalidInput(f"an amount of {text} is not above zero", hint="give a positive amount")
    if units > UINT256_MAX:
        raise InvalidInput(f"{text} is more than a uint256 holds", hint="give a smaller amount")
    return units


def format_amount(units: int, decimals: int, symbol: str = "") -> str:
    """Base units as a decimal with the token's decimals, trailing zeros dropped: 12.5 FCS."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    text = f"{sign}{whole}"
    if decimals and frac:
        text += "." + str(frac).rjust(decimals, "0").rstrip("0")
    return f"{text} {symbol}" if symbol else text


# ---- the contract's rule ----

def budgets(pool: int, split: Split) -> dict[str, int]:
    """Each part's budget: floor(pool * bps / 10000), as BenefitDistributor computes it."""
    return {part: pool * bps // BPS for part, bps in split.bps().items()}


def entitlements(figures: PoolFigures, split: Split) -> dict[str, dict[str, int]]:
    """account -> part -> entitlement (only parts above zero), by the contract's rule: for each
    dimension floor(budget * points / total) (OpenZeppelin Math.mulDiv), the same for the
    patient budget, and the operations budget to the split's operations account."""
    pool = sum(amount for _, amount in figures.funds)
    budget = budgets(pool, split)
    out: dict[str, dict[str, int]] = {}
    for member, points in figures.points.items():
        for d in DIMENSIONS:
            if figures.totals[d] and points[d]:
                share = budget[d] * points[d] // figures.totals[d]
                if share:
                    out.setdefault(member, {})[d] = share
    total_patients = sum(figures.patient_points.values())
    for patient, points in figures.patient_points.items():
        share = budget["patients"] * points // total_patients if total_patients else 0
        if share:
            out.setdefault(patient, {})["patient"] = share
    if budget["operations"]:
        out.setdefault(split.operations, {})["operations"] = budget["operations"]
    return out


def _utc(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, tz=timezone.utc) if ts is not None else None


class PoolClient:
    """One deployed BenefitDistributor; writes are signed by the transactor's account."""

    def __init__(self, *, w3: Web3, address: str, transactor: Transactor, consortium: ConsortiumClient,
                 index: Callable[[], EventIndex], settlement_token: str | None, dev_chain: bool,
                 signer: Callable[[], LocalAccount]) -> None:
        self._w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = bind(w3, BENEFIT_DISTRIBUTOR, address)
        self._tx = transactor
        self._consortium = consortium
        self._index = index
        self.settlement_token = Web3.to_checksum_address(settlement_token) if settlement_token else None
        self._dev_chain = dev_chain
        self._signer = signer
        self._tokens: dict[str, TokenInfo] = {}

    # ---- tokens ----

    def token(self, token: str | None = None) -> TokenInfo:
        """The token's name, symbol, decimals and whether it takes EIP-2612 permits (default:
        the deployment's settlement token)."""
        address = self._token_address(token)
        if address not in self._tokens:
            erc20 = self._erc20(address)
            try:
                name = erc20.functions.name().call()
                symbol = erc20.functions.symbol().call()
                decimals = int(erc20.functions.decimals().call())
            except (ContractLogicError, BadFunctionCallOutput, Web3Exception, ValueError, OverflowError):
                raise InvalidInput(f"{address} is not an ERC-20 token with a name, symbol and decimals",
                                   hint="give the address of the token contract (--token)") from None
            self._tokens[address] = TokenInfo(address=address, name=name, symbol=symbol, decimals=decimals,
                                              permit=self._permit_domain(erc20) is not None)
        return self._tokens[address]

    def parse_amount(self, amount: str | int, token: str | None = None) -> int:
        info = self.token(token)
        return parse_amount(amount, info.decimals, symbol=info.symbol)

    def balance(self, account: str | None = None, token: str | None = None) -> int:
        address = self._token_address(token)
        return int(self._erc20(address).functions.balanceOf(to_account(account or self._tx.address)).call())

    def _token_address(self, token: str | None) -> str:
        if token is not None:
            address = to_account(token, what="token address")
            if not self._w3.eth.get_code(address):
                raise InvalidInput(f"there is no contract at {address} on this chain",
                                   hint="give the address of the ERC-20 token contract (--token)")
            return address
        if self.settlement_token is None:
            raise NotDeployed("this deployment records no settlement token",
                              hint="name the ERC-20 token the consortium settles in with --token ADDRESS")
        return self.settlement_token

    def _erc20(self, address: str) -> Any:
        # SettlementToken's ABI is ERC-20 with EIP-2612 and EIP-5267: a superset of what is asked
        # of any token here; a token without permit simply fails those calls.
        return bind(self._w3, SETTLEMENT_TOKEN, address)

    def _permit_domain(self, erc20: Any) -> dict[str, Any] | None:
        """The token's EIP-712 domain when it takes EIP-2612 permits and says which domain it
        signs under (EIP-5267) and that domain is the one it checks (DOMAIN_SEPARATOR); else None."""
        try:
            erc20.functions.nonces(self._tx.address).call()
            separator = bytes(erc20.functions.DOMAIN_SEPARATOR().call())
            fields, name, version, chain_id, verifying, _salt, _ext = erc20.functions.eip712Domain().call()
        except (ContractLogicError, BadFunctionCallOutput, Web3Exception, ValueError, OverflowError):
            return None
        if fields != b"\x0f":  # name, version, chainId, verifyingContract: nothing else
            return None
        domain = {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying}
        return domain if domain_separator(domain) == separator else None

    # ---- funding ----

    def fund(self, epoch: int, amount: str | int, token: str | None = None, *, permit: bool | None = None) -> Funding:
        """Put `amount` (base units, or a decimal string such as "12.5") of `token` into
        `epoch`'s pool. With an EIP-2612 token one transaction carries a signed permit;
        otherwise the distributor is approved first (unless already allowed enough).
        `permit=False` always approves (a signer that cannot sign typed data); `True` insists."""
        info = self.token(token)
        if permit and not info.permit:
            raise InvalidInput(f"{info.symbol} ({info.address}) takes no EIP-2612 permits",
                               hint="fund it with an approval instead (the default for such tokens)")
        units = parse_amount(amount, info.decimals, symbol=info.symbol)
        self._check_fundable(epoch, info)
        me = self._tx.address
        held = self.balance(me, info.address)
        if held < units:
            raise InvalidInput(f"{me} holds {format_amount(held, info.decimals, info.symbol)}, less than "
                               f"{format_amount(units, info.decimals, info.symbol)}",
                               hint="acquire the tokens first" + (" (`fullchain pool mint` on a development chain)"
                                                                  if self._dev_chain else ""))
        erc20 = self._erc20(info.address)
        hashes = []
        domain = self._permit_domain(erc20) if info.permit and permit is not False else None
        if domain is not None:
            deadline = int(self._w3.eth.get_block("latest")["timestamp"]) + PERMIT_LIFETIME
            nonce = int(erc20.functions.nonces(me).call())
            signed = self._signer().sign_typed_data(
                domain,
                {"Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                            {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                            {"name": "deadline", "type": "uint256"}]},
                {"owner": me, "spender": self.address, "value": units, "nonce": nonce, "deadline": deadline})
            receipt = self._send(self.contract.functions.fundWithPermit(
                epoch, info.address, units, deadline, signed.v, signed.r.to_bytes(32, "big"),
                signed.s.to_bytes(32, "big")))
        else:
            if int(erc20.functions.allowance(me, self.address).call()) < units:
                hashes.append(self._hash(self._send(erc20.functions.approve(self.address, units),
                                                   contract=SETTLEMENT_TOKEN)))
            receipt = self._send(self.contract.functions.fund(epoch, info.address, units))
        hashes.append(self._hash(receipt))
        return Funding(epoch=epoch, token=info, amount=units, funder=me, permit=domain is not None,
                       transactions=hashes)

    def _check_fundable(self, epoch: int, info: TokenInfo) -> None:
        index = self._index()
        current = index.meter_current_epoch()
        if current is None:
            raise NotDeployed("no ContributionMeter is indexed for this chain", hint="deploy with `fullchain chain deploy`")
        if epoch > current:
            raise InvalidInput(f"epoch {epoch} has not started (the current epoch is {current})",
                               hint=f"fund epoch {current} or an earlier one whose claims are still open")
        figures = index.pool_figures(epoch, info.address)
        if figures.sweep is not None:
            raise InvalidInput(f"epoch {epoch}'s {info.symbol} pool was swept into epoch {figures.sweep[0]}",
                               hint="fund a later epoch")
        deadline = self._deadline(figures)
        if deadline is not None and index.now() >= deadline:
            raise InvalidInput(f"the claims of epoch {epoch} closed at {_utc(deadline):%Y-%m-%d %H:%M:%S} UTC",
                               hint=f"fund epoch {current} instead")

    # ---- claims ----

    def claim(self, epochs: Sequence[int] | None = None, token: str | None = None) -> ClaimResult:
        """Claim what is due to this account in `epochs` (default: every final epoch with
        something due). Nothing is sent when an asked epoch has nothing due: the error says why."""
        info = self.token(token)
        me = self._tx.address
        if not epochs:
            epochs = self.due_epochs(me, info.address)
            if not epochs:
                raise NothingToClaim(f"nothing is due to {me} in {info.symbol} in any final epoch",
                                     hint="see an epoch's shares with `fullchain pool show EPOCH`")
        wanted = sorted(set(epochs))
        for epoch in wanted:
            self._check_due(epoch, me, info)
        if len(wanted) == 1:
            receipt = self._send(self.contract.functions.claim(wanted[0], info.address))
        else:
            receipt = self._send(self.contract.functions.claimMany(wanted, info.address))
        paid: dict[int, int] = {}
        for event in self.contract.events.Claimed().process_receipt(receipt, errors=DISCARD):
            paid[int(event["args"]["epoch"])] = paid.get(int(event["args"]["epoch"]), 0) + int(event["args"]["amount"])
        return ClaimResult(account=me, token=info, paid=paid, total=sum(paid.values()),
                           transaction=self._hash(receipt))

    def due_epochs(self, account: str | None = None, token: str | None = None) -> list[int]:
        """The final epochs, claims open, where `account` has something to claim (from the index)."""
        info = self.token(token)
        who = to_account(account or self._tx.address)
        index = self._index()
        out = []
        for epoch, _ in index.meter_final_epochs():
            view = self._view(index, epoch, info)
            if view.state == "open for claims" and any(a.account == who and a.claimable for a in view.accounts):
                out.append(epoch)
        return out

    def _check_due(self, epoch: int, account: str, info: TokenInfo) -> None:
        index = self._index()
        view = self._view(index, epoch, info)
        mine = next((a for a in view.accounts if a.account == account), None)
        if view.state == "not final":
            state = index.meter_epoch(epoch).state if epoch <= (index.meter_current_epoch() or 0) else "not started"
            raise NothingToClaim(f"epoch {epoch} is not final (it is {state}): nothing can be claimed yet",
                                 hint=f"claims open once it is finalized (`fullchain meter finalize {epoch}`)")
        if view.state == "swept":
            raise NothingToClaim(f"epoch {epoch}'s {info.symbol} pool was swept into epoch {view.swept_to}: "
                                 "its claims are over", hint=f"claim from epoch {view.swept_to} once it is final")
        if view.state == "claims closed":
            raise NothingToClaim(f"the claims of epoch {epoch} closed at {view.claim_deadline:%Y-%m-%d %H:%M:%S} UTC",
                                 hint="what was not claimed is swept into a later epoch by governance")
        if not view.deposited:
            raise NothingToClaim(f"epoch {epoch}'s {info.symbol} pool is empty: nobody funded it",
                                 hint=f"fund it with `fullchain pool fund {epoch} AMOUNT`")
        if mine is None or not mine.entitled:
            raise NothingToClaim(f"{account} earned nothing in epoch {epoch}: no points, no patient points, and "
                                 "it is not the operations account", hint="see the shares with "
                                 f"`fullchain pool show {epoch}`")
        if not mine.claimable:
            raise NothingToClaim(f"{account} already claimed its {format_amount(mine.claimed, info.decimals, info.symbol)}"
                                 f" of epoch {epoch}", hint="a share is paid once; nothing more is due")

    # ---- views (from the index) ----

    def show(self, epoch: int, token: str | None = None) -> PoolView:
        """Deposits, split, budgets, point totals, and every account's entitlement, claims and
        what it may still claim: members with points, patients, and the operations account."""
        info = self.token(token)
        index = self._index()
        current = index.meter_current_epoch()
        if current is None:
            raise NotDeployed("no ContributionMeter is indexed for this chain", hint="deploy with `fullchain chain deploy`")
        view = self._view(index, epoch, info)
        if epoch > current and not view.deposited:
            raise InvalidInput(f"epoch {epoch} has not started (the current epoch is {current})",
                               hint=f"show epoch {current} or an earlier one")
        return view

    def _deadline(self, figures: PoolFigures) -> int | None:
        if figures.finalized_at is None:
            return None
        window = figures.claim_window if figures.claim_window is not None else int(
            self.contract.functions.claimWindow().call())
        return figures.finalized_at + window

    def _view(self, index: EventIndex, epoch: int, info: TokenInfo, *, now: int | None = None) -> PoolView:
        figures = index.pool_figures(epoch, info.address)
        when = index.now() if now is None else now
        split = self._split(figures, epoch)
        deposited = sum(amount for _, amount in figures.funds)
        deadline = self._deadline(figures)
        if figures.sweep is not None:
            state: PoolState = "swept"
        elif deadline is None:
            state = "not final"
        elif when >= deadline:
            state = "claims closed"
        else:
            state = "open for claims"
        owed = entitlements(figures, split) if split is not None else {}
        accounts = list(dict.fromkeys([*figures.points, *figures.patient_points,
                                       *([split.operations] if split is not None else []), *figures.claims]))
        shares = []
        for account in accounts:
            parts = owed.get(account, {})
            entitled = sum(parts.values())
            claimed = figures.claims.get(account, 0)
            claimable = max(entitled - claimed, 0) if state == "open for claims" else 0
            shares.append(AccountShare(account=account, parts=parts, entitled=entitled, claimed=claimed,
                                       claimable=claimable))
        claimed = sum(figures.claims.values())
        claimable = sum(s.claimable for s in shares)
        swept = figures.sweep[1] if figures.sweep else 0
        return PoolView(
            epoch=epoch, token=info, state=state, finalized_at=_utc(figures.finalized_at), claim_deadline=_utc(deadline),
            split=split, split_fixed=figures.fixed,
            deposits=[Deposit(funder=f, amount=a, sweep=f == self.address) for f, a in figures.funds],
            deposited=deposited, budgets=budgets(deposited, split) if split else dict.fromkeys(PARTS, 0),
            totals={**figures.totals, "patients": sum(figures.patient_points.values())}, accounts=shares,
            claimed=claimed, claimable=claimable, swept=swept, swept_to=figures.sweep[0] if figures.sweep else None,
            dust=deposited - claimed - claimable - swept)

    def _split(self, figures: PoolFigures, epoch: int) -> Split | None:
        found = figures.split if figures.fixed else figures.current_split
        if found is not None:
            return Split.from_event(found)
        # Only when the distributor set its first split without an event (never for ours).
        operations, *bps = self.contract.functions.splitOf(epoch).call()
        return Split(operations=operations, **{f"{p}_bps": b for p, b in zip(PARTS, bps)})

    # ---- governance (proposals of the Consortium, approved k of n) ----

    def propose_split(self, split: Split) -> int:
        """Propose a new split for epochs not yet funded; returns the Consortium proposal id."""
        return self._propose(self.contract.functions.setSplit(split.as_tuple()))

    def propose_claim_window(self, seconds: int) -> int:
        if seconds <= 0:
            raise InvalidInput(f"a claim window of {seconds} s is not above zero", hint="give e.g. 90d")
        return self._propose(self.contract.functions.setClaimWindow(seconds))

    def propose_sweep(self, epoch: int, to_epoch: int, token: str | None = None) -> int:
        """Propose moving what is left in `epoch`'s pool (unclaimed shares and rounding dust)
        into `to_epoch`'s pool, once `epoch`'s claims are closed."""
        info = self.token(token)
        index = self._index()
        view = self._view(index, epoch, info)
        if to_epoch <= epoch:
            raise InvalidInput(f"epoch {epoch} is swept into a later epoch, not {to_epoch}",
                               hint=f"give --to {epoch + 1} or later")
        if index.pool_figures(to_epoch, info.address).finalized_at is not None:
            raise InvalidInput(f"epoch {to_epoch} is already final: its shares are fixed",
                               hint="sweep into an epoch that is not final yet (e.g. the current one)")
        if view.state == "swept":
            raise InvalidInput(f"epoch {epoch}'s {info.symbol} pool was already swept into epoch {view.swept_to}",
                               hint="a pool is swept once")
        if view.state != "claims closed":
            when = (f"until {view.claim_deadline:%Y-%m-%d %H:%M:%S} UTC" if view.claim_deadline else
                    "until it is final, then for the claim window")
            raise InvalidInput(f"epoch {epoch}'s claims are open {when}", hint="sweep after the claim deadline")
        return self._propose(self.contract.functions.sweep(epoch, info.address, to_epoch))

    # ---- development chains ----

    def mint(self, to: str, amount: str | int) -> Minted:
        """Mint settlement tokens to `to` (governors only, development chains only)."""
        if not self._dev_chain:
            raise InvalidInput("tokens are minted only on development chains (embedded, anvil)",
                               hint="on a real network, fund pools with the ERC-20 the consortium settles in")
        info = self.token(None)
        units = parse_amount(amount, info.decimals, symbol=info.symbol)
        account = to_account(to, what="recipient")
        receipt = self._send(self._erc20(info.address).functions.mint(account, units), contract=SETTLEMENT_TOKEN)
        return Minted(token=info, to=account, amount=units, balance=self.balance(account, info.address),
                      transaction=self._hash(receipt))

    # ---- internals ----

    def _send(self, fn: Any, *, contract: str = BENEFIT_DISTRIBUTOR) -> Any:
        return self._tx.call_function(fn, contract=contract, hints=_HINTS)

    def _propose(self, fn: Any) -> int:
        return self._consortium.propose_call(self.address, bytes.fromhex(fn._encode_transaction_data()[2:]))

    @staticmethod
    def _hash(receipt: Any) -> str:
        return "0x" + bytes(receipt["transactionHash"]).hex()


def domain_separator(domain: dict[str, Any]) -> bytes:
    """EIP-712 hashStruct of an EIP712Domain(name, version, chainId, verifyingContract)."""
    typehash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                             [typehash, keccak(text=domain["name"]), keccak(text=domain["version"]),
                              domain["chainId"], domain["verifyingContract"]]))


__all__ = ["AccountShare", "ClaimResult", "Deposit", "Funding", "Minted", "NothingToClaim",
           "PoolClient", "PoolView", "Split", "TokenInfo", "budgets", "entitlements", "format_amount", "make_split",
           "parse_amount"]
