"""An audit bundle: everything needed to check a dataset's trail with no node and no network.

    from fullchain.audit.bundle import build_bundle, verify_bundle
    bundle = build_bundle(fc.w3, fc.read_index(), fc.contracts(), 3)        # needs the node
    with verify_bundle(bundle, trust_block=None, validators=None) as verified:  # needs nothing
        verified.report.checks, verified.events, verified.index  # an EventIndex of the proven events

The bundle is one JSON document (format `fullchain-audit-bundle/1`, README "Audit bundles"):

- `headers`: the RLP of every block header from the block that created the first contract to the
  head when the bundle was made (consecutive, so that each parentHash links to the one before);
- `blocks`: for each block that holds evidence, every transaction (its EIP-2718 encoding) and every
  receipt (its consensus encoding). Complete lists rather than single trie proofs: the verifier
  rebuilds both tries with `trie.HexaryTrie` and compares them with the header's transactionsRoot
  and receiptsRoot, which proves every log in them *and* that none was left out of those blocks;
- `validators`: on a QBFT chain, the validator set its last header lists (else empty);
- `contracts`: name -> address and the transaction that created it, proven like the rest: the
  creating transaction's sender and nonce give the address, its init code must begin with this
  SDK's compiled bytecode of that contract (or differ only in solc's metadata trailer, which
  hashes every imported source: Sourcify's "partial match"), its receipt must show success;
- `events`: the dataset's trail and the events its license check reads, as the index shows them.
  Every field is re-derived from the proven logs and compared; nothing in them is taken on trust;
- `batches`: the records documents of the access batches among those events (as the licensee
  stored them: an OpenZeppelin StandardMerkleTree dump); each must hash to the anchored digest
  and rebuild the anchored root and count.

Completeness: a header's logsBloom says which addresses and topics its logs may contain. Every
block in the header range whose bloom may hold a log of a deployment contract with a topic naming
the dataset, one of its ancestors, one of its licenses or its licensees' accounts must be in
`blocks`, so an event cannot be dropped by leaving its block out. (Events that name none of those
in an indexed topic are proven included but not proven complete: contribution-meter records filed
under the dataset by their subject, the pool claims they earned, the registrations of datasets
derived from it.)

What cannot be checked offline is not in the bundle: no genesis hash (the headers need not reach
block 0; trust is anchored at the last header: `trust_block`), no account names.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rlp
from eth_utils import keccak, to_checksum_address
from trie import HexaryTrie

from ..errors import AuditError, UnknownDataset, VerificationFailed
from . import qbft
from .check import CheckReport, check_events, evidence
from .headers import BlockHeader, verify_header_chain
from .receipts import Receipt, fetch_block_receipts
from .untrusted import parse_json
from .trail import TrailEvent, dataset_trail, event_json

if TYPE_CHECKING:
    from web3 import Web3

    from ..index import EventIndex
    from ..storage import ContentStore

FORMAT = "fullchain-audit-bundle/1"
CONSENSUS = ("ethereum", "qbft")
# Arguments naming what a dataset's evidence is about, looked for in the logs' topics (see Completeness).
_ID_ARGS = ("datasetId", "licenseId", "recordId", "batchId")
_HOLDER_ARGS = ("requester", "licensee")
_EVENT_FIELDS = ("block", "tx_index", "log_index", "tx_hash", "timestamp", "contract", "address", "name", "args")
# A deployment is one set of contracts wired to each other by their constructor arguments: a
# bundle must name all of them (leaving one out would hide its events) and each must have been
# created pointing at the others (a contract of another deployment cannot be slipped in).
# SettlementToken exists on development chains only.
_LINKS = {
    "Consortium": {},
    "DatasetRegistry": {"consortium_": "Consortium"},
    "DataUseLicensing": {"consortium_": "Consortium", "registry_": "DatasetRegistry"},
    "ContributionMeter": {"consortium_": "Consortium", "licensing_": "DataUseLicensing"},
    "BenefitDistributor": {"consortium_": "Consortium", "meter_": "ContributionMeter"},
    "ProvenanceAnchor": {"consortium_": "Consortium", "licensing_": "DataUseLicensing"},
    "SettlementToken": {"consortium_": "Consortium"},
}
_OPTIONAL = {"SettlementToken"}


Progress = Callable[[str, int, int], None]  # (stage, done, total)


# ---- transactions ----

@dataclass(frozen=True)
class Transaction:
    """The fields of a signed transaction the verifier needs (EIP-2718 typed or legacy)."""

    raw: bytes
    chain_id: int | None
    nonce: int
    to: bytes
    data: bytes

    @property
    def hash(self) -> bytes:
        return keccak(self.raw)

    @classmethod
    def decode(cls, raw: bytes, where: str) -> Transaction:
        try:
            if raw and raw[0] >= 0xC0:  # legacy: [nonce, gasPrice, gas, to, value, data, v, r, s]
                f = rlp.decode(raw)
                v = int.from_bytes(f[6], "big")
                return cls(raw, (v - 35) // 2 if v >= 35 else None, _uint(f[0]), f[3], f[5])
            if raw and raw[0] in (1, 2, 3, 4):  # [chainId, nonce, (gasPrice | tip, maxFee), gas, to, value, data, ...]
                f = rlp.decode(raw[1:])
                to, data = (f[4], f[6]) if raw[0] == 1 else (f[5], f[7])
                return cls(raw, _uint(f[0]), _uint(f[1]), to, data)
        except (rlp.exceptions.DecodingError, IndexError, TypeError, ValueError):
            pass
        raise VerificationFailed(f"{where} is not a signed transaction", hint="the transaction was altered")

    def sender(self) -> str:
        from eth_account import Account

        try:
            return Account.recover_transaction(self.raw)
        except Exception as exc:  # noqa: BLE001 (hostile input: any failure to recover is a refusal)
            raise VerificationFailed(f"transaction 0x{self.hash.hex()} has no valid signature ({exc})",
                                     hint="the transaction was altered") from None


# solc's CBOR metadata trailer: {"ipfs": <34-byte multihash>, "solc": <3-byte version>}. It hashes
# the metadata of every source the contract imports, so an unchanged contract compiled next to a
# changed one differs only there (Sourcify's "partial match").
_METADATA = re.compile(rb"\xa2\x64ipfs\x58\x22.{34}\x64solc\x43.{3}\x00\x33", re.S)


def _constructor_arguments(name: str, data: bytes) -> dict[str, Any]:
    """The constructor arguments appended to `name`'s creation code (addresses checksummed)."""
    from eth_abi import decode as abi_decode

    from ..contracts import artifact

    inputs = next((e["inputs"] for e in artifact(name)["abi"] if e["type"] == "constructor"), [])
    types = [i["type"] if not i["type"].startswith("tuple") else
             "(" + ",".join(c["type"] for c in i["components"]) + ")" + i["type"][5:] for i in inputs]
    try:
        values = abi_decode(types, data)
    except Exception:  # noqa: BLE001 (hostile input)
        raise VerificationFailed(f"{name}'s constructor arguments do not decode", hint="the bundle was altered") from None
    return {i["name"]: to_checksum_address(v) if i["type"] == "address" else v for i, v in zip(inputs, values)}


def _without_metadata(code: bytes) -> bytes:
    return _METADATA.sub(lambda m: bytes(len(m.group(0))), code)


def _uint(value: bytes) -> int:
    if not isinstance(value, bytes) or value[:1] == b"\0":
        raise ValueError("not a minimal integer")
    return int.from_bytes(value, "big")


def _trie_root(items: Sequence[bytes]) -> bytes:
    trie = HexaryTrie({})
    for index, item in enumerate(items):
        trie[rlp.encode(index)] = item
    return trie.root_hash


# ---- blooms ----

def _bloom_bits(item: bytes) -> tuple[int, int, int]:
    digest = keccak(item)
    return tuple(2047 - (int.from_bytes(digest[i:i + 2], "big") & 2047) for i in (0, 2, 4))  # type: ignore[return-value]


class _BloomQuery:
    """Which headers' logsBloom may hold a log of one of `addresses` with one of `topics`: the
    bloom as 2048 booleans, tested for every wanted item at once (a trail can name thousands of
    licenses and run over many thousands of blocks)."""

    def __init__(self, addresses: Iterable[bytes], topics: Iterable[bytes]) -> None:
        self.addresses = np.array([_bloom_bits(a) for a in addresses], dtype=np.int64).reshape(-1, 3)
        self.topics = np.array([_bloom_bits(t) for t in sorted(set(topics))], dtype=np.int64).reshape(-1, 3)

    def hits(self, bloom: bytes) -> bool:
        if not len(self.topics) or not any(bloom):
            return False
        bits = np.unpackbits(np.frombuffer(bloom, dtype=np.uint8)).astype(bool)
        return bool(bits[self.addresses].all(axis=1).any() and bits[self.topics].all(axis=1).any())


def _topics(events: Iterable[TrailEvent]) -> set[bytes]:
    """The 32-byte topics by which the logs of `events`' subject can be found in a bloom."""
    out: set[bytes] = set()
    for e in events:
        for key in _ID_ARGS:
            value = e.args.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                out.add(value.to_bytes(32, "big"))
        for parent in e.args.get("derivedFrom") or []:
            out.add(int(parent).to_bytes(32, "big"))
        for key in _HOLDER_ARGS:
            value = e.args.get(key)
            if isinstance(value, str):
                out.add(bytes.fromhex(value[2:]).rjust(32, b"\0"))
    return out


# ---- the events a dataset's bundle carries ----

def subject_events(index: EventIndex, dataset_id: int) -> list[TrailEvent]:
    """The dataset's whole trail, the events its license-at-time-of-use check reads and the
    registrations of the datasets derived from it (its lineage downwards), in chain order."""
    from .trail import trail_events

    events = {e.position: e for e in dataset_trail(index, dataset_id, limit=None).events}
    for e in evidence(index, dataset_id):
        events.setdefault(e.position, e)
    # One read of the derived registrations, then the walk down in memory (not a query per level).
    children: dict[int, list[TrailEvent]] = {}
    for e in trail_events(index, "name = 'DatasetRegistered' AND json_array_length(args, '$.derivedFrom') > 0", {}):
        for parent in e.args["derivedFrom"]:
            children.setdefault(parent, []).append(e)
    todo, seen = [dataset_id], {dataset_id}
    while todo:
        for e in children.get(todo.pop(), []):
            events.setdefault(e.position, e)
            if e.args["datasetId"] not in seen:
                seen.add(e.args["datasetId"])
                todo.append(e.args["datasetId"])
    return [events[p] for p in sorted(events)]


def _event_record(e: TrailEvent) -> dict[str, Any]:
    full = event_json(e)
    return {k: full[k] for k in _EVENT_FIELDS}


# ---- building ----

def build_bundle(w3: Web3, index: EventIndex, contracts: Mapping[str, str], dataset_id: int, *,
                 store: ContentStore | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The bundle of `dataset_id`'s trail, read from the node behind `w3` (the index, already
    synced, says which events; the node gives their proofs). The records of access batches are
    read from `store` (IPFS or the embedded store) by their anchored digest; a batch whose records
    it does not hold goes in without them (its root and count are still proven)."""
    from ..index._decode import checksum

    wanted = subject_events(index, dataset_id)
    addresses = {name: checksum(a) for name, a in contracts.items()}
    missing = sorted(_LINKS.keys() - _OPTIONAL - addresses.keys())
    if missing:  # the verifier refuses a partial deployment: say so before reading the chain
        raise AuditError(f"the deployment recorded for this chain has no {', '.join(missing)}",
                         hint="add it with `fullchain chain deploy --meter-only`: a bundle proves the whole deployment")
    head = w3.eth.block_number
    creations = {name: _find_creation(w3, a, head) for name, a in addresses.items()}
    start = min(block for block, _ in creations.values())
    headers = []
    for number in range(start, head + 1):
        headers.append(_fetch_header(w3, number))
        if progress is not None and (number == head or (number - start) % 500 == 0):
            progress("headers", number - start + 1, head - start + 1)
    consensus = _consensus(w3, headers[-1])
    chain_id = w3.eth.chain_id

    needed = {block for block, _ in creations.values()} | {e.block for e in wanted}
    topics = _topics(wanted)
    blocks: dict[int, tuple[list[bytes], list[bytes]]] = {}
    while True:
        query = _BloomQuery([bytes.fromhex(a[2:]) for a in addresses.values()], topics)
        needed |= {h.number for h in headers if query.hits(h.logsBloom)}
        for number in sorted(needed - blocks.keys()):
            blocks[number] = _fetch_block(w3, number)
            if progress is not None:
                progress("blocks", len(blocks), len(needed))
        with _ProvenIndex(headers, blocks, addresses) as proven:
            derived = subject_events(proven.index, dataset_id)
            anchored = _anchored_batches(proven.index, derived)
        more = _topics(derived) - topics
        if not more:
            break
        topics |= more  # a license or licensee first seen in the proofs: look for its blocks too
    _same_events(derived, wanted)

    bundle: dict[str, Any] = {
        "format": FORMAT, "dataset_id": str(dataset_id), "chain_id": chain_id, "consensus": consensus,
        "validators": qbft.parse_extra_data(headers[-1]).validators if consensus == "qbft" else [],
        "contracts": {name: {"address": addresses[name], "block": creations[name][0], "tx_index": creations[name][1]}
                      for name in sorted(addresses)},
        "headers": ["0x" + h.rlp().hex() for h in headers],
        "blocks": {str(n): {"transactions": ["0x" + t.hex() for t in txs], "receipts": ["0x" + r.hex() for r in rs]}
                   for n, (txs, rs) in sorted(blocks.items())},
        "events": [_event_record(e) for e in derived],
        "batches": [],
    }
    for batch_id, (_, anchor) in sorted(anchored.items()):
        document = _batch_document(store, bytes.fromhex(anchor.args["metadataDigest"][2:])) if store else None
        if document is not None:
            bundle["batches"].append({"batch_id": str(batch_id), "document": document.decode()})
    return bundle


def _anchored_batches(index: EventIndex, events: Sequence[TrailEvent]) -> dict[int, tuple[TrailEvent, TrailEvent]]:
    """batch id -> (its AccessBatchAnchored among `events`, the BatchAnchored emitted with it,
    which holds the root, count and digest)."""
    from .trail import trail_events

    access = {e.args["batchId"]: e for e in events if e.name == "AccessBatchAnchored"}
    if not access:
        return {}
    anchors = trail_events(index, "name = 'BatchAnchored' AND block IN (SELECT value FROM json_each(:blocks))",
                           {"blocks": json.dumps(sorted({e.block for e in access.values()}))})
    found = {a.args["batchId"]: a for a in anchors}
    out = {}
    for batch_id, e in access.items():
        anchor = found.get(batch_id)
        if anchor is None or anchor.tx_hash != e.tx_hash or anchor.address != e.address:
            raise VerificationFailed(f"access batch {batch_id} has no BatchAnchored event in its transaction",
                                     hint="the batch's log was altered")
        out[batch_id] = (e, anchor)
    return out


def _batch_document(store: ContentStore, digest: bytes) -> bytes | None:
    from ..errors import ContentNotFound
    from .anchor import fetch_records_document

    try:
        return fetch_records_document(store, digest)[1]
    except ContentNotFound:
        return None  # carried without its records: the verifier says so


def _fetch_header(w3: Web3, number: int) -> BlockHeader:
    from .headers import fetch_header

    return fetch_header(w3, number)


def _consensus(w3: Web3, head: BlockHeader) -> str:
    served = bytes(w3.eth.get_block(head.number)["hash"])
    if head.hash() == served:
        return "ethereum"
    try:
        if qbft.block_hash(head) == served:
            return "qbft"
    except VerificationFailed:
        pass
    raise AuditError(f"block {head.number}'s header hashes neither as Ethereum nor as QBFT to the node's hash",
                     hint="the node serves headers this SDK cannot verify")


def _fetch_block(w3: Web3, number: int) -> tuple[list[bytes], list[bytes]]:
    block = w3.eth.get_block(number)
    raws = []
    for tx_hash in block["transactions"]:
        answer = w3.provider.make_request("eth_getRawTransactionByHash", ["0x" + bytes(tx_hash).hex()])
        raw = answer.get("result") if isinstance(answer, dict) else None
        if not isinstance(raw, str):
            raise AuditError(f"the node does not serve raw transactions (eth_getRawTransactionByHash): {answer}",
                             hint="build the bundle against a node that does (geth, anvil, the embedded chain)")
        raws.append(bytes.fromhex(raw[2:]))
    receipts = [r.encode() for r in fetch_block_receipts(w3, number)]
    return raws, receipts


def _find_creation(w3: Web3, address: str, head: int) -> tuple[int, int]:
    """(block, transaction index) of the transaction that created `address`: the first block
    with code there (a binary search over historical state), then its receipts."""
    def code_at(block: int) -> bytes:
        try:
            return bytes(w3.eth.get_code(address, block))
        except Exception as exc:  # noqa: BLE001 (web3, transport and node errors alike)
            raise AuditError(f"the node cannot give the code of {address} at block {block} ({exc})",
                             hint="bundles find each contract's creation in historical state: use an archive node"
                             ) from None

    if not code_at(head):
        raise AuditError(f"no contract at {address}", hint="the deployment record names a contract that is not there")
    low, high = 0, head
    while low < high:  # log2(head) calls, whatever the chain's length
        mid = (low + high) // 2
        if code_at(mid):
            high = mid
        else:
            low = mid + 1
    block = w3.eth.get_block(low)
    for position, tx_hash in enumerate(block["transactions"]):
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        if receipt.get("contractAddress") and to_checksum_address(receipt["contractAddress"]) == address:
            return low, position
    raise AuditError(f"contract {address} was not created by a transaction of block {low} (a factory?)",
                     hint="bundles prove contracts deployed by their own transactions")


def _same_events(derived: Sequence[TrailEvent], wanted: Sequence[TrailEvent]) -> None:
    theirs = {e.position: _event_record(e) for e in wanted}
    ours = {e.position: _event_record(e) for e in derived}
    for position in sorted(theirs.keys() ^ ours.keys()):
        side = "the index holds an event" if position in theirs else "the chain holds an event the index lacks"
        raise AuditError(f"{side} at block {position[0]}, log {position[2]} that the other does not",
                         hint="rebuild the index (`fullchain chain sync --rebuild`) and make the bundle again")
    for position, record in ours.items():
        if theirs[position] != record:
            raise AuditError(f"the index and the chain disagree on the event at block {position[0]}, log {position[2]}",
                             hint="rebuild the index (`fullchain chain sync --rebuild`) and make the bundle again")


# ---- proven events in an index of their own ----

class _ProvenIndex:
    """An EventIndex (in a temporary directory) holding exactly the deployment contracts' logs
    from `blocks`, filed by the same code as the node-fed index, so that the trail and the check
    run unchanged over what the bundle proves."""

    def __init__(self, headers: Sequence[BlockHeader], blocks: Mapping[int, tuple[list[bytes], list[bytes]]],
                 addresses: Mapping[str, str], hash_of: Callable[[BlockHeader], bytes] = BlockHeader.hash,
                 chain_id: int | None = None) -> None:
        from ..index import EventIndex
        from ..index._schema import set_meta
        from ..index._sync import store_event

        self._dir = Path(tempfile.mkdtemp(prefix="fullchain-bundle-"))
        # Named and labelled as a node-fed index is (`<chain id>-<genesis>`, its contracts), so that
        # exports name the deployment; the genesis hash is not in a bundle: "unknown".
        self.index = EventIndex(self._dir / f"{chain_id if chain_id is not None else 'unknown'}-unknown.sqlite")
        set_meta(self.index._conn, "contracts", json.dumps(dict(sorted(addresses.items()))))  # noqa: SLF001
        by_number = {h.number: h for h in headers}
        by_address = {a.lower(): name for name, a in addresses.items()}
        conn = self.index._conn  # noqa: SLF001 (filled like the syncer fills it, in one transaction)
        conn.execute("BEGIN IMMEDIATE")
        for number in sorted(blocks):
            header = by_number[number]
            raws, receipts = blocks[number]
            log_index = 0
            for tx_index, (raw, encoded) in enumerate(zip(raws, receipts)):
                tx_hash = "0x" + keccak(raw).hex()
                for log in Receipt.decode(encoded).logs:
                    address = "0x" + log.address.hex()
                    contract = by_address.get(address)
                    if contract is not None:
                        store_event(conn, contract, address, number, tx_index, log_index, tx_hash, header.timestamp,
                                    list(log.topics), log.data)
                    log_index += 1
        # The blocks the index holds, and the last header: what "as of" and "now" are judged by.
        known = {n: by_number[n] for n in blocks} | {headers[-1].number: headers[-1]}
        conn.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?)",
                         [(n, "0x" + hash_of(h).hex(), h.timestamp) for n, h in sorted(known.items())])
        conn.execute("COMMIT")

    def __enter__(self) -> _ProvenIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# ---- verifying ----

@dataclass
class BundleReport:
    """What `verify_bundle` checked, one line per kind of check, and the license check's verdicts."""

    dataset_id: int
    checks: list[tuple[str, str]] = field(default_factory=list)
    check: CheckReport | None = None
    trusted: str = ""
    trusted_by: str = ""  # "--trust-block", "validators" or "bundle" (its own last header)
    on_check: Callable[[str, str], None] | None = None

    def add(self, what: str, result: str) -> None:
        self.checks.append((what, result))
        if self.on_check is not None:
            self.on_check(what, result)


class VerifiedBundle:
    """A bundle that verified: its report, the proven events and an index of them (to show or
    export the trail offline). Close it (or use `with`) to delete the index."""

    def __init__(self, report: BundleReport, events: list[TrailEvent], proven: _ProvenIndex) -> None:
        self.report = report
        self.events = events
        self._proven = proven
        self.index = proven.index

    def __enter__(self) -> VerifiedBundle:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._proven.close()


def write_bundle(bundle: Mapping[str, Any], path: Path) -> int:
    """Write `bundle` to `path` whole or not at all (a temporary file renamed over it); its size."""
    import os

    path = Path(path)
    data = json.dumps(bundle, separators=(",", ":"), sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AuditError(f"cannot write the bundle to {path} ({exc.strerror})",
                         hint="choose a writable path with -o") from None
    return len(data)


def load_bundle(path: Path) -> dict[str, Any]:
    try:
        data = parse_json(Path(path).read_bytes(), f"the bundle {path}",
                          hint="give a file written by `fullchain audit bundle`, unaltered")
    except OSError as exc:
        raise AuditError(f"cannot read the bundle {path} ({exc.strerror})", hint="check the path") from None
    if not isinstance(data, dict):
        raise VerificationFailed(f"the bundle {path} is not a JSON object", hint="give a file written by "
                                                                                  "`fullchain audit bundle`")
    return data


def verify_bundle(bundle: Mapping[str, Any], *, trust_block: bytes | None = None,
                  validators: Sequence[str] | None = None, deployment: Mapping[str, str] | None = None,
                  on_check: Callable[[str, str], None] | None = None) -> VerifiedBundle:
    """Check `bundle` with no node and no network; VerificationFailed names the first failure.

    `trust_block`: the hash of the block you trust (from a node or members you trust); without it
    the bundle's last header is taken as given, and the report says so. `validators`: the QBFT
    validator set; each header's commit seals must then come from ceil(2n/3) of them.
    `deployment`: contract name -> address of the consortium's deployment as you know it (the
    JSON members share); the bundle's contracts must be exactly those. `on_check`
    hears each check as it passes (what, result), so a failure can be shown after what held."""
    try:
        return _verify(bundle, trust_block, validators, deployment, on_check)
    except VerificationFailed:
        raise
    except UnknownDataset:
        raise VerificationFailed(f"dataset {bundle.get('dataset_id')} is not registered in the bundle's blocks",
                                 hint="the bundle's dataset_id was altered, or its registration removed") from None
    except Exception as exc:  # noqa: BLE001 (hostile input: anything that does not parse is a refusal)
        raise VerificationFailed(f"the bundle is malformed ({type(exc).__name__}: {exc})",
                                 hint="give a file written by `fullchain audit bundle`, unaltered") from None


def _verify(bundle: Mapping[str, Any], trust_block: bytes | None, validators: Sequence[str] | None,
            deployment: Mapping[str, str] | None, on_check: Callable[[str, str], None] | None) -> VerifiedBundle:
    from ..contracts import artifact
    from ..index._decode import checksum

    if bundle.get("format") != FORMAT:
        raise VerificationFailed(f"not a {FORMAT} bundle (format {bundle.get('format')!r})",
                                 hint="give a file written by `fullchain audit bundle`")
    dataset_id = _int_text(bundle["dataset_id"], "dataset_id")
    report = BundleReport(dataset_id=dataset_id, on_check=on_check)
    consensus = bundle["consensus"]
    if consensus not in CONSENSUS:
        raise VerificationFailed(f"consensus {consensus!r} is not one of {', '.join(CONSENSUS)}",
                                 hint="the bundle was altered")
    hash_of = qbft.block_hash if consensus == "qbft" else BlockHeader.hash

    # 1. Headers: parsed, linked parent to child, up to the trusted block.
    headers = [BlockHeader.from_rlp(_hex(h, f"header {i}")) for i, h in enumerate(bundle["headers"])]
    if not headers:
        raise VerificationFailed("the bundle has no headers", hint="the bundle was altered")
    last = hash_of(headers[-1])
    if trust_block is not None:
        report.trusted, report.trusted_by = "0x" + bytes(trust_block).hex(), "--trust-block"
    else:
        report.trusted, report.trusted_by = "0x" + last.hex(), "bundle"
    hashes = verify_header_chain(headers, trust_block if trust_block is not None else last, hash_function=hash_of)
    report.add("headers", f"{len(headers)} headers, blocks {headers[0].number}-{headers[-1].number}, each "
                          f"parentHash the hash of the one before ({consensus} hashing), the last "
                          f"0x{hashes[-1].hex()}" + (" = the trusted block" if trust_block is not None
                                                     else " (not compared with a block you trust: --trust-block)"))
    # QBFT: the validator set the bundle states is the one its last header lists (hashed into it);
    # seals are checked against the set given, or against the trusted header's own set.
    stated = bundle["validators"]
    if consensus == "qbft":
        listed = qbft.parse_extra_data(headers[-1]).validators
        if stated != listed:
            raise VerificationFailed(f"the bundle's validators {stated} are not those its last header lists {listed}",
                                     hint="the bundle's validator set was altered")
    elif stated != []:
        raise VerificationFailed("the bundle lists validators but its chain is not QBFT", hint="the bundle was altered")
    if validators and consensus != "qbft":
        raise VerificationFailed("validators were given but the bundle's chain is not QBFT",
                                 hint="commit seals exist on QBFT chains only; drop --validators")
    sealers = list(validators) if validators else (stated if consensus == "qbft" and trust_block is not None else None)
    if sealers:
        for header in headers:
            qbft.verify_qbft_header(header, sealers)
        source = "given" if validators else "listed in the trusted block"
        report.add("commit seals", f"every header sealed by at least {qbft.quorum(len(set(sealers)))} of the "
                                   f"{len(set(sealers))} validators {source}")
        report.trusted_by = "validators" if trust_block is None else report.trusted_by
    elif consensus == "qbft":
        report.add("commit seals", "not checked (give the validator set with --validators, or --trust-block)")

    # 2. Blocks: the transactions and receipts rebuild the header's roots.
    by_number = {h.number: h for h in headers}
    chain_id = bundle["chain_id"]
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        raise VerificationFailed("chain_id is not a number", hint="the bundle was altered")
    blocks: dict[int, tuple[list[bytes], list[bytes]]] = {}
    txs: dict[int, list[Transaction]] = {}
    for key, block in bundle["blocks"].items():
        number = _int_text(key, "block number")
        header = by_number.get(number)
        if header is None:
            raise VerificationFailed(f"block {number} is outside the bundle's headers",
                                     hint="the bundle was altered")
        raws = [_hex(t, f"block {number} transaction {i}") for i, t in enumerate(block["transactions"])]
        receipts = [_hex(r, f"block {number} receipt {i}") for i, r in enumerate(block["receipts"])]
        if len(raws) != len(receipts):
            raise VerificationFailed(f"block {number} has {len(raws)} transactions but {len(receipts)} receipts",
                                     hint="the bundle was altered")
        if _trie_root(raws) != header.transactionsRoot:
            raise VerificationFailed(f"block {number}'s transactions do not build its transactionsRoot "
                                     f"0x{header.transactionsRoot.hex()}", hint="a transaction was altered, added or "
                                                                                 "left out, or belongs to another block")
        if _trie_root(receipts) != header.receiptsRoot:
            raise VerificationFailed(f"block {number}'s receipts do not build its receiptsRoot "
                                     f"0x{header.receiptsRoot.hex()}", hint="a receipt or event was altered, added or "
                                                                             "left out, or belongs to another block")
        txs[number] = [Transaction.decode(r, f"block {number} transaction {i}") for i, r in enumerate(raws)]
        for t in txs[number]:
            if t.chain_id is not None and t.chain_id != chain_id:
                raise VerificationFailed(f"transaction 0x{t.hash.hex()} is signed for chain {t.chain_id}, "
                                         f"not {chain_id}", hint="the bundle's chain_id was altered")
        blocks[number] = (raws, receipts)
    report.add("blocks", f"{len(blocks)} blocks: their transactions and receipts rebuild each header's "
                         "transactionsRoot and receiptsRoot (chain id {chain_id} in every signature)"
               .replace("{chain_id}", str(chain_id)))

    # 3. Contracts: the whole deployment, each created by a proven transaction with this SDK's
    # code and wired to the others.
    named = set(bundle["contracts"])
    if named - _LINKS.keys() or _LINKS.keys() - _OPTIONAL - named:
        raise VerificationFailed(f"the bundle's contracts ({', '.join(sorted(named))}) are not a fullchain deployment "
                                 f"(it has {', '.join(sorted(_LINKS.keys() - _OPTIONAL))})",
                                 hint="a contract was left out or added: its events would be missing or foreign")
    addresses: dict[str, str] = {}
    matches: dict[str, str] = {}
    creators: dict[str, str] = {}
    arguments: dict[str, dict[str, Any]] = {}
    for name, entry in bundle["contracts"].items():
        address = checksum(entry["address"])
        number, position = entry["block"], entry["tx_index"]
        if number not in txs or not isinstance(position, int) or not 0 <= position < len(txs[number]):
            raise VerificationFailed(f"the transaction creating {name} (block {number}, index {position}) is "
                                     "not in the bundle", hint="the bundle was altered")
        tx = txs[number][position]
        creators[name] = tx.sender()
        created = to_checksum_address(keccak(rlp.encode([bytes.fromhex(creators[name][2:]), tx.nonce]))[12:])
        if tx.to or created != address:
            raise VerificationFailed(f"{name}: transaction {position} of block {number} created "
                                     f"{created if not tx.to else 'no contract'}, not {address}",
                                     hint="the bundle's contract address was altered")
        if Receipt.decode(blocks[number][1][position]).status != 1:
            raise VerificationFailed(f"{name}: the transaction creating {address} failed",
                                     hint="the bundle was altered")
        try:
            code = bytes.fromhex(artifact(name)["bytecode"].removeprefix("0x"))
        except (FileNotFoundError, OSError):
            raise VerificationFailed(f"{name} is not a contract this SDK knows",
                                     hint="the bundle was altered, or made by another version") from None
        if tx.data.startswith(code):
            matches[name] = "exact"
        elif _without_metadata(tx.data[:len(code)]) == _without_metadata(code):
            matches[name] = "partial"
        else:
            raise VerificationFailed(f"{name} at {address} was created with other code than this SDK's {name}",
                                     hint="a different contract, or another fullchain version: verify with the "
                                          "version that deployed it")
        addresses[name] = address
        arguments[name] = _constructor_arguments(name, tx.data[len(code):])
    for name, links in _LINKS.items():
        for argument, target in links.items():
            if name in addresses and arguments[name].get(argument) != addresses[target]:
                raise VerificationFailed(f"{name} {addresses[name]} was created for {target} "
                                         f"{arguments[name].get(argument)}, not the bundle's {addresses[target]}",
                                         hint="the bundle mixes contracts of different deployments")
    if deployment is not None:
        pinned = {n: checksum(a) for n, a in deployment.items()}
        if pinned != addresses:
            differ = sorted(n for n in pinned.keys() | addresses.keys() if pinned.get(n) != addresses.get(n))
            raise VerificationFailed(f"the bundle's contracts are not the deployment given: {', '.join(differ)} "
                                     "differ", hint="the bundle is of another deployment, or was altered")
    first_creation = min(entry["block"] for entry in bundle["contracts"].values()) if addresses else None
    if first_creation != headers[0].number:
        raise VerificationFailed(f"the headers start at block {headers[0].number}, not at the first contract's "
                                 f"creation (block {first_creation})", hint="the bundle was altered")
    partial = sorted(n for n, m in matches.items() if m == "partial")
    report.add("contracts", f"the deployment of Consortium {addresses['Consortium']} (created by "
                            f"{creators['Consortium']}): {len(addresses)} contracts, each created by a proven "
                            "transaction with this SDK's compiled code and wired to the others: "
                            + ", ".join(f"{n} {a}" for n, a in sorted(addresses.items()))
               + (f" (the same code, compiled from other source metadata: {', '.join(partial)})" if partial else "")
               + (" = the deployment given" if deployment is not None else
                  " (not compared with a deployment you know: --deployment)"))

    # 4. Events: derived from the proven logs, compared field by field with what the bundle states.
    proven = _ProvenIndex(headers, blocks, addresses, hash_of, chain_id)
    try:
        derived = subject_events(proven.index, dataset_id)
        _compare_events(bundle["events"], derived)
        report.add("events", f"{len(derived)} events, each field equal to its log's under the receiptsRoot")

        # 5. Completeness: every block whose bloom may hold one of the subject's logs is included.
        query = _BloomQuery([bytes.fromhex(a[2:]) for a in addresses.values()], _topics(derived))
        for header in headers:
            if header.number not in blocks and query.hits(header.logsBloom):
                raise VerificationFailed(
                    f"block {header.number}'s logsBloom shows it may hold an event about dataset {dataset_id}, "
                    "but the bundle leaves the block out", hint="an event was removed from the bundle")
        report.add("completeness", f"none of the {len(headers) - len(blocks)} blocks left out may hold an event "
                                   "naming the dataset, its ancestors, licenses or licensees (their logsBloom)")

        # 6. License at time of use, replayed over the proven events.
        result = check_events(derived, dataset_id)
        report.check = result
        if not result.ok:
            bad = result.uncovered[0]
            rules = "; ".join(f"{v.rule}: {v.detail}" for v in bad.violations)
            raise VerificationFailed(f"license at time of use: the access at block {bad.access.block} (license "
                                     f"{bad.license_id}, {bad.licensee}) was not covered ({rules})",
                                     hint=f"{len(result.uncovered)} of {result.accesses} accesses not covered: "
                                          "see `fullchain audit check` for the list")
        report.add("license at time of use", f"{result.accesses} of {result.accesses} recorded accesses covered by "
                                             "a valid license at their block" if result.accesses else
                   "no recorded accesses to check")
        # 7. Batches: records under their anchored roots, made within their license's grant.
        _verify_batches(bundle["batches"], _anchored_batches(proven.index, derived), derived, report)
    except BaseException:
        proven.close()
        raise
    return VerifiedBundle(report, derived, proven)


def _compare_events(stated: Sequence[Mapping[str, Any]], derived: Sequence[TrailEvent]) -> None:
    ours = {e.position: _event_record(e) for e in derived}
    seen: set[tuple[int, int, int]] = set()
    for i, event in enumerate(stated):
        position = (event.get("block"), event.get("tx_index"), event.get("log_index"))
        record = ours.get(position)  # type: ignore[arg-type]
        if record is None or position in seen:
            raise VerificationFailed(f"event {i} ({event.get('name')} at block {position[0]}, log {position[2]}) is "
                                     "not a proven event about the dataset", hint="the event was altered or added")
        seen.add(position)  # type: ignore[arg-type]
        for key in _EVENT_FIELDS:
            if event.get(key) != record[key]:
                raise VerificationFailed(f"event {i} ({record['name']} at block {position[0]}): its {key} differs "
                                         "from the proven log's", hint="the event was altered")
        if set(event) - set(_EVENT_FIELDS):
            raise VerificationFailed(f"event {i} carries unverifiable fields {sorted(set(event) - set(_EVENT_FIELDS))}",
                                     hint="the event was altered")
    missing = sorted(ours.keys() - seen)
    if missing:
        block, _, log = missing[0]
        raise VerificationFailed(f"the proven {ours[missing[0]]['name']} event at block {block}, log {log} is "
                                 "missing from the bundle's events", hint="an event was removed from the bundle")


def _verify_batches(batches: Sequence[Mapping[str, Any]], anchored: Mapping[int, tuple[TrailEvent, TrailEvent]],
                    derived: Sequence[TrailEvent], report: BundleReport) -> None:
    """Each access batch's records document: the one anchored (its digest), a tree of access
    records whose root and count are the anchored ones, each record about the batch's license,
    version and kind, and made between the license's first grant and the anchoring."""
    from .anchor import ACCESS_RECORD_ENCODING, records_digest
    from .merkle import StandardMerkleTree

    granted: dict[int, int] = {}
    for e in derived:
        if e.name == "LicenseGranted":
            granted.setdefault(e.args["licenseId"], int(e.timestamp.timestamp()))
    records = 0
    seen: set[int] = set()
    for entry in batches:
        batch_id = _int_text(entry["batch_id"], "batch_id")
        if batch_id not in anchored or batch_id in seen:
            raise VerificationFailed(f"batch {batch_id} is not a proven access batch of this trail",
                                     hint="the bundle was altered")
        seen.add(batch_id)
        access, anchor = anchored[batch_id]
        document = entry["document"].encode()
        if "0x" + records_digest(document).hex() != anchor.args["metadataDigest"]:
            raise VerificationFailed(f"batch {batch_id}: its records document is not the one anchored (digest "
                                     f"{anchor.args['metadataDigest']})", hint="a batch record was altered")
        data = parse_json(document, f"batch {batch_id}'s records document")
        if not isinstance(data, dict) or data.get("leafEncoding") != ACCESS_RECORD_ENCODING:
            raise VerificationFailed(f"batch {batch_id}: not access records", hint="the bundle was altered")
        tree = StandardMerkleTree.load(data)
        if "0x" + tree.root.hex() != anchor.args["root"] or len(tree) != anchor.args["count"]:
            raise VerificationFailed(f"batch {batch_id}: its {len(tree)} records are not under the anchored root "
                                     f"{anchor.args['root']} ({anchor.args['count']} records)",
                                     hint="a batch record was altered, added or removed")
        a = access.args
        low, high = granted.get(a["licenseId"]), int(access.timestamp.timestamp())
        for i, (value, _) in enumerate(tree.values):
            license_id, version, kind, accessed_at = (int(x) for x in value[:4])
            if (license_id, version, kind) != (a["licenseId"], a["version"], a["kind"]):
                raise VerificationFailed(f"batch {batch_id} record {i} is about license {license_id} version "
                                         f"{version} kind {kind}, not the batch's", hint="a batch record was altered")
            if low is None or not low <= accessed_at <= high:
                raise VerificationFailed(f"batch {batch_id} record {i}: accessed at {accessed_at}, outside license "
                                         f"{license_id}'s grant ({low}) to the anchoring ({high})",
                                         hint="the licensee recorded an access its license did not cover then")
        records += len(tree)
    if batches:
        report.add("batches", f"{len(batches)} access batches, {records} records: each document the anchored "
                              "one, under its Merkle root, within its license's grant")
    missing = len(anchored) - len(seen)
    if missing > 0:
        report.add("batches not included", f"{missing} anchored batches whose records the bundle does not carry "
                                           "(their roots and counts are proven; their records are not shown)")


def load_validators(path: Path) -> list[str]:
    """The QBFT validator set from a file: a JSON list of addresses, a Besu genesis file (the
    validators in its extraData, as `fullchain node-config besu` writes it), or one address per line."""
    from ..nodeconfig.extradata import decode_extra_data

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"cannot read the validators file {path} ({exc.strerror})", hint="check the path") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if isinstance(data, dict) and isinstance(data.get("extraData"), str):
        data = decode_extra_data(bytes.fromhex(data["extraData"].removeprefix("0x"))).validators
    if not isinstance(data, list) or not data or not all(isinstance(v, str) for v in data):
        raise AuditError(f"{path} holds no validator list",
                         hint="give a JSON list of addresses, a Besu genesis.json, or one address per line")
    return [qbft.checked_address(v) for v in data]


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise VerificationFailed(f"{what} is not 0x-prefixed hex", hint="the bundle was altered")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise VerificationFailed(f"{what} is not hex", hint="the bundle was altered") from None


def _int_text(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise VerificationFailed(f"{what} {value!r} is not a decimal number", hint="the bundle was altered")
