"""Encrypted datasets: register (hash, encrypt, store, anchor), fetch (decrypt, verify), erase.

    register:  file -> SHA-256 -> STREAM AES-256-GCM under a fresh data key -> content store
               -> DatasetRegistry.registerDataset(commitment, CIDs, ...) with the owner's
               wrapped key bundle stored beside the payload
    fetch:     chain record -> own wrapped key -> store -> decrypt -> commitment check -> file

Writes happen in an order that a rerun can always finish: everything is uploaded and journalled
before the transaction, and a rerun first asks the chain whether the commitment is anchored.
"""
from __future__ import annotations

import hashlib
import io
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from web3 import Web3
from web3.logs import DISCARD

from .consortium import ConsortiumClient
from .contracts import DATASET_REGISTRY, bind
from .crypto import (
    KeyBundle,
    StreamEncryptor,
    commitment as make_commitment,
    decrypt,
    new_data_key,
    new_salt,
    unwrap_key,
    verify_commitment,
    wrap_key_for,
)
from .duo import Purpose
from .errors import (
    ContentNotFound,
    IdentifiersFound,
    IntegrityError,
    InvalidInput,
    NotAuthorized,
    UnknownDataset,
)
from .journal import Journal, JournalEntry, intent_key, journal_secret, now
from .metadata import STANDARD_CODES, TIER_CODES, DatasetMetadata
from .models import DatasetInfo, DatasetVersion, FetchResult, Registration, VerifyResult
from .storage import ContentStore
from .storage import cid as cids
from .transactions import Transactor

if TYPE_CHECKING:
    from .index import DatasetEntry, EventIndex
    from .licensing import LicensingClient

# progress(phase, bytes_done_increment, total_bytes)
Progress = Callable[[str, int, int], None]
_READ = 1 << 20
_STANDARDS = {v: k for k, v in STANDARD_CODES.items()}
_TIERS = {v: k for k, v in TIER_CODES.items()}


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


def _intent(metadata: DatasetMetadata, allow_identifiers: str | None) -> bytes:
    """The metadata as the caller gave it (with the override): what makes two runs "the same
    command" for the journal. Not the document stored, which adds what the SDK measured from the
    file: a rerun after an upgrade of the tool (or an entry journalled before metering existed)
    must still find its interrupted registration."""
    return metadata.model_copy(update={"allow_identifiers": allow_identifiers}).to_bytes()


def sha256_file(path: Path, progress: Progress = _no_progress, phase: str = "hashing") -> tuple[bytes, int]:
    h = hashlib.sha256()
    total = path.stat().st_size
    size = 0
    buf = bytearray(_READ)
    view = memoryview(buf)
    with path.open("rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
            size += n
            progress(phase, n, total)
    return h.digest(), size


class BackgroundWriter:
    """Writes on a thread of its own, so that disk time overlaps decryption and hashing (on a
    slow disk, writing the output is the longest part of a fetch). The queue is short: memory
    stays at a few chunks. A write error is raised at the next write or at `close`."""

    def __init__(self, fh: BinaryIO, depth: int = 4) -> None:
        self._fh = fh
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fullchain-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._fh.write(item)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._queue.put(bytes(data))
        return len(data)

    def close(self, *, raise_error: bool = True) -> None:
        self._queue.put(None)
        self._thread.join()
        if raise_error and self._error is not None:
            raise self._error


class DatasetsClient:
    """Datasets as one profile sees them: its own, and those it holds a key for."""

    def __init__(self, *, w3: Web3, address: str, transactor: Transactor, store: ContentStore,
                 consortium: ConsortiumClient, journal: Journal, hpke_public_key: bytes,
                 hpke_private_key: Callable[[], X25519PrivateKey],
                 licensing: Callable[[], LicensingClient] | None = None,
                 index: Callable[[], EventIndex] | None = None) -> None:
        self._w3 = w3
        self._index = index
        self.contract = bind(w3, DATASET_REGISTRY, address)
        self._tx = transactor
        self.store = store
        self._consortium = consortium
        self._journal = journal
        self._public_key = hpke_public_key
        self._private_key = hpke_private_key
        self._licensing = licensing

    # ---- register ----

    def register(self, path: Path, metadata: DatasetMetadata, *, derived_from: Sequence[int] = (),
                 allow_identifiers: str | None = None, priority: int | None = None,
                 progress: Progress = _no_progress) -> Registration:
        """Register `path` as a new dataset owned by this profile.

        The file is measured and red-line checked first (fullchain.metering): a file with direct
        identifiers is refused with IdentifiersFound before anything is uploaded or sent, unless
        `allow_identifiers` gives the reason to share it anyway. The figures, what the check did
        and the reason go into the metadata document (encrypted unless the tier is public).

        `priority` (seconds, 1 to 365 days; only with `derived_from`) then opens the dataset's
        priority window (LicensingClient.declare_priority_window) in a second transaction: until
        it closes, only owners of the parents may request it. Should the run stop between the
        two, running it again finishes it (the window counts from that declaration)."""
        for parent in derived_from:
            self._dataset_raw(parent)
        if priority is not None:
            from .licensing import check_priority_window

            check_priority_window(priority, list(derived_from))
            if self._licensing is None:
                raise InvalidInput("this client was made without licensing, which a priority window needs",
                                   hint="use fullchain.connect(...)")
        intent = _intent(metadata, allow_identifiers)
        metadata = self._precheck(path, metadata, allow_identifiers)
        return self._register_once(path, metadata, None, list(derived_from), progress, intent, priority)

    def add_version(self, dataset_id: int, path: Path, metadata: DatasetMetadata, *,
                    allow_identifiers: str | None = None, progress: Progress = _no_progress) -> Registration:
        """Append `path` as the next version of dataset `dataset_id` (owner only). Licensees
        with rights to later versions get its key; those it cannot be delivered to are listed
        in the result's `deliveries.skipped`, with the reason. The file is measured and red-line
        checked as in `register` (an override is never inherited from an earlier version)."""
        owner = self._dataset_raw(dataset_id)[0]
        if owner != self._tx.address:
            raise NotAuthorized(f"dataset {dataset_id} is owned by {owner}, not by this profile ({self._tx.address})",
                                hint="only the owner adds versions; register your own derived dataset with "
                                     f"--derived-from {dataset_id}")
        intent = _intent(metadata, allow_identifiers)
        metadata = self._precheck(path, metadata, allow_identifiers)
        return self._register_once(path, metadata, dataset_id, [], progress, intent)

    def _precheck(self, path: Path, metadata: DatasetMetadata, allow_identifiers: str | None) -> DatasetMetadata:
        """What can be refused before the password is asked (a red-line refusal needs no
        secret), then the password: both keys open with it (asked once), so a wrong one is
        reported before the file is encrypted and uploaded. Returns the metadata with the
        file's measurement and red-line record."""
        if not path.is_file():
            raise InvalidInput(f"{path} is not a readable file", hint="give the path of the dataset file")
        if allow_identifiers is not None and not allow_identifiers.strip():
            raise InvalidInput("allowing identifiers needs a reason", hint="say why with --reason TEXT")
        if allow_identifiers is not None and metadata.tier == "public":
            raise InvalidInput("a file with direct identifiers cannot have public metadata (the override's "
                               "record would be readable by anyone)", hint="use --tier consortium or restricted")
        self._check_member()
        metadata = self._red_line(path, metadata, allow_identifiers)
        self._tx.unlock()
        self._private_key()
        return metadata

    def _red_line(self, path: Path, metadata: DatasetMetadata, allow_identifiers: str | None) -> DatasetMetadata:
        from .metering.data_inspect import inspect_file
        from .metadata import RedlineCheck

        inspection = inspect_file(path, standard=metadata.standard)
        findings = inspection.findings
        if findings and allow_identifiers is None:
            listed = ", ".join(f"column {f.column!r} ({f.rule}, row {f.row})" for f in findings[:5])
            more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
            raise IdentifiersFound(
                f"{path.name} holds direct identifiers: {listed}{more}; nothing was uploaded",
                hint="remove or pseudonymise the column(s), or share them anyway with --allow-identifiers "
                     "--reason TEXT (SDK: allow_identifiers=...), which the encrypted metadata records",
                findings=findings)
        if inspection.scan_skipped is not None:
            redline = RedlineCheck(status="skipped", reason=f"the file is {inspection.scan_skipped}")
        else:
            redline = RedlineCheck(status="overridden" if findings else "passed", findings=findings)
        measurement = inspection.measurement
        if measurement is not None:
            # Kept without as_of: the same file and metadata must give the same document on a
            # rerun (the journal finds an interrupted registration by it), whatever the day.
            measurement = measurement.model_copy(update={
                "as_of": None, "timeliness_days": None,
                "sha256": "" if metadata.tier == "public" else measurement.sha256})
        return metadata.model_copy(update={
            "measurement": measurement, "measurement_skipped": inspection.measurement_skipped,
            "redline": redline, "allow_identifiers": allow_identifiers})

    def owner_of(self, dataset_id: int) -> str:
        return self._dataset_raw(dataset_id)[0]

    def own_bundle(self, v: DatasetVersion) -> KeyBundle:
        """The owner's own key bundle for a version (owner only)."""
        bundle = self._bundle(v)
        assert bundle is not None
        return bundle

    def _register_once(self, path: Path, metadata: DatasetMetadata, dataset_id: int | None,
                       derived_from: list[int], progress: Progress, intent: bytes,
                       priority: int | None = None) -> Registration:
        """Register or finish registering, one run at a time per (file, metadata, target): a
        run that had to wait for another takes that run's result instead of registering the
        file a second time."""
        meta_bytes = metadata.to_bytes()
        digest, size = sha256_file(path, progress)
        secret = journal_secret(self._private_key())
        self._journal.migrate(secret)
        key = intent_key(secret, digest, intent, dataset_id, derived_from)
        with self._journal.lock(key) as waited:
            done = self._journal.done(key) if waited else None
            if done is not None:
                registration = self._registration(*done, resumed=True, uploaded=False)
            else:
                self._journal.clear_done(key)
                registration = self._register(path, digest, size, metadata, meta_bytes, key, dataset_id,
                                              derived_from, progress)
            if dataset_id is not None and self._licensing is not None:
                # Licensees with future-version rights get the new key. The journal entry outlives
                # the anchoring until this is done: if a delivery fails (the node, the store), the
                # same command finds the anchored version and delivers the rest, instead of
                # registering the file again as yet another version.
                deliveries = self._licensing().deliver_keys(dataset_id, self.version(dataset_id, registration.version))
                registration = registration.model_copy(update={"deliveries": deliveries})
            if priority is not None:
                registration = self._declare_priority(registration, priority)
            self._journal.finish(key, registration.dataset_id, registration.version)
        return registration

    def _declare_priority(self, registration: Registration, priority: int) -> Registration:
        """The registration's second transaction. As with key deliveries, the journal entry
        outlives the anchoring until it is done: a run stopped in between is finished by the same
        command, which finds the anchored dataset and declares the window then. The chain says
        whether it is declared, so a run stopped after the declaration never declares twice."""
        assert self._licensing is not None  # checked by `register`
        licensing = self._licensing()
        closes = licensing.priority_window(registration.dataset_id)
        if closes is None:
            closes = licensing.declare_priority_window(registration.dataset_id, priority)
        return registration.model_copy(update={"priority_closes_at": closes})

    def _register(self, path: Path, digest: bytes, size: int, metadata: DatasetMetadata, meta_bytes: bytes,
                  key: str, dataset_id: int | None, derived_from: list[int], progress: Progress) -> Registration:
        entry = self._journal.load(key)
        resumed = entry is not None
        if entry is None:
            data_key, salt = new_data_key(), new_salt()
            commitment = make_commitment(salt, digest)
            bundle = KeyBundle(data_key=data_key, salt=salt, commitment=commitment)
            entry = JournalEntry(size=size, dataset_id=dataset_id, derived_from=derived_from,
                                 commitment="0x" + commitment.hex(),
                                 wrapped_bundle=wrap_key_for(self._public_key, bundle).hex(),
                                 from_block=self._w3.eth.block_number, created_at=now())
            self._journal.save(key, entry)
        else:
            bundle = unwrap_key(self._private_key(), bytes.fromhex(entry.wrapped_bundle))
            commitment = bundle.commitment
            if not verify_commitment(bundle.salt, digest, commitment):
                raise IntegrityError(f"the journal entry {self._journal.directory / key}.json does not match {path}",
                                     hint="delete that entry and register the file again")
            # A fresh commitment (random salt) cannot be on chain yet: only a rerun looks.
            anchored = self._find_anchored(commitment, entry.from_block or 0)
            if anchored is not None:  # the transaction of an earlier run made it: nothing to redo
                return self._registration(*anchored, resumed=True, uploaded=False)

        uploaded = False
        if entry.payload_cid is None or not self.store.has(entry.payload_cid):
            encryptor = StreamEncryptor(bundle.data_key)
            with path.open("rb") as fh:
                payload_cid = self.store.add(
                    encryptor.encrypt(fh, progress=lambda n: progress("encrypting", n, size)))
            if encryptor.plaintext_sha256 != digest:
                raise IntegrityError(f"{path} changed while it was being registered",
                                     hint="register it again once nothing writes to it")
            stored_meta = meta_bytes
            if metadata.tier != "public":
                stored_meta = b"".join(StreamEncryptor(bundle.data_key).encrypt(io.BytesIO(meta_bytes)))
            entry.payload_cid = payload_cid
            entry.metadata_cid = self.store.add([stored_meta])
            entry.bundle_cid = self.store.add([bytes.fromhex(entry.wrapped_bundle)])
            self._journal.save(key, entry)
            uploaded = True

        assert entry.metadata_cid is not None and entry.bundle_cid is not None
        payload = cids.parse(entry.payload_cid)
        meta = cids.parse(entry.metadata_cid)
        version_input = (
            commitment, cids.digest_of(payload), cids.digest_of(meta), size, cids.codec_of(payload),
            cids.codec_of(meta), STANDARD_CODES[metadata.standard], TIER_CODES[metadata.tier],
            cids.digest_of(cids.parse(entry.bundle_cid)),
        )
        if dataset_id is None:
            fn = self.contract.functions.registerDataset(version_input, derived_from)
        else:
            fn = self.contract.functions.registerVersion(dataset_id, version_input)
        receipt = self._tx.call_function(fn, contract=DATASET_REGISTRY)
        event = self.contract.events.VersionRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]
        return self._registration(event["datasetId"], event["version"], resumed=resumed, uploaded=uploaded)

    def _find_anchored(self, commitment: bytes, from_block: int) -> tuple[int, int] | None:
        """The version an earlier run of ours anchored with `commitment`, if any. Only blocks
        from the entry's recorded head on are searched (a cost independent of the chain's
        length), and only our own transactions count: another member may have copied the
        commitment from our pending transaction, and its dataset is not ours."""
        logs = self.contract.events.VersionRegistered().get_logs(
            from_block=from_block, argument_filters={"commitment": commitment})
        for log in logs:
            sender = self._w3.eth.get_transaction(log["transactionHash"])["from"]
            if Web3.to_checksum_address(sender) == self._tx.address:
                return log["args"]["datasetId"], log["args"]["version"]
        return None

    def _registration(self, dataset_id: int, version: int, *, resumed: bool, uploaded: bool) -> Registration:
        v = self.version(dataset_id, version)
        return Registration(dataset_id=dataset_id, version=version, cid=v.payload_cid, commitment=v.commitment,
                            metadata_cid=v.metadata_cid, size=v.size, resumed=resumed, uploaded=uploaded)

    def _check_member(self) -> None:
        me = self._consortium.member(self._tx.address)
        if me.status != "active":
            raise NotAuthorized(f"{self._tx.address} is not an active member of the consortium",
                                hint="only members register datasets; ask the governors to admit this account")

    # ---- read ----

    def _dataset_raw(self, dataset_id: int) -> tuple[str, int, int]:
        if dataset_id < 1 or dataset_id > self.contract.functions.datasetCount().call():
            raise UnknownDataset(f"there is no dataset {dataset_id}", hint="list them with `fullchain dataset list`")
        return tuple(self.contract.functions.dataset(dataset_id).call())  # type: ignore[return-value]

    def version(self, dataset_id: int, version: int | None = None) -> DatasetVersion:
        """Version `version` of a dataset (default: the latest)."""
        owner, _, count = self._dataset_raw(dataset_id)
        number = count if version is None else version
        if not 1 <= number <= count:
            raise UnknownDataset(f"dataset {dataset_id} has no version {number} (it has {count})",
                                 hint=f"use --version between 1 and {count}")
        raw = self.contract.functions.version(dataset_id, number).call()
        commitment, payload_digest, meta_digest, size, registered_at, payload_codec, meta_codec, standard, tier, erased = raw
        return DatasetVersion(
            dataset_id=dataset_id, version=number, commitment="0x" + bytes(commitment).hex(),
            payload_cid=cids.to_str(cids.make_cid(payload_codec, bytes(payload_digest))),
            metadata_cid=cids.to_str(cids.make_cid(meta_codec, bytes(meta_digest))), size=size,
            standard=_STANDARDS.get(standard, "other"), tier=_TIERS.get(tier, "restricted"), erased=erased,
            registered_at=datetime.fromtimestamp(registered_at, tz=timezone.utc))

    def versions(self, dataset_id: int) -> list[DatasetVersion]:
        count = self._dataset_raw(dataset_id)[2]
        return [self.version(dataset_id, n) for n in range(1, count + 1)]

    def get(self, dataset_id: int) -> DatasetInfo:
        owner, created_at, count = self._dataset_raw(dataset_id)
        meta = self.metadata(dataset_id) if count else None
        return DatasetInfo(dataset_id=dataset_id, owner=owner, created_at=datetime.fromtimestamp(created_at, tz=timezone.utc),
                           version_count=count, derived_from=list(self.contract.functions.derivedFrom(dataset_id).call()),
                           title=meta.title if meta else None)

    def list(self, *, limit: int | None = None, offset: int = 0, owner: str | None = None,
             standard: str | None = None, tier: str | None = None, data_use: str | None = None,
             readable_by: str | None = None, titles: bool = True) -> list[DatasetEntry]:
        """A page of datasets in id order, from the event index (no call per dataset). Filters
        combine; `standard`/`tier` apply to the latest version; `data_use` matches public
        metadata. With `titles`, encrypted titles this profile can read are decrypted."""
        from .view import with_titles

        index = self._require_index()
        entries = index.datasets(limit=limit, offset=offset, owner=owner, standard=standard,
                                 tier=tier, data_use=data_use, readable_by=readable_by)
        if not titles:
            return entries
        return with_titles(entries, index, lambda: self.store, self._tx.address, self._private_key)

    def count(self, *, owner: str | None = None, standard: str | None = None, tier: str | None = None,
              data_use: str | None = None, readable_by: str | None = None) -> int:
        return self._require_index().count_datasets(owner=owner, standard=standard, tier=tier, data_use=data_use,
                                                    readable_by=readable_by)

    def history(self, dataset_id: int) -> list[DatasetVersion]:
        """Every version of a dataset, from the event index."""
        from .view import history_of

        return history_of(self._require_index(), dataset_id)

    def search(self, text: str = "", *, standard: str | None = None, data_use: str | None = None,
               limit: int | None = None) -> list[tuple[DatasetEntry, DatasetMetadata]]:
        """Datasets whose metadata this profile can read (public metadata for everyone, encrypted
        metadata for the owner and licensees) matching every word of `text` (title, description,
        domain, keywords; case-insensitive), the `standard` and the DUO `data_use` (its id or code)."""
        from .duo import lookup

        words = text.lower().split()
        wanted_use = lookup(data_use).id if data_use else None
        index = self._require_index()
        candidates = index.datasets(standard=standard, tier="public")
        candidates += index.datasets(standard=standard, readable_by=self._tx.address)
        found: dict[int, tuple[DatasetEntry, DatasetMetadata]] = {}
        for entry in sorted(candidates, key=lambda e: e.info.dataset_id):
            if entry.info.dataset_id in found or entry.latest is None or entry.latest.erased:
                continue
            meta = self._metadata_of(entry.latest)
            if meta is None:
                continue
            haystack = " ".join(str(x) for x in (meta.title, meta.description, meta.domain,
                                                 " ".join(getattr(meta, "keywords", None) or []))
                                if x).lower()
            if any(w not in haystack for w in words):
                continue
            if wanted_use and not any(lookup(u).id == wanted_use for u in meta.data_use):
                continue
            found[entry.info.dataset_id] = (entry.model_copy(update={"info": entry.info.model_copy(
                update={"title": meta.title})}), meta)
            if limit is not None and len(found) >= limit:
                break
        return list(found.values())

    def _require_index(self) -> EventIndex:
        if self._index is None:
            raise InvalidInput("this client was made without an event index", hint="use fullchain.connect(...)")
        return self._index()

    def metadata(self, dataset_id: int, version: int | None = None) -> DatasetMetadata | None:
        """The version's metadata document, or None if this profile cannot read it."""
        return self._metadata_of(self.version(dataset_id, version))

    def _metadata_of(self, v: DatasetVersion) -> DatasetMetadata | None:
        dataset_id = v.dataset_id
        if v.erased:
            return None
        try:
            stored = b"".join(self.store.cat(v.metadata_cid))
        except ContentNotFound:
            return None
        if v.tier == "public":
            return DatasetMetadata.from_bytes(stored)
        bundle = self._bundle(v, required=False)
        if bundle is None and self._licensing is not None and self.owner_of(dataset_id) != self._tx.address:
            try:
                bundle = self._licensing().licensee_bundle(v, None, record=False)
            except (NotAuthorized, ContentNotFound):
                bundle = None
        if bundle is None:
            return None
        out = io.BytesIO()
        decrypt([stored], bundle.data_key, out)
        return DatasetMetadata.from_bytes(out.getvalue())

    def _reader_bundle(self, v: DatasetVersion, purpose: Purpose | None, *, record: bool = True) -> KeyBundle:
        """The owner's own key, or a licensee's key after the license checks (and, for a
        fetch, the access recorded on chain)."""
        if self.owner_of(v.dataset_id) == self._tx.address or self._licensing is None:
            return self.own_bundle(v)
        if not record:
            own = self._bundle(v, required=False)
            if own is not None:
                return own
        return self._licensing().licensee_bundle(v, purpose, record=record)

    def _bundle(self, v: DatasetVersion, *, required: bool = True) -> KeyBundle | None:
        digest = bytes(self.contract.functions.keyBundle(v.dataset_id, v.version, self._tx.address).call())
        if digest == b"\0" * 32:
            if not required:
                return None
            raise NotAuthorized(f"no key for dataset {v.dataset_id} version {v.version} was shared with "
                                f"{self._tx.address}", hint="ask the owner for a license")
        try:
            wrapped = b"".join(self.store.cat(cids.to_str(cids.make_cid(cids.RAW, digest))))
        except ContentNotFound:
            if not required:
                return None
            raise
        return unwrap_key(self._private_key(), wrapped, commitment=bytes.fromhex(v.commitment[2:]))

    # ---- fetch and verify ----

    def fetch(self, dataset_id: int, out: Path, *, version: int | None = None, purpose: Purpose | None = None,
              progress: Progress = _no_progress) -> FetchResult:
        """Decrypt a version into `out`. The file appears under its name only once the content
        has authenticated and matched the commitment on chain; on any failure nothing is left.

        A licensee's fetch is checked against its license first (for `purpose`, default the
        license's own) and recorded on chain before any byte is decrypted."""
        v = self.version(dataset_id, version)
        if v.erased:
            raise NotAuthorized(f"dataset {dataset_id} version {v.version} was erased by its owner",
                                hint="erased versions cannot be fetched; choose another --version")
        bundle = self._reader_bundle(v, purpose)
        out = Path(out)
        if out.is_dir():
            raise InvalidInput(f"{out} is a directory", hint="give the output file's path with -o")
        if not out.absolute().parent.is_dir():
            raise InvalidInput(f"the directory of {out} does not exist", hint="create it, or choose another -o path")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.absolute().parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                writer = BackgroundWriter(fh)
                try:
                    result = decrypt(self.store.cat(v.payload_cid), bundle.data_key, writer,  # type: ignore[arg-type]
                                     progress=lambda n: progress("decrypting", n, v.size))
                except BaseException:
                    writer.close(raise_error=False)  # the decryption error is the one to report
                    raise
                writer.close()
                # No fsync: a fetched file can always be fetched again, and the rename below
                # already guarantees it never appears half-written under its name.
            if not verify_commitment(bundle.salt, result.plaintext_sha256, bytes.fromhex(v.commitment[2:])):
                raise IntegrityError(f"dataset {dataset_id} version {v.version} decrypted, but does not match "
                                     "the commitment on chain", hint="the stored content was replaced; tell the owner")
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return FetchResult(dataset_id=dataset_id, version=v.version, path=str(out), size=result.size,
                           sha256=result.plaintext_sha256.hex(), commitment=v.commitment)

    def verify(self, dataset_id: int, path: Path, *, version: int | None = None,
               progress: Progress = _no_progress) -> VerifyResult:
        """Whether `path` is exactly the plaintext of a version (default: the latest)."""
        if not Path(path).is_file():
            raise InvalidInput(f"{path} is not a readable file", hint="give the path of the file to verify")
        v = self.version(dataset_id, version)
        bundle = self._reader_bundle(v, None, record=False)
        digest, _ = sha256_file(Path(path), progress)
        ok = verify_commitment(bundle.salt, digest, bytes.fromhex(v.commitment[2:]))
        return VerifyResult(dataset_id=dataset_id, version=v.version, matches=ok, sha256=digest.hex(),
                            commitment=v.commitment)

    # ---- erase ----

    def erase(self, dataset_id: int, version: int) -> DatasetVersion:
        """Tombstone a version on chain, then unpin its payload, metadata and key bundles."""
        v = self.version(dataset_id, version)
        owner = self._dataset_raw(dataset_id)[0]
        if owner != self._tx.address:
            raise NotAuthorized(f"dataset {dataset_id} is owned by {owner}, not by this profile",
                                hint="only the owner can erase a version")
        if not v.erased:
            self._tx.call_function(self.contract.functions.eraseVersion(dataset_id, v.version),
                                   contract=DATASET_REGISTRY)
        # After the tombstone, so that a failure here can be finished by running erase again.
        # The payload and every wrapped key of the version (the owner's, any shared, and the
        # licensees') are unique to this version: where the store lets us, their blocks are
        # deleted, not just unpinned. Metadata may be shared (identical public documents have
        # one CID), so it is only unpinned.
        bundles = [cids.to_str(cids.make_cid(cids.RAW, digest)) for digest in sorted(self._bundle_digests(v))]
        discard = getattr(self.store, "discard", None)
        for cid in (v.payload_cid, *bundles):
            if discard is not None:
                discard(cid)
            else:
                self.store.unpin(cid)
        self.store.unpin(v.metadata_cid)
        self._journal_forget(v)
        return self.version(dataset_id, v.version)

    def _bundle_digests(self, v: DatasetVersion) -> set[bytes]:
        """Every key bundle of a version recorded on chain: published by the owner (its own and
        any shared) and delivered to licensees, including those a later one replaced. From the
        event index's copy of every event (a dataset's history holds its licenses' events)."""
        found = {bytes(self.contract.functions.keyBundle(v.dataset_id, v.version, self._tx.address).call())}
        index = self._require_index()
        for name in ("KeyBundlePublished", "KeyDelivered"):
            for event in index.events(dataset_id=v.dataset_id, name=name):
                if int(event.args["version"]) == v.version:
                    found.add(bytes.fromhex(str(event.args["bundleDigest"]).removeprefix("0x")))
        found.discard(b"\0" * 32)
        return found

    def _journal_forget(self, v: DatasetVersion) -> None:
        for entry_key, entry in self._journal.entries():
            if entry.commitment == v.commitment:
                self._journal.remove(entry_key)

