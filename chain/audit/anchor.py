"""The ProvenanceAnchor contract from the SDK: deploy it, anchor a batch's Merkle root, read it back,
and record a licensee's uses of a dataset as one access batch.

An access batch is a StandardMerkleTree over records encoded as ACCESS_RECORD_ENCODING:
(licenseId, version, kind, accessedAt unix seconds, detailDigest = sha256 of the licensee's
description of the read, or zero). Its `dump()` JSON, canonical (sorted keys, no spaces), goes to
the profile's content store; the anchored `metadataDigest` is the sha2-256 digest inside that
content's CID, so an auditor fetches the records by CID (`records_cid`, `load_access_batch`) and
re-derives the anchored root from them. Descriptions never leave the machine in clear.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from ..contracts import DATA_USE_LICENSING, bind, decode_revert, deploy_contract, revert_bytes
from ..errors import ContentNotFound, InvalidInput, NotAuthorized, TransactionReverted, VerificationFailed
from ..storage import cid as cids
from ..storage import compute_cid
from .merkle import StandardMerkleTree
from .untrusted import parse_json

if TYPE_CHECKING:
    from ..storage import ContentStore
    from ..transactions import Transactor

PROVENANCE_ANCHOR = "ProvenanceAnchor"

# One access record, as an OpenZeppelin StandardMerkleTree leaf: (licenseId, version, kind,
# accessedAt unix seconds, detailDigest).
ACCESS_RECORD_ENCODING = ["uint256", "uint32", "uint8", "uint64", "bytes32"]
# DataUseLicensing's access kinds (recordAccess and anchorAccesses take the number).
ACCESS_KINDS = {"fetch": 0, "compute": 1, "export": 2}
ZERO32 = b"\0" * 32
_UINT64 = 2**64 - 1
_LOG_FORMAT = 'each line is a JSON object {"time": ISO 8601 time or unix seconds, "detail": "free text"}'


class BatchKind(IntEnum):
    """What a batch's records are (the contract's `kind`; 0 is reserved)."""

    ACCESS = 1  # bulk access logs a license allows to be recorded in batches (anchorAccesses only)
    COMPUTE = 2  # compute job records
    METERING = 3  # measurement evidence behind metering records


@dataclass(frozen=True)
class Batch:
    batch_id: int
    member: str
    kind: int
    count: int
    anchored_at: int
    block_number: int
    root: bytes
    metadata_digest: bytes


def deploy_anchor(tx: Transactor, w3: Web3, consortium: str, licensing: str) -> tuple[str, int]:
    """Deploy a ProvenanceAnchor for the members of `consortium` and the licenses of `licensing`
    (a DataUseLicensing); returns its address and block."""
    return deploy_contract(tx, w3, PROVENANCE_ANCHOR, Web3.to_checksum_address(consortium),
                           Web3.to_checksum_address(licensing))


# ---- access records ----

def access_batch_tree(license_id: int, version: int, kind: int,
                      records: Iterable[tuple[int, bytes]]) -> StandardMerkleTree:
    """The tree of an access batch: one leaf per (accessedAt, detailDigest) record, in the
    order given (the tree sorts its leaves; `tree.values` keeps this order)."""
    if not 0 <= kind <= max(ACCESS_KINDS.values()):
        raise InvalidInput(f"access kind {kind} is not one of {sorted(ACCESS_KINDS.values())}",
                           hint="0 fetch, 1 compute, 2 export")
    values = []
    for i, record in enumerate(records):
        try:
            accessed_at, detail = record
        except (TypeError, ValueError):
            raise InvalidInput(f"access record {i} is not an (accessedAt, detailDigest) pair",
                               hint="give (unix seconds, 32-byte sha256 digest or zero) pairs") from None
        if isinstance(accessed_at, bool) or not isinstance(accessed_at, int) or not 0 <= accessed_at <= _UINT64:
            raise InvalidInput(f"access record {i}: time {accessed_at!r} is not unix seconds",
                               hint="give the time of the read as whole seconds since 1970-01-01 UTC")
        if not isinstance(detail, (bytes, bytearray)) or len(detail) != 32:
            raise InvalidInput(f"access record {i}: the detail digest is not 32 bytes",
                               hint="give the sha256 digest of the read's description, or 32 zero bytes")
        values.append([license_id, version, kind, accessed_at, bytes(detail)])
    if not values:
        raise InvalidInput("an access batch needs at least one record", hint="give the reads to record")
    return StandardMerkleTree.of(values, ACCESS_RECORD_ENCODING)


def records_document(tree: StandardMerkleTree) -> bytes:
    """The tree's `dump()` as canonical JSON (sorted keys, no spaces): the bytes that are stored."""
    return json.dumps(tree.dump(), sort_keys=True, separators=(",", ":")).encode()


def records_digest(document: bytes) -> bytes:
    """The sha2-256 digest inside the CID a content store gives `document`: the batch's
    anchored `metadataDigest`."""
    return cids.digest_of(cids.parse(compute_cid([document])))


def records_cid(digest: bytes, codec: int = cids.RAW) -> str:
    """The CID of an access batch's records from its anchored `metadataDigest`. A document of
    up to one chunk (256 KiB) is a raw block (the default `codec`); a larger one is a UnixFS file
    (`cids.DAG_PB`): the digest alone does not say which, `load_access_batch` tries both."""
    if len(digest) != 32 or digest == ZERO32:
        raise InvalidInput(f"0x{bytes(digest).hex()} is not the digest of an access batch's records",
                           hint="give the batch's metadataDigest (32 bytes, not zero)")
    return cids.to_str(cids.make_cid(codec, bytes(digest)))


def find_records_cid(store: ContentStore, digest: bytes) -> str | None:
    """The CID under which `store` holds the records whose digest is `digest` (raw block or
    UnixFS file: see `records_cid`), None if it holds neither."""
    for codec in (cids.RAW, cids.DAG_PB):
        cid = records_cid(digest, codec)
        if store.has(cid):
            return cid
    return None


def fetch_records_document(store: ContentStore, digest: bytes) -> tuple[str, bytes]:
    """The CID and bytes of the records document anchored with `digest` (either codec), checked
    to hash to it. ContentNotFound if the store holds neither CID."""
    cid = find_records_cid(store, digest)
    if cid is None:
        raise ContentNotFound(f"the records of the batch with digest 0x{bytes(digest).hex()} are not in the "
                              f"content store (CID {records_cid(digest)} or {records_cid(digest, cids.DAG_PB)})",
                              hint="ask the member that anchored the batch to provide them (pin its CID)")
    document = b"".join(store.cat(cid))
    if records_digest(document) != bytes(digest):
        raise VerificationFailed(f"the content stored under {cid} does not hash to the anchored digest",
                                 hint="the store returned other bytes; fetch the records from another node")
    return cid, document


def load_access_batch(store: ContentStore, digest: bytes, *, root: bytes | None = None) -> StandardMerkleTree:
    """The records of the access batch whose `metadataDigest` is `digest`, from `store`: the
    content must hash to `digest`, be a StandardMerkleTree dump of ACCESS_RECORD_ENCODING records
    whose every node re-derives (VerificationFailed otherwise) and, given the anchored `root`,
    lead to it. ContentNotFound if the store holds neither CID."""
    cid, document = fetch_records_document(store, digest)
    data = parse_json(document, f"the records under {cid}")
    if not isinstance(data, dict) or data.get("leafEncoding") != ACCESS_RECORD_ENCODING:
        raise VerificationFailed(f"the document under {cid} is not an access batch "
                                 f"(leaf encoding {data.get('leafEncoding') if isinstance(data, dict) else None!r})",
                                 hint=f"an access batch's records are encoded as {ACCESS_RECORD_ENCODING}")
    tree = StandardMerkleTree.load(data)
    if root is not None and tree.root != bytes(root):
        raise VerificationFailed(f"the records under {cid} lead to root 0x{tree.root.hex()}, not the anchored "
                                 f"0x{bytes(root).hex()}", hint="the records do not belong to this batch")
    return tree


EVIDENCE_RECORD_ENCODING = ["bytes32"]


def evidence_document(records: Sequence[Any]) -> tuple[StandardMerkleTree, bytes]:
    """A batch of compute job records or measurement evidence (JSON objects): the tree over each
    record's SHA-256 (of its canonical JSON) and the document stored, `{"records": [...], "tree":
    dump}` as canonical JSON. A record's inclusion is then provable by its digest alone, without
    showing the others."""
    if not records:
        raise InvalidInput("a batch needs at least one record", hint="give one JSON object per record")
    canonical = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput(f"record {i + 1} is not a JSON object", hint="give one JSON object per record")
        canonical.append(json.loads(json.dumps(record, sort_keys=True, separators=(",", ":"))))
    tree = StandardMerkleTree.of([[_record_digest(r)] for r in canonical], EVIDENCE_RECORD_ENCODING)
    document = json.dumps({"records": canonical, "tree": tree.dump()}, sort_keys=True, separators=(",", ":"))
    return tree, document.encode()


def load_evidence_batch(store: ContentStore, digest: bytes, *, root: bytes | None = None
                        ) -> tuple[list[dict[str, Any]], StandardMerkleTree]:
    """The records of an evidence batch whose anchored `metadataDigest` is `digest`, from `store`:
    the document must hash to it, every record's digest be a leaf of its tree in order, and the
    tree lead to the anchored `root` (VerificationFailed otherwise)."""
    cid, document = fetch_records_document(store, digest)
    data = parse_json(document, f"the records under {cid}")
    try:
        records, tree = data["records"], StandardMerkleTree.load(data["tree"])
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationFailed(f"the document under {cid} is not an evidence batch ({exc})",
                                 hint="an evidence batch is {records, tree}") from None
    if [[_record_digest(r)] for r in records] != [v for v, _ in tree.values]:
        raise VerificationFailed(f"the records under {cid} are not the leaves of its tree",
                                 hint="a record was altered")
    if root is not None and tree.root != bytes(root):
        raise VerificationFailed(f"the records under {cid} lead to root 0x{tree.root.hex()}, not the anchored "
                                 f"0x{bytes(root).hex()}", hint="the records do not belong to this batch")
    return records, tree


def read_records(path: Path) -> list[Any]:
    """One JSON value per non-empty line of the file at `path` (JSON lines)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path} ({getattr(exc, 'strerror', None) or exc})",
                           hint="give a UTF-8 file of JSON lines") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise InvalidInput(f"{path} line {number} is not JSON ({exc.msg})",
                               hint="give one JSON object per line") from None
    return out


def _record_digest(record: Any) -> bytes:
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).digest()


def read_access_log(path: Path) -> list[tuple[int, bytes]]:
    """`parse_access_log` over the lines of the file at `path` (UTF-8)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text", hint=_LOG_FORMAT) from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", hint="give the access log's path") from None
    return parse_access_log(text.splitlines(), source=str(path))


def parse_access_log(lines: Iterable[str], *, source: str = "the access log") -> list[tuple[int, bytes]]:
    """(accessedAt, detailDigest) records from JSON lines `{"time": ..., "detail": "..."}`:
    `time` in unix seconds or ISO 8601 (UTC unless it says otherwise), `detail` free text that
    is hashed with sha256 here (a missing or empty detail gives the zero digest). Blank lines
    are skipped; InvalidInput names the first bad line."""
    records = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise InvalidInput(f"{source}, line {n}: not JSON", hint=_LOG_FORMAT) from None
        if not isinstance(item, dict) or "time" not in item:
            raise InvalidInput(f"{source}, line {n}: no \"time\"", hint=_LOG_FORMAT)
        unknown = sorted(set(item) - {"time", "detail"})
        if unknown:
            raise InvalidInput(f"{source}, line {n}: unknown field {unknown[0]!r}", hint=_LOG_FORMAT)
        when = _seconds(item["time"])
        if when is None:
            raise InvalidInput(f"{source}, line {n}: time {item['time']!r} is neither unix seconds nor an ISO 8601 "
                               "time", hint=_LOG_FORMAT)
        detail = item.get("detail")
        if detail is not None and not isinstance(detail, str):
            raise InvalidInput(f"{source}, line {n}: detail must be text", hint=_LOG_FORMAT)
        records.append((when, hashlib.sha256(detail.encode()).digest() if detail else ZERO32))
    if not records:
        raise InvalidInput(f"{source} holds no access records", hint=_LOG_FORMAT)
    return records


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _UINT64 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and 0 <= value <= _UINT64 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return _seconds(int(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return _seconds(int(moment.timestamp()))


# ---- the contract ----

class AnchorClient:
    """One deployed ProvenanceAnchor; writes are signed by the transactor's account. Access
    batches also need the content `store` their records go to (and `records_dir`, where a local
    copy of each batch's records is kept)."""

    def __init__(self, w3: Web3, address: str, transactor: Transactor | None = None, *,
                 store: ContentStore | None = None, records_dir: Path | None = None) -> None:
        self.contract = bind(w3, PROVENANCE_ANCHOR, address)
        self.address = self.contract.address
        self._tx = transactor
        self._store = store
        self._records_dir = records_dir

    def anchor_batch(self, tree: StandardMerkleTree, kind: BatchKind | int, *,
                     metadata_digest: bytes = ZERO32) -> tuple[int, dict]:
        """Anchor the root of `tree` (its size as the count); returns the batch id and the receipt.
        Not for access batches (kind ACCESS): see `record_access_batch`."""
        return self.anchor_root(tree.root, len(tree), kind, metadata_digest=metadata_digest)

    def anchor_root(self, root: bytes, count: int, kind: BatchKind | int, *,
                    metadata_digest: bytes = ZERO32) -> tuple[int, dict]:
        tx = self._signer()
        receipt = tx.call_function(self.contract.functions.anchor(root, count, int(kind), metadata_digest),
                                   contract=PROVENANCE_ANCHOR)
        event = self.contract.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)[0]
        return event["args"]["batchId"], receipt

    def record_access_batch(self, license_id: int, version: int, kind: int,
                            records: Sequence[tuple[int, bytes]]) -> tuple[int, dict]:
        """Record this profile's uses (`records`: (accessedAt unix seconds, detailDigest) pairs)
        of `version` under license `license_id` as one access batch: the records' tree is
        stored in the content store (and under `records_dir`), its root anchored with
        `anchorAccesses`. The license must allow batched access records and pass the rules of
        a recorded access now; both are checked before anything is stored. Returns the batch id
        and the receipt. A failed transaction leaves only the stored records (content
        addressed: running it again stores the same bytes under the same CID)."""
        tx = self._signer()
        if self._store is None:
            raise InvalidInput("this AnchorClient has no content store for the batch's records",
                               hint="open it with a store (fc.anchor does)")
        tree = access_batch_tree(license_id, version, kind, records)
        document = records_document(tree)
        digest = records_digest(document)
        tx.unlock()
        fn = self.contract.functions.anchorAccesses(license_id, version, kind, tree.root, len(tree), digest)
        self._preflight(fn, license_id)
        cid = self._store.add([document])
        if cids.digest_of(cids.parse(cid)) != digest:  # the store and compute_cid agree by design
            raise VerificationFailed(f"the content store gave the records CID {cid}, not one of digest 0x{digest.hex()}",
                                     hint="the store does not build CIDs as an IPFS node with cid-version=1 does")
        self._keep_copy(digest, document)
        try:
            receipt = tx.call_function(fn, contract=PROVENANCE_ANCHOR)
        except TransactionReverted as exc:
            raise self._explain(exc, license_id) from None
        event = self.contract.events.AccessBatchAnchored().process_receipt(receipt, errors=DISCARD)[0]
        return event["args"]["batchId"], receipt

    def record_batch(self, kind: BatchKind | int, records: Sequence[Any]) -> tuple[int, dict, str]:
        """Anchor compute job records (COMPUTE) or measurement evidence (METERING), JSON objects,
        as one batch: the document (`evidence_document`) goes to the content store, its root,
        count and digest on chain (constant gas). Returns the batch id, the receipt and the
        document's CID. Access batches go through `record_access_batch` (their license is checked)."""
        if int(kind) not in (BatchKind.COMPUTE, BatchKind.METERING):
            raise InvalidInput(f"batch kind {int(kind)} is not compute (2) or metering (3)",
                               hint="record uses of a dataset with `record_access_batch`")
        if self._store is None:
            raise InvalidInput("this AnchorClient has no content store for the batch's records",
                               hint="open it with a store (fc.anchor does)")
        tree, document = evidence_document(records)
        digest = records_digest(document)
        cid = self._store.add([document])
        self._keep_copy(digest, document)
        batch_id, receipt = self.anchor_root(tree.root, len(tree), kind, metadata_digest=digest)
        return batch_id, receipt, cid

    def evidence_batch(self, batch_id: int) -> tuple[list[dict[str, Any]], StandardMerkleTree]:
        """The records of compute or metering batch `batch_id`, checked against what is anchored."""
        if self._store is None:
            raise InvalidInput("this AnchorClient has no content store", hint="open it with a store (fc.anchor does)")
        b = self.batch(batch_id)
        if b.kind not in (BatchKind.COMPUTE, BatchKind.METERING):
            raise InvalidInput(f"batch {batch_id} is of kind {b.kind}, not a compute or metering batch",
                               hint="access batches are read with `access_batch`")
        records, tree = load_evidence_batch(self._store, b.metadata_digest, root=b.root)
        if len(tree) != b.count:
            raise VerificationFailed(f"the records of batch {batch_id} are {len(tree)}, but {b.count} were anchored",
                                     hint="the records document does not belong to this batch")
        return records, tree

    def access_batch(self, batch_id: int) -> StandardMerkleTree:
        """The records of access batch `batch_id` from the content store, checked against the
        root and count anchored on chain (VerificationFailed otherwise)."""
        if self._store is None:
            raise InvalidInput("this AnchorClient has no content store", hint="open it with a store (fc.anchor does)")
        b = self.batch(batch_id)
        if b.kind != BatchKind.ACCESS:
            raise InvalidInput(f"batch {batch_id} is of kind {b.kind}, not an access batch",
                               hint="access batches are of kind 1")
        tree = load_access_batch(self._store, b.metadata_digest, root=b.root)
        if len(tree) != b.count:
            raise VerificationFailed(f"the records of batch {batch_id} are {len(tree)}, but {b.count} were anchored",
                                     hint="the records document does not belong to this batch")
        return tree

    def batch(self, batch_id: int) -> Batch:
        member, kind, count, anchored_at, block_number, root, digest = self.contract.functions.batch(batch_id).call()
        return Batch(batch_id, member, kind, count, anchored_at, block_number, bytes(root), bytes(digest))

    def batch_count(self) -> int:
        return self.contract.functions.batchCount().call()

    def verify_on_chain(self, batch_id: int, proof: Sequence[bytes], leaf: bytes) -> bool:
        """The contract's own answer (OpenZeppelin MerkleProof) for `leaf` under batch `batch_id`."""
        return self.contract.functions.verify(batch_id, list(proof), leaf).call()

    # ---- internals ----

    def _signer(self) -> Transactor:
        if self._tx is None:
            raise NotAuthorized("this AnchorClient has no signing account", hint="open it with a transactor to anchor")
        return self._tx

    def _preflight(self, fn: Any, license_id: int) -> None:
        # At the pending block, the time the transaction will be judged at (see LicensingClient).
        try:
            fn.call({"from": self._signer().address}, block_identifier="pending")
        except ContractLogicError as exc:
            data = revert_bytes(exc)
            name, args = self._decode(data) if data else ("Reverted", {"message": exc.message})
            raise self._explain(TransactionReverted(name, args, contract=PROVENANCE_ANCHOR,
                                                    function="anchorAccesses"), license_id) from None

    def _decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        # checkAccess's refusals come through from DataUseLicensing: not in this contract's ABI.
        name, args = decode_revert(PROVENANCE_ANCHOR, data)
        return decode_revert(DATA_USE_LICENSING, data) if name == "UnknownError" else (name, args)

    def _explain(self, exc: TransactionReverted, license_id: int) -> Exception:
        from ..transactions import ERROR_HINTS

        name, args = exc.error_name, exc.error_args
        if name == "UnknownError" and isinstance(args.get("data"), bytes):
            name, args = self._decode(args["data"])
        if name == "ProvenanceAnchorBatchedAccessNotAllowed":
            return NotAuthorized(f"license {license_id} does not allow batched access records",
                                 hint="ask the dataset's owner for a license granted with --batched-access "
                                      "(`fullchain license grant ID --batched-access`)")
        if name == "DataUseLicensingNotLicensee":
            return NotAuthorized(f"license {license_id} is not held by {self._signer().address}",
                                 hint="only a license's holder records its uses")
        if name == "DataUseLicensingNotValid":
            return NotAuthorized(f"license {license_id} is not valid now (revoked, superseded, expired, or its "
                                 "holder's membership ended)", hint="ask the dataset's owner for a license in force")
        # DataUseLicensing's errors keep their names: the rule refused is the same as recordAccess's.
        return TransactionReverted(name, args, contract=PROVENANCE_ANCHOR, function="anchorAccesses",
                                   hint=exc.hint or ERROR_HINTS.get(name))

    def _keep_copy(self, digest: bytes, document: bytes) -> None:
        if self._records_dir is None:
            return
        from ..home import private_dir

        path = private_dir(self._records_dir) / f"{digest.hex()}.json"
        if not path.exists():
            partial = path.with_suffix(".part")
            partial.write_bytes(document)
            partial.replace(path)
