"""Block headers rebuilt from JSON-RPC block fields, their RLP and hash, and the parent links of a
run of headers up to a block the auditor trusts.

The header is the ordinary Ethereum one: 15 fields, then one more per fork whose field the block
carries (London baseFeePerGas, Shanghai withdrawalsRoot, Cancun blobGasUsed, excessBlobGas and
parentBeaconBlockRoot, Prague requestsHash). A block hash is keccak256(rlp(header)), except on QBFT
chains, whose hash leaves the commit seals and round out of extraData (`fullchain.audit.qbft`):
functions here take the hash function as an argument for that reason.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import rlp
from eth_utils import keccak

from ..errors import VerificationFailed

if TYPE_CHECKING:
    from web3 import Web3

BLOOM_LENGTH = 256
# (JSON-RPC name, kind) in header order; kinds: h32 = 32-byte hash, a = address, b = bytes, i = integer
_BASE = [("parentHash", "h32"), ("sha3Uncles", "h32"), ("miner", "a"), ("stateRoot", "h32"),
         ("transactionsRoot", "h32"), ("receiptsRoot", "h32"), ("logsBloom", "bloom"), ("difficulty", "i"),
         ("number", "i"), ("gasLimit", "i"), ("gasUsed", "i"), ("timestamp", "i"), ("extraData", "b"),
         ("mixHash", "h32"), ("nonce", "h8")]
# Fields that forks appended, in order; a header carries a prefix of them.
_FORK_FIELDS = [("baseFeePerGas", "i"), ("withdrawalsRoot", "h32"), ("blobGasUsed", "i"), ("excessBlobGas", "i"),
                ("parentBeaconBlockRoot", "h32"), ("requestsHash", "h32")]
_LENGTHS = {"h32": 32, "a": 20, "bloom": BLOOM_LENGTH, "h8": 8}


@dataclass(frozen=True)
class BlockHeader:
    """A header's fields in header order; `extra` holds the fork fields the block carries."""

    parentHash: bytes  # noqa: N815 (JSON-RPC names, so that a bundle reads like the node's answer)
    sha3Uncles: bytes  # noqa: N815
    miner: bytes
    stateRoot: bytes  # noqa: N815
    transactionsRoot: bytes  # noqa: N815
    receiptsRoot: bytes  # noqa: N815
    logsBloom: bytes  # noqa: N815
    difficulty: int
    number: int
    gasLimit: int  # noqa: N815
    gasUsed: int  # noqa: N815
    timestamp: int
    extraData: bytes  # noqa: N815
    mixHash: bytes  # noqa: N815
    nonce: bytes
    extra: tuple[tuple[str, bytes | int], ...] = ()

    @classmethod
    def from_rpc(cls, block: Mapping[str, Any]) -> BlockHeader:
        """From an `eth_getBlockBy*` answer: raw JSON (hex strings) or web3's (HexBytes, ints)."""
        base = {name: _field(block, name, kind) for name, kind in _BASE}
        extra: list[tuple[str, bytes | int]] = []
        missing = None
        for name, kind in _FORK_FIELDS:
            if block.get(name) is None:
                missing = missing or name
                continue
            if missing:
                raise VerificationFailed(f"block {base['number']} has {name} but no {missing}",
                                         hint="a header carries the fields of each fork up to its own, in order")
            extra.append((name, _field(block, name, kind)))
        return cls(**base, extra=tuple(extra))

    @classmethod
    def from_rlp(cls, encoded: bytes) -> BlockHeader:
        """From the header's RLP (e.g. `debug_getRawHeader`)."""
        try:
            items = rlp.decode(encoded)
        except rlp.exceptions.DecodingError as exc:
            raise VerificationFailed(f"header is not RLP ({exc})", hint="the header was altered") from None
        if not isinstance(items, list) or not len(_BASE) <= len(items) <= len(_BASE) + len(_FORK_FIELDS) \
                or not all(isinstance(x, bytes) for x in items):
            raise VerificationFailed("header RLP is not a list of 15 to 21 byte strings", hint="the header was altered")
        specs = _BASE + _FORK_FIELDS[:len(items) - len(_BASE)]
        values = {name: _from_raw(raw, name, kind) for (name, kind), raw in zip(specs, items)}
        base = {name: values[name] for name, _ in _BASE}
        return cls(**base, extra=tuple((name, values[name]) for name, _ in specs[len(_BASE):]))

    def items(self) -> list[tuple[str, bytes | int]]:
        """(name, value) in header order, fork fields included."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if f.name != "extra"] + list(self.extra)

    def rlp(self) -> bytes:
        return rlp.encode([value for _, value in self.items()])

    def hash(self) -> bytes:
        """keccak256(rlp(header)): the block hash of every chain but QBFT's."""
        return keccak(self.rlp())

    def with_extra_data(self, extra_data: bytes) -> BlockHeader:
        return replace(self, extraData=extra_data)

    def to_json(self) -> dict[str, Any]:
        """The fields as a node serves them (hex strings), for bundles; `from_rpc` reads it back."""
        return {name: hex(value) if isinstance(value, int) else "0x" + value.hex() for name, value in self.items()}

    def get(self, name: str) -> bytes | int | None:
        return dict(self.items()).get(name)


HashFunction = Callable[[BlockHeader], bytes]


def ethereum_hash(header: BlockHeader) -> bytes:
    return header.hash()


def check_header_hash(header: BlockHeader, stated_hash: bytes, *,
                      hash_function: HashFunction = ethereum_hash) -> bytes:
    """Check that `header` hashes to `stated_hash`; returns the hash."""
    got = hash_function(header)
    if got != bytes(stated_hash):
        raise VerificationFailed(
            f"header of block {header.number} hashes to 0x{got.hex()}, not its stated hash 0x{bytes(stated_hash).hex()}",
            hint="a header field was altered (or the chain hashes headers differently: QBFT, see fullchain.audit.qbft)")
    return got


def verify_header(block: Mapping[str, Any], *, hash_function: HashFunction = ethereum_hash) -> BlockHeader:
    """Rebuild the header of an RPC `block` from its fields and check that it hashes to its `hash`."""
    header = BlockHeader.from_rpc(block)
    check_header_hash(header, _field(block, "hash", "h32"), hash_function=hash_function)
    return header


def fetch_header(w3: Web3, number: int) -> BlockHeader:
    """The header of block `number` as the node has it: `debug_getRawHeader` where the node serves
    it (Besu, geth, the embedded chain, whose block JSON pads extraData), else rebuilt from
    `eth_getBlockByNumber`. Not verified: check its hash against what you trust."""
    answer = w3.provider.make_request("debug_getRawHeader", [hex(number)])
    raw = answer.get("result") if isinstance(answer, dict) else None
    if isinstance(raw, str):
        return BlockHeader.from_rlp(bytes.fromhex(raw[2:]))
    return BlockHeader.from_rpc(w3.eth.get_block(number))


def verify_header_chain(headers: Sequence[BlockHeader], trusted_hash: bytes, *,
                        hash_function: HashFunction = ethereum_hash) -> list[bytes]:
    """Check that `headers` (consecutive numbers, ascending) link parent to child and that the last
    one is the block the auditor trusts; returns every header's hash. The first failing link is named.
    """
    if not headers:
        raise VerificationFailed("no headers to verify", hint="give at least the trusted block's header")
    hashes = [hash_function(h) for h in headers]
    for parent, child, parent_hash in zip(headers, headers[1:], hashes):
        if child.number != parent.number + 1:
            raise VerificationFailed(f"header {child.number} follows header {parent.number}: the run has a gap",
                                     hint="include every header from the first block to the trusted one")
        if child.parentHash != parent_hash:
            raise VerificationFailed(
                f"block {child.number}'s parentHash 0x{child.parentHash.hex()} is not the hash of block "
                f"{parent.number} (0x{parent_hash.hex()})", hint="a header was altered, removed or swapped")
    if hashes[-1] != bytes(trusted_hash):
        raise VerificationFailed(
            f"the last header (block {headers[-1].number}) hashes to 0x{hashes[-1].hex()}, not the trusted "
            f"0x{bytes(trusted_hash).hex()}", hint="the headers do not lead to the block you trust")
    return hashes


def _field(block: Mapping[str, Any], name: str, kind: str) -> bytes | int:
    value = block.get(name)
    if value is None:
        raise VerificationFailed(f"block has no {name}", hint="give the block as eth_getBlockByNumber returns it")
    if kind == "i":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise VerificationFailed(f"block {name} is not a number", hint="the header was altered")
        if isinstance(value, str):
            try:
                value = int(value, 16)
            except ValueError:
                raise VerificationFailed(f"block {name} {value!r} is not a hex number",
                                         hint="the header was altered") from None
        if value < 0:
            raise VerificationFailed(f"block {name} is negative", hint="the header was altered")
        return value
    raw = _bytes(value, name)
    if kind == "bloom" and len(raw) < BLOOM_LENGTH:
        # eth-tester serves the bloom as a minimal integer (b"\0" for an empty one)
        raw = raw.rjust(BLOOM_LENGTH, b"\0")
    return _checked_length(raw, name, kind)


def _from_raw(raw: bytes, name: str, kind: str) -> bytes | int:
    if kind == "i":
        if raw[:1] == b"\0":
            raise VerificationFailed(f"header {name} is not a minimal integer", hint="the header was altered")
        return int.from_bytes(raw, "big")
    return _checked_length(raw, name, kind)


def _checked_length(raw: bytes, name: str, kind: str) -> bytes:
    want = _LENGTHS.get(kind)
    if want is not None and len(raw) != want:
        raise VerificationFailed(f"block {name} is {len(raw)} bytes, not {want}", hint="the header was altered")
    return raw


def _bytes(value: Any, name: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise VerificationFailed(f"block {name} {value!r} is not hex", hint="the header was altered") from None
    raise VerificationFailed(f"block {name} is not bytes", hint="the header was altered")
