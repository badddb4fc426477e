"""Receipt and log inclusion under a block's receiptsRoot, provable and checkable offline.

No node serves receipt proofs, so the evidence is built from every receipt of the block: the
receipts trie is keyed by rlp(transaction index) and holds each receipt's consensus encoding
(EIP-2718: `type || rlp([status, cumulativeGasUsed, logsBloom, logs])`, no prefix for legacy type 0;
a log is `[address, [topics], data]`). Its root must equal the header's receiptsRoot; a proof is the
trie nodes from the root to one receipt, and `HexaryTrie.get_from_proof` walks them with nothing else.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rlp
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from trie import HexaryTrie

from ..errors import AuditError, VerificationFailed

if TYPE_CHECKING:
    from web3 import Web3

BLOOM_BYTES = 256


@dataclass(frozen=True)
class Log:
    address: bytes  # 20 bytes
    topics: tuple[bytes, ...]
    data: bytes

    @property
    def checksum_address(self) -> str:
        return to_checksum_address(self.address)

    def fields(self) -> list[Any]:
        return [self.address, list(self.topics), self.data]


@dataclass(frozen=True)
class Receipt:
    """A receipt's consensus fields: what the receipts trie commits to."""

    type: int
    status: int
    cumulative_gas_used: int
    logs_bloom: bytes
    logs: tuple[Log, ...]

    @classmethod
    def from_rpc(cls, receipt: Mapping[str, Any]) -> Receipt:
        """From an `eth_getTransactionReceipt` / `eth_getBlockReceipts` entry (raw JSON or web3's).

        The bloom is recomputed from the logs (eth-tester serves none); a served bloom that
        disagrees with the logs is refused.
        """
        if receipt.get("status") is None:
            raise AuditError("receipt has no status (a pre-Byzantium receipt with a state root)",
                             hint="receipt proofs need a chain from Byzantium on")
        logs = tuple(Log(_bytes(log["address"]), tuple(_bytes(t) for t in log["topics"]), _bytes(log["data"]))
                     for log in receipt.get("logs") or [])
        bloom = logs_bloom(logs)
        served = receipt.get("logsBloom")
        if served is not None and _bytes(served).rjust(BLOOM_BYTES, b"\0") != bloom:
            raise AuditError(f"receipt of transaction {_int(receipt.get('transactionIndex', -1))}: its logsBloom "
                             "does not match its logs", hint="the node served an inconsistent receipt")
        return cls(type=_int(receipt.get("type", 0)), status=_int(receipt["status"]),
                   cumulative_gas_used=_int(receipt["cumulativeGasUsed"]), logs_bloom=bloom, logs=logs)

    def encode(self) -> bytes:
        """The consensus encoding stored in the receipts trie."""
        body = rlp.encode([self.status, self.cumulative_gas_used, self.logs_bloom, [log.fields() for log in self.logs]])
        return body if self.type == 0 else bytes([self.type]) + body

    @classmethod
    def decode(cls, encoded: bytes) -> Receipt:
        """Parse a receipt's consensus encoding; VerificationFailed when it is not one."""
        if not encoded:
            raise VerificationFailed("receipt is empty", hint="the proof does not lead to a receipt")
        type_, body = (0, encoded) if encoded[0] >= 0xC0 else (encoded[0], encoded[1:])
        if type_ >= 0x80:
            raise VerificationFailed(f"receipt type byte 0x{type_:02x} is not an EIP-2718 type",
                                     hint="the receipt was altered")
        try:
            status, gas, bloom, logs = rlp.decode(body)
            parsed = tuple(Log(address, tuple(topics), data) for address, topics, data in logs)
        except (rlp.exceptions.DecodingError, ValueError, TypeError):
            raise VerificationFailed("receipt is not rlp([status, cumulativeGasUsed, logsBloom, logs])",
                                     hint="the receipt was altered") from None
        if status not in (b"", b"\x01") or len(bloom) != BLOOM_BYTES or not isinstance(gas, bytes) or \
                any(len(log.address) != 20 or any(len(t) != 32 for t in log.topics) for log in parsed):
            raise VerificationFailed("receipt fields are malformed", hint="the receipt was altered")
        return cls(type=type_, status=int.from_bytes(status, "big"), cumulative_gas_used=int.from_bytes(gas, "big"),
                   logs_bloom=bloom, logs=parsed)


def logs_bloom(logs: Sequence[Log]) -> bytes:
    """The 2048-bit bloom of `logs` (yellow paper M3:2048: three 11-bit indexes per address and topic)."""
    bits = 0
    for log in logs:
        for item in (log.address, *log.topics):
            digest = keccak(item)
            for i in (0, 2, 4):
                bits |= 1 << (int.from_bytes(digest[i:i + 2], "big") & 2047)
    return bits.to_bytes(BLOOM_BYTES, "big")


def _key(index: int) -> bytes:
    return rlp.encode(index)


def receipts_trie(receipts: Sequence[Receipt]) -> HexaryTrie:
    trie = HexaryTrie({})
    for index, receipt in enumerate(receipts):
        trie[_key(index)] = receipt.encode()
    return trie


def receipts_root(receipts: Sequence[Receipt]) -> bytes:
    return receipts_trie(receipts).root_hash


def verify_receipts_root(receipts: Sequence[Receipt], root: bytes, *, block: int | None = None) -> None:
    """Check that `receipts` (in transaction order) are exactly those under `root`."""
    got = receipts_root(receipts)
    if got != bytes(root):
        where = f" of block {block}" if block is not None else ""
        raise VerificationFailed(f"the {len(receipts)} receipts{where} build root 0x{got.hex()}, not receiptsRoot "
                                 f"0x{bytes(root).hex()}", hint="a receipt was altered, added or left out")


@dataclass(frozen=True)
class ReceiptProof:
    """The receipts-trie nodes (each RLP-encoded, root first) proving receipt `index` of a block."""

    index: int
    nodes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "nodes": ["0x" + n.hex() for n in self.nodes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReceiptProof:
        try:
            return cls(int(data["index"]), tuple(bytes.fromhex(n[2:]) for n in data["nodes"]))
        except (KeyError, TypeError, ValueError):
            raise VerificationFailed("receipt proof is malformed", hint="expected {index, nodes: [0x..]}") from None


def prove_receipt(receipts: Sequence[Receipt], index: int) -> ReceiptProof:
    """A proof of receipt `index` among `receipts` (all of the block's, in transaction order)."""
    if not 0 <= index < len(receipts):
        raise AuditError(f"no receipt {index} in a block of {len(receipts)} transactions",
                         hint="give the transaction's index in its block")
    nodes = receipts_trie(receipts).get_proof(_key(index))
    return ReceiptProof(index, tuple(rlp.encode(node) for node in nodes))


def verify_receipt_proof(root: bytes, proof: ReceiptProof) -> Receipt:
    """Walk `proof` from `root` (the header's receiptsRoot) to receipt `proof.index`; returns it."""
    try:
        nodes = [rlp.decode(n) for n in proof.nodes]
        value = HexaryTrie.get_from_proof(bytes(root), _key(proof.index), nodes)
    except Exception as exc:  # noqa: BLE001 (hostile input: any failure to walk the proof is a refusal)
        raise VerificationFailed(
            f"receipt proof for transaction {proof.index} does not verify under receiptsRoot 0x{bytes(root).hex()} "
            f"({type(exc).__name__}: {exc})", hint="the proof was altered or belongs to another block") from None
    if not value:
        raise VerificationFailed(
            f"receiptsRoot 0x{bytes(root).hex()} holds no receipt {proof.index} (the proof shows its absence)",
            hint="the proof belongs to another block")
    return Receipt.decode(value)


def verify_log(root: bytes, proof: ReceiptProof, log_index: int, expected: Log | None = None) -> Log:
    """The `log_index`-th log (0-based, within its receipt) of the proven receipt; with `expected`,
    VerificationFailed unless it is exactly that log."""
    receipt = verify_receipt_proof(root, proof)
    if not 0 <= log_index < len(receipt.logs):
        raise VerificationFailed(f"receipt {proof.index} has {len(receipt.logs)} logs, no log {log_index}",
                                 hint="the event was not emitted by this transaction")
    log = receipt.logs[log_index]
    if expected is not None and log != expected:
        for name in ("address", "topics", "data"):
            if getattr(log, name) != getattr(expected, name):
                raise VerificationFailed(f"log {log_index} of receipt {proof.index}: field {name!r} differs from "
                                         "the event given", hint="the event was altered")
    return log


def event_topic(event_abi: Mapping[str, Any]) -> bytes:
    types = ",".join(_canonical_type(i) for i in event_abi["inputs"])
    return keccak(text=f"{event_abi['name']}({types})")


def decode_log(event_abi: Mapping[str, Any], log: Log) -> dict[str, Any]:
    """The arguments of `log` as event `event_abi` (offline; addresses checksummed; indexed
    arguments of dynamic types come back as their topic hash)."""
    if not log.topics or log.topics[0] != event_topic(event_abi):
        raise VerificationFailed(f"log is not a {event_abi['name']} event (topic0 differs)",
                                 hint="the event was altered or is another event")
    inputs = event_abi["inputs"]
    indexed = [i for i in inputs if i.get("indexed")]
    plain = [i for i in inputs if not i.get("indexed")]
    if len(log.topics) != len(indexed) + 1:
        raise VerificationFailed(f"{event_abi['name']} log has {len(log.topics) - 1} indexed topics, "
                                 f"not {len(indexed)}", hint="the event was altered")
    values: dict[str, Any] = {}
    try:
        for spec, topic in zip(indexed, log.topics[1:]):
            dynamic = spec["type"] in ("string", "bytes") or spec["type"].endswith("]") or spec["type"] == "tuple"
            values[spec["name"]] = topic if dynamic else abi_decode([_canonical_type(spec)], topic)[0]
        for spec, value in zip(plain, abi_decode([_canonical_type(i) for i in plain], log.data)):
            values[spec["name"]] = value
    except Exception as exc:  # noqa: BLE001 (hostile input)
        raise VerificationFailed(f"{event_abi['name']} log data does not decode ({exc})",
                                 hint="the event was altered") from None
    return {k: to_checksum_address(v) if isinstance(v, str) and v.startswith("0x") and len(v) == 42 else v
            for k, v in values.items()}


def fetch_block_receipts(w3: Web3, number: int) -> list[Receipt]:
    """Every receipt of block `number`, in transaction order: `eth_getBlockReceipts` where the node
    has it, else one `eth_getTransactionReceipt` per transaction (the embedded chain)."""
    answer = w3.provider.make_request("eth_getBlockReceipts", [hex(number)])
    served = answer.get("result") if isinstance(answer, dict) else None
    if served is None:
        block = w3.eth.get_block(number)
        served = [w3.eth.get_transaction_receipt(h) for h in block["transactions"]]
    for position, receipt in enumerate(served):
        if _int(receipt["transactionIndex"]) != position:
            raise AuditError(f"block {number}'s receipts are not in transaction order (position {position})",
                             hint="the node served an inconsistent block")
    return [Receipt.from_rpc(r) for r in served]


def _canonical_type(spec: Mapping[str, Any]) -> str:
    if spec["type"].startswith("tuple"):
        return "(" + ",".join(_canonical_type(c) for c in spec["components"]) + ")" + spec["type"][5:]
    return spec["type"]


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    return bytes(value)
