"""OpenZeppelin StandardMerkleTree, in Python: the same leaves, layout and proofs as the npm
package `@openzeppelin/merkle-tree` (`StandardMerkleTree.of`), so that a root built here is
anchored on chain and its proofs pass OpenZeppelin `MerkleProof` in `ProvenanceAnchor.verify`.

- leaf = keccak256(keccak256(abi.encode(types, values))): double hashing keeps a 64-byte inner node
  from passing as a leaf (second preimage);
- inner node = keccak256 of the two children in ascending byte order (`Hashes.commutativeKeccak256`),
  so a proof is a bare list of siblings, without left/right flags;
- the tree is an array heap of 2n-1 nodes: leaf i (in sorted-hash order, the default) sits at
  tree[2n-2-i], node k's children at 2k+1 and 2k+2, the root at tree[0]. Pairing level by level
  gives other roots whenever n is not a power of two, hence this exact layout.

Sorted pairs do not bind a leaf's position in the batch: records that need an order carry their
own sequence number, and the anchor commits to the count.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError

from ..errors import InvalidInput, VerificationFailed

FORMAT = "standard-v1"


try:  # safe-pysha3 comes with eth-tester[py-evm] on CPython: one C call, ~10x pycryptodome's overhead less
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return _keccak_256(data).digest()
except ImportError:  # pragma: no cover (PyPy)
    from eth_utils import keccak


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def standard_leaf_hash(leaf_encoding: Sequence[str], value: Sequence[Any]) -> bytes:
    """The leaf of `value` (ABI-typed by `leaf_encoding`), as OpenZeppelin computes it."""
    if len(value) != len(leaf_encoding):
        raise InvalidInput(f"a record has {len(value)} fields but the leaf encoding has {len(leaf_encoding)} types",
                           hint=f"give one value per type of {list(leaf_encoding)}")
    fast = _static_encoder(tuple(leaf_encoding))
    encoded = fast(value) if fast is not None else None
    if encoded is not None:
        return keccak(keccak(encoded))
    try:
        encoded = abi_encode(list(leaf_encoding), list(value))
    except (EncodingError, TypeError, ValueError) as exc:
        raise InvalidInput(f"record {list(value)!r} does not ABI-encode as {list(leaf_encoding)} ({exc})",
                           hint="give values of the declared types (ints for uintN, 20-byte addresses, ...)") from None
    return keccak(keccak(encoded))


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf` (OpenZeppelin `MerkleProof.processProof`)."""
    node = _node(leaf, "leaf")
    for i, sibling in enumerate(proof):
        node = hash_pair(node, _node(sibling, f"proof[{i}]"))
    return node


def verify_proof(root: bytes, leaf_encoding: Sequence[str], value: Sequence[Any], proof: Sequence[bytes]) -> bytes:
    """Check that `value` is a record under `root`; returns its leaf hash, else VerificationFailed."""
    leaf = standard_leaf_hash(leaf_encoding, value)
    got = process_proof(leaf, proof)
    if got != _node(root, "root"):
        raise VerificationFailed(
            f"Merkle proof of record {list(value)!r} leads to root 0x{got.hex()}, not the anchored 0x{root.hex()}",
            hint="the record, its proof or the batch it is said to belong to was altered")
    return leaf


@dataclass(frozen=True)
class MultiProof:
    """OpenZeppelin's multiproof: `leaves` (hashes, in the order they must be given), sibling
    hashes, and one flag per inner node computed (True: from two of the proven nodes)."""

    leaves: list[bytes]
    proof: list[bytes]
    proof_flags: list[bool]


def process_multiproof(multiproof: MultiProof) -> bytes:
    """The root a multiproof leads to (OpenZeppelin `MerkleProof.processMultiProof`)."""
    leaves = [_node(x, f"leaves[{i}]") for i, x in enumerate(multiproof.leaves)]
    proof = [_node(x, f"proof[{i}]") for i, x in enumerate(multiproof.proof)]
    flags = multiproof.proof_flags
    if len(leaves) + len(proof) != len(flags) + 1 or len(proof) < sum(1 for f in flags if not f):
        raise VerificationFailed(
            f"multiproof shape is invalid: {len(leaves)} leaves + {len(proof)} proof nodes for {len(flags)} flags",
            hint="leaves + proof must equal flags + 1")
    stack, queue = list(leaves), list(proof)
    try:
        for flag in flags:
            a = stack.pop(0)
            b = stack.pop(0) if flag else queue.pop(0)
            stack.append(hash_pair(a, b))
    except IndexError:
        raise VerificationFailed("multiproof flags do not match its leaves and proof nodes",
                                 hint="the multiproof was altered") from None
    if len(stack) + len(queue) != 1:
        raise VerificationFailed("multiproof leaves nodes unused", hint="the multiproof was altered")
    return stack[-1] if stack else queue[0]


class StandardMerkleTree:
    """A tree over records `values`, each ABI-typed by `leaf_encoding` (e.g. ["uint256", "address"])."""

    def __init__(self, tree: list[bytes], values: list[tuple[list[Any], int]], leaf_encoding: list[str]) -> None:
        self.tree = tree
        self.values = values  # (value, tree index), in the order given to `of`
        self.leaf_encoding = leaf_encoding

    @classmethod
    def of(cls, values: Sequence[Sequence[Any]], leaf_encoding: Sequence[str], *,
           sort_leaves: bool = True) -> StandardMerkleTree:
        """Build the tree `StandardMerkleTree.of(values, leafEncoding, {sortLeaves})` builds."""
        if not values:
            raise InvalidInput("a Merkle tree needs at least one record", hint="anchor a non-empty batch")
        encoding = list(leaf_encoding)
        hashed = [(standard_leaf_hash(encoding, v), i) for i, v in enumerate(values)]
        if sort_leaves:
            hashed.sort(key=lambda pair: pair[0])  # stable, as Array.prototype.sort is
        n = len(hashed)
        tree: list[bytes] = [b""] * (2 * n - 1)
        for position, (leaf, _) in enumerate(hashed):
            tree[len(tree) - 1 - position] = leaf
        for k in range(len(tree) - 1 - n, -1, -1):
            tree[k] = hash_pair(tree[2 * k + 1], tree[2 * k + 2])
        where = [0] * n
        for position, (_, value_index) in enumerate(hashed):
            where[value_index] = len(tree) - 1 - position
        return cls(tree, [(list(v), where[i]) for i, v in enumerate(values)], encoding)

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.values)

    def leaf_hash(self, value: Sequence[Any]) -> bytes:
        return standard_leaf_hash(self.leaf_encoding, value)

    def proof(self, index: int) -> list[bytes]:
        """The sibling path of record `index` (its position in the values given to `of`)."""
        if not 0 <= index < len(self.values):
            raise InvalidInput(f"record index {index} is out of range (the batch has {len(self.values)})",
                               hint="give an index from 0 to the number of records - 1")
        node = self.values[index][1]
        path = []
        while node > 0:
            path.append(self.tree[node - 1 if node % 2 == 0 else node + 1])
            node = (node - 1) // 2
        return path

    def multiproof(self, indices: Sequence[int]) -> MultiProof:
        """One proof for several records (OpenZeppelin `getMultiProof`)."""
        for index in indices:
            self.proof(index)  # range check
        nodes = sorted((self.values[i][1] for i in indices), reverse=True)
        if len(set(nodes)) != len(nodes):
            raise InvalidInput("the same record is asked for twice", hint="give each record index once")
        stack, proof, flags = list(nodes), [], []
        while stack and stack[0] > 0:
            j = stack.pop(0)
            sibling, parent = (j - 1 if j % 2 == 0 else j + 1), (j - 1) // 2
            if stack and stack[0] == sibling:
                flags.append(True)
                stack.pop(0)
            else:
                flags.append(False)
                proof.append(self.tree[sibling])
            stack.append(parent)
        if not nodes:
            proof.append(self.tree[0])
        return MultiProof([self.tree[i] for i in nodes], proof, flags)

    def dump(self) -> dict[str, Any]:
        """The `standard-v1` JSON of the npm package (`tree.dump()`); values as given (bytes as hex)."""
        return {"format": FORMAT, "leafEncoding": list(self.leaf_encoding),
                "tree": ["0x" + node.hex() for node in self.tree],
                "values": [{"value": [_jsonable(x) for x in v], "treeIndex": i} for v, i in self.values]}

    @classmethod
    def load(cls, data: dict[str, Any]) -> StandardMerkleTree:
        """Read a `standard-v1` dump, as `dump` writes it or after a JSON round trip (hex strings
        become bytes for bytes types, decimal or hex strings ints for integer types), and check
        every node and value: VerificationFailed names the first inconsistency. Each leaf must
        belong to exactly one record, so that no record hides behind a duplicate."""
        if data.get("format") != FORMAT:
            raise VerificationFailed(f"unknown Merkle tree format {data.get('format')!r}", hint=f"expected {FORMAT!r}")
        try:
            tree = [_node(_from_hex(x), f"tree[{i}]") for i, x in enumerate(data["tree"])]
            encoding = [str(t) for t in data["leafEncoding"]]
            values = [([_from_json(t, x) for t, x in zip(encoding, v["value"], strict=True)], int(v["treeIndex"]))
                      for v in data["values"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(f"Merkle tree dump is malformed ({type(exc).__name__}: {exc})",
                                     hint="expected {format, leafEncoding, tree, values: [{value, treeIndex}]}") from None
        if not tree or len(tree) != 2 * len(values) - 1:
            raise VerificationFailed(f"a tree of {len(tree)} nodes cannot hold {len(values)} records",
                                     hint="a standard tree over n records has 2n-1 nodes")
        for k in range(len(tree) - 1 - len(values), -1, -1):
            if tree[k] != hash_pair(tree[2 * k + 1], tree[2 * k + 2]):
                raise VerificationFailed(f"Merkle tree node {k} is not the hash of its children",
                                         hint="the tree dump was altered")
        seen: dict[int, int] = {}
        for i, (value, node) in enumerate(values):
            try:
                leaf = standard_leaf_hash(encoding, value)
            except InvalidInput as exc:
                raise VerificationFailed(f"record {i}: {exc.message}", hint="the tree dump was altered") from None
            if not len(values) - 1 <= node < len(tree) or tree[node] != leaf:
                raise VerificationFailed(f"record {i} {value!r} is not the leaf at tree index {node}",
                                         hint="the tree dump was altered")
            if node in seen:
                raise VerificationFailed(f"records {seen[node]} and {i} both claim leaf {node}",
                                         hint="the tree dump was altered: a record is missing")
            seen[node] = i
        return cls(tree, values, encoding)


_UINT = re.compile(r"uint(\d*)$")
_BYTES = re.compile(r"bytes(\d+)$")
_HEX40 = re.compile(r"0x([0-9a-f]{40}|[0-9A-F]{40})$")


@cache
def _static_encoder(types: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes | None] | None:
    """A fast `abi.encode` for records of static uintN / address / bytesN / bool fields (eth-abi's
    generic encoder would bound a batch to ~6k records/s); None for other types. Its encoder
    answers None for any value it does not take as is (mixed-case addresses, short bytes, values
    out of range...), which then go through eth-abi and its checks."""
    parts: list[Callable[[Any], bytes | None]] = []
    for t in types:
        if (m := _UINT.match(t)) and int(m.group(1) or 256) in range(8, 257, 8):
            bound = 1 << int(m.group(1) or 256)
            parts.append(lambda v, bound=bound: v.to_bytes(32, "big")
                         if type(v) is int and 0 <= v < bound else None)
        elif (m := _BYTES.match(t)) and 1 <= int(m.group(1)) <= 32:
            size = int(m.group(1))
            parts.append(lambda v, size=size: v.ljust(32, b"\0") if type(v) is bytes and len(v) == size else None)
        elif t == "address":
            parts.append(lambda v: bytes.fromhex(v[2:]).rjust(32, b"\0") if type(v) is str and _HEX40.match(v)
                         else v.rjust(32, b"\0") if type(v) is bytes and len(v) == 20 else None)
        elif t == "bool":
            parts.append(lambda v: (b"\0" * 31 + bytes([v])) if type(v) is bool else None)
        else:
            return None

    def encode(value: Sequence[Any]) -> bytes | None:
        out = []
        for part, v in zip(parts, value):
            word = part(v)
            if word is None:
                return None
            out.append(word)
        return b"".join(out)

    return encode


def _node(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise VerificationFailed(f"Merkle {what} is not 32 bytes", hint="nodes are keccak256 hashes")
    return bytes(value)


def _from_hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except (ValueError, AttributeError):
        raise VerificationFailed(f"Merkle tree node {text!r} is not hex", hint="the tree dump was altered") from None


def _from_json(abi_type: str, value: Any) -> Any:
    """A value read back from JSON, in the Python type eth-abi encodes for `abi_type`."""
    if abi_type.endswith("]"):
        inner = abi_type[:abi_type.rindex("[")]
        return [_from_json(inner, x) for x in value]
    if abi_type.startswith(("uint", "int")) and isinstance(value, str):
        return int(value, 0)
    if abi_type.startswith("bytes") and isinstance(value, str):
        return _from_hex(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(x) for x in value]
    return value
