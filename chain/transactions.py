"""Sending transactions: signed here with eth-account, sent raw, awaited with a timeout.

One :class:`Transactor` per signing account keeps the nonce locally, so an application can send
many transactions back to back without asking the node each time; a nonce error (another
process used the same account) resynchronises once and retries.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3._utils.method_formatters import receipt_formatter
from web3.types import RPCEndpoint, TxReceipt
from eth_utils import keccak

from .contracts import decode_revert, revert_bytes
from .errors import ChainError, InsufficientFunds, TransactionReverted, TransactionTimeout

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

# Custom errors whose fix is not obvious from their name.
ERROR_HINTS: dict[str, str] = {
    "ConsortiumNotMember": "the account must be an active member; ask the governors to admit it",
    "ProvenanceAnchorNotMember": "only active members anchor batches; ask the governors to admit this account",
    "ConsortiumNotGovernor": "only governors may do this; ask a governor",
    "ConsortiumNotEnoughApprovals": "more governors must approve it first (`fullchain member vote ID`)",
    "ConsortiumProposalExpired": "the voting period is over; propose it again",
    "ConsortiumAlreadyApproved": "this account already approved the proposal",
    "ConsortiumAlreadyMember": "the account is already an active member",
    "ConsortiumInvalidThreshold": "the threshold must be between 1 and the number of governors",
    "ConsortiumProposalNotPending": "the proposal was already executed or cancelled",
    "ConsortiumUnknownProposal": "check the id with `fullchain member proposals`",
    "ConsortiumInvalidVotingPeriod": "give a voting period between the min and max in the error",
    "ConsortiumInvalidPublicKey": "an HPKE public key is a 32-byte X25519 key (64 hex digits)",
    "ConsortiumNotProposer": "only the member who proposed it may cancel it",
    "DataUseLicensingDelegationEnded": "the owner or the delegate left the consortium; the owner must delegate again",
    "DataUseLicensingMembershipEnded": "the account was removed since; after re-admission it must request again",
    "DataUseLicensingSelfGrant": "a license cannot be granted, renewed or keyed by its own licensee",
    "DataUseLicensingVersionErased": "that version was erased; use a version that still exists",
    "DataUseLicensingConsentWithdrawn": "the patient withdrew consent for this dataset or one it derives from",
    "DatasetRegistryLineageTooLarge": "declare at most that many ancestors in --derived-from lineage",
    "DataUseLicensingPriorityWindow": "until the window closes (closesAt, unix seconds) only owners of the "
                                      "dataset's parent datasets may request it; ask one of them, or request after",
    "DataUseLicensingNoParents": "only a dataset registered with parents (--derived-from) has a priority window",
    "DataUseLicensingTooManyParents": "a dataset with a priority window has at most `max` parents",
    "DataUseLicensingPriorityAlreadyDeclared": "a priority window is declared once: it is neither extended nor "
                                               "opened again",
    "DataUseLicensingInvalidPriorityWindow": "a priority window lasts from 1 day to 365 days (min and max, in seconds)",
}

# How nodes say that a transaction's nonce is stale: geth/Besu/anvil "nonce too low", anvil
# "nonce too high", py-evm "Invalid transaction nonce: Expected 14, but got 13", geth "already
# known" / "replacement transaction underpriced" (the same nonce, sent by another process).
_NONCE_ERRORS = ("nonce", "already known", "replacement transaction")
# Processes sharing an account can race again after a resync; a few rounds settle it.
_SEND_ATTEMPTS = 4


class Transactor:
    """Builds, signs, sends and awaits the transactions of one account."""

    def __init__(self, w3: Web3, signer: Callable[[], LocalAccount], address: str, *,
                 confirmations: int = 1, receipt_timeout: float = 120.0) -> None:
        self._w3 = w3
        self._signer = signer
        self.address = Web3.to_checksum_address(address)
        self._confirmations = confirmations
        self._timeout = receipt_timeout
        self._chain_id: int | None = None
        self._nonce: int | None = None
        self._fees: dict[str, int] | None = None
        self._fees_at = 0.0
        self._sync_send: bool | None = None  # whether the node has eth_sendRawTransactionSync
        self._http: httpx.Client | None = None

    # ---- public ----

    def unlock(self) -> None:
        """Decrypt the signing key now, before time-sensitive work (a keystore takes ~1 s)."""
        self._signer()

    def call_function(self, fn: ContractFunction | ContractConstructor, *, contract: str,
                      value: int = 0, hints: Mapping[str, str] | None = None) -> TxReceipt:
        """Send `fn` (a bound contract function or constructor) and return its receipt.

        The gas estimate doubles as a preflight: a call the contract would refuse raises
        :class:`TransactionReverted` with the decoded custom error, and nothing is sent.
        `hints`: the caller's fixes for custom errors that :data:`ERROR_HINTS` does not cover.
        """
        try:
            return self._call_function(fn, contract=contract, value=value)
        except TransactionReverted as exc:
            if exc.hint or not hints or exc.error_name not in hints:
                raise
            raise TransactionReverted(exc.error_name, exc.error_args, contract=exc.contract, function=exc.function,
                                      hint=hints[exc.error_name]) from None

    def _call_function(self, fn: ContractFunction | ContractConstructor, *, contract: str, value: int) -> TxReceipt:
        name = getattr(fn, "fn_name", "constructor")
        tx: dict[str, Any] = {"from": self.address, "value": value}
        try:
            gas = fn.estimate_gas(tx)
        except ContractLogicError as exc:
            raise self._reverted(exc, contract, name) from None
        except Web3RPCError as exc:
            raise self._rpc_error(exc) from None
        tx["gas"] = gas + gas // 5  # headroom: state may move between estimate and inclusion
        tx["data"] = fn._encode_transaction_data() if isinstance(fn, ContractFunction) else fn.data_in_transaction
        if isinstance(fn, ContractFunction):
            tx["to"] = fn.address
        receipt = self.send(tx)
        if receipt["status"] != 1:
            raise self._reverted_onchain(tx, receipt, contract, name)
        return receipt

    def transfer(self, to: str, value: int) -> TxReceipt:
        return self.send({"from": self.address, "to": Web3.to_checksum_address(to), "value": value, "gas": 21000})

    def send(self, tx: dict[str, Any]) -> TxReceipt:
        """Sign `tx` (gas already set) with fees, chain id and nonce filled in; send; await."""
        for attempt in range(_SEND_ATTEMPTS):
            last = attempt == _SEND_ATTEMPTS - 1
            signed = self.sign(tx)
            try:
                receipt = self._send_sync(signed)
                if receipt is not None:
                    self._nonce = (self._nonce or 0) + 1
                    return self._confirm(receipt)
                tx_hash = self._w3.eth.send_raw_transaction(signed)
            except Web3RPCError as exc:
                message = _message(exc).lower()
                if not last and any(m in message for m in _NONCE_ERRORS):
                    self._nonce = None  # someone else used this account: ask the node again
                    continue
                if not last and "underpriced" in message:
                    self._fees = None
                    continue
                raise self._rpc_error(exc) from None
            self._nonce = (self._nonce or 0) + 1
            return self.wait(tx_hash)
        raise ChainError("the node kept refusing the transaction nonce", hint="retry the command")

    def sign(self, tx: dict[str, Any]) -> HexBytes:
        """Fill in chain id, nonce and fees, and sign; the nonce is consumed only by `send`."""
        full = {k: v for k, v in tx.items() if k != "from"}
        full.setdefault("value", 0)
        full["chainId"] = self.chain_id
        full["nonce"] = self.next_nonce()
        full.update(self.fees())
        return self._signer().sign_transaction(full).raw_transaction

    def _send_sync(self, signed: HexBytes) -> TxReceipt | None:
        """EIP-7966 `eth_sendRawTransactionSync`: send and get the receipt in one round trip.
        None when the node does not have it (then we send and poll as usual)."""
        if self._sync_send is False:
            return None
        started = time.monotonic()
        try:
            raw = self._request_sync(signed.to_0x_hex())
        except httpx.TimeoutException:
            # Sent, not mined before our own deadline: the node may still mine it, so poll.
            return self.wait(keccak(signed), timeout=self._timeout - (time.monotonic() - started))
        except httpx.HTTPError as exc:
            raise ChainError(f"the node did not answer the transaction ({type(exc).__name__})",
                             hint="check the node; running the command again is safe") from None
        except Web3RPCError as exc:
            message = _message(exc).lower()
            if self._sync_send is None and ("not supported" in message or "not found" in message
                                            or "does not exist" in message or "unknown" in message):
                self._sync_send = False
                return None
            if "timeout" in message or "timed out" in message:  # sent, not yet mined: poll for it
                return self.wait(keccak(signed), timeout=self._timeout - (time.monotonic() - started))
            raise
        self._sync_send = True
        return receipt_formatter(raw)

    def _request_sync(self, raw_tx: str) -> Any:
        """The sync call with our receipt timeout as its deadline. The node holds the request
        until the block is mined or its own timeout passes (anvil: 30 s, equal to the HTTP read
        timeout, so whichever fires first decides); over HTTP we post it ourselves, bounded by
        `receipt_timeout`, instead of through the provider's fixed timeout."""
        provider = self._w3.provider
        method = RPCEndpoint("eth_sendRawTransactionSync")
        if not isinstance(provider, HTTPProvider) or provider.endpoint_uri is None:
            return self._w3.manager.request_blocking(method, [raw_tx])
        if self._http is None:
            self._http = httpx.Client(headers=provider.get_request_headers())
        reply = self._http.post(str(provider.endpoint_uri), timeout=self._timeout,
                                json={"jsonrpc": "2.0", "id": 1, "method": method, "params": [raw_tx]})
        try:
            body = reply.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or ("result" not in body and "error" not in body):
            raise Web3RPCError(f"not a JSON-RPC answer (HTTP {reply.status_code})",
                               rpc_response={"error": {"code": -32603, "message": f"HTTP {reply.status_code}"}})
        if body.get("error") is not None:
            error = body["error"] if isinstance(body["error"], dict) else {"message": str(body["error"])}
            raise Web3RPCError(str(error.get("message")), rpc_response={"error": error})
        return body["result"]

    def wait(self, tx_hash: HexBytes | bytes, *, timeout: float | None = None) -> TxReceipt:
        try:
            receipt = self._w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=max(timeout if timeout is not None else self._timeout, 0.1), poll_latency=0.05)
        except TimeExhausted:
            raise TransactionTimeout(
                f"transaction 0x{bytes(tx_hash).hex()} was sent but not mined within {self._timeout:g} s",
                hint="check the node; running the command again is safe once it is mined or dropped") from None
        return self._confirm(receipt)

    def _confirm(self, receipt: TxReceipt) -> TxReceipt:
        tx_hash = receipt["transactionHash"]
        if self._confirmations > 1:
            target = receipt["blockNumber"] + self._confirmations - 1
            deadline = time.monotonic() + self._timeout
            while self._w3.eth.block_number < target:
                if time.monotonic() > deadline:
                    raise TransactionTimeout(
                        f"transaction 0x{bytes(tx_hash).hex()} has fewer than {self._confirmations} "
                        f"confirmations after {self._timeout:g} s", hint="check that the network produces blocks")
                time.sleep(0.5)
        return receipt

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._w3.eth.chain_id
        return self._chain_id

    def next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self._w3.eth.get_transaction_count(self.address, "pending")
        return self._nonce

    def fees(self) -> dict[str, int]:
        """EIP-1559 fields when the chain has a base fee, else a legacy gas price (0 on free-gas
        consortium networks). Refreshed every few seconds, not per transaction."""
        if self._fees is None or time.monotonic() - self._fees_at > 10:
            latest = self._w3.eth.get_block("latest")
            base = latest.get("baseFeePerGas")
            if base is None:
                self._fees = {"gasPrice": self._w3.eth.gas_price}
            else:
                try:
                    tip = self._w3.eth.max_priority_fee
                except (Web3RPCError, ValueError, NotImplementedError):
                    tip = 0
                tip = min(tip, 2 * base) if base else tip
                self._fees = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
            self._fees_at = time.monotonic()
        return self._fees

    # ---- errors ----

    def _reverted(self, exc: ContractLogicError, contract: str, function: str) -> TransactionReverted:
        data = revert_bytes(exc)
        if data:
            name, args = decode_revert(contract, data)
        else:
            name, args = "Reverted", {"message": exc.message or "execution reverted"}
        return TransactionReverted(name, args, contract=contract, function=function, hint=ERROR_HINTS.get(name))

    def _reverted_onchain(self, tx: dict[str, Any], receipt: TxReceipt, contract: str,
                          function: str) -> TransactionReverted:
        # The estimate passed but the block reverted it (state moved in between): replay it on
        # the block's parent state to recover the reason.
        replay = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}
        try:
            self._w3.eth.call(replay, receipt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return self._reverted(exc, contract, function)
        return TransactionReverted("Reverted", {"transaction": "0x" + bytes(receipt["transactionHash"]).hex()},
                                   contract=contract, function=function)

    def _rpc_error(self, exc: Web3RPCError) -> ChainError:
        message = _message(exc)
        if any(m in message.lower() for m in ("insufficient funds", "cannot afford")):
            # Both anvil/geth ("insufficient funds") and py-evm ("cannot afford txn gas") wordings.
            return InsufficientFunds(f"account {self.address} cannot pay for gas",
                                     hint="fund the account on this chain; ask the network operator")
        return ChainError(f"the node refused the transaction: {message}", hint="check the node's logs")


def _message(exc: Web3RPCError) -> str:
    response = getattr(exc, "rpc_response", None) or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.args[0]) if exc.args else str(exc)
