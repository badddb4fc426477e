"""A local journal of registrations in flight, so that a registration interrupted between the
upload and the transaction is finished by running the same command again.

Entries hold no secret in the clear: the data key and salt are kept only as the bundle wrapped
(HPKE) to the profile's own public key, exactly as published. Nothing in the journal confirms a
guess of the plaintext either: an entry is named by an HMAC of the file's digest under a key
derived from the profile's HPKE private key, and it keeps only the salted commitment (already
public on chain once anchored), never the file's plain SHA-256.

Each entry has a lock, so that two identical registrations by one profile at once register the
file once: the second waits for the first and takes its result (or resumes its entry).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, ValidationError

from .home import private_dir, write_private

# Written by entries of fullchain versions before the journal stopped holding plaintext digests:
# dropped when such an entry is read, and the entry renamed under its keyed name (`migrate`).
_LEGACY_FIELDS = ("plaintext_sha256", "metadata_sha256")
_SECRET_INFO = b"fullchain journal key v1"


class JournalEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: int
    dataset_id: int | None  # None: a new dataset
    derived_from: list[int]
    commitment: str
    wrapped_bundle: str
    # The chain's head before anything of this registration was sent: a rerun looks for its
    # anchoring transaction from here on only. None in entries written before it was recorded.
    from_block: int | None = None
    payload_cid: str | None = None
    metadata_cid: str | None = None
    bundle_cid: str | None = None
    tx_hash: str | None = None
    created_at: datetime


def journal_secret(private_key: X25519PrivateKey) -> bytes:
    """The per-profile key that names journal entries; only the holder of the profile's
    password (which opens the HPKE key) can compute an entry's name from a file."""
    raw = private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return hmac.new(raw, _SECRET_INFO, hashlib.sha256).digest()


def _target(dataset_id: int | None, derived_from: list[int]) -> bytes:
    return f"{dataset_id}|{','.join(map(str, sorted(derived_from)))}".encode()


def intent_key(secret: bytes, plaintext_sha256: bytes, metadata: bytes, dataset_id: int | None,
               derived_from: list[int]) -> str:
    """The same file, metadata and target give the same key: that is what "the same command"
    means. Keyed with the profile's secret, so the name says nothing about the file."""
    return _keyed(secret, plaintext_sha256, hashlib.sha256(metadata).digest(), dataset_id, derived_from)


def _keyed(secret: bytes, plaintext_sha256: bytes, metadata_sha256: bytes, dataset_id: int | None,
           derived_from: list[int]) -> str:
    mac = hmac.new(secret, plaintext_sha256 + metadata_sha256 + _target(dataset_id, derived_from), hashlib.sha256)
    return mac.hexdigest()[:32]


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> JournalEntry | None:
        return _read(self._path(key))

    def save(self, key: str, entry: JournalEntry) -> None:
        write_private(self._path(key), entry.model_dump_json(indent=2))

    def remove(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def entries(self) -> list[tuple[str, JournalEntry]]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            entry = _read(path)
            if entry is not None:
                found.append((path.stem, entry))
        return found

    def migrate(self, secret: bytes) -> int:
        """Rename entries written by older versions (named by, and holding, the plain digest of
        the file) under their keyed names, without the digest. Returns how many were moved."""
        moved = 0
        for path in sorted(self.directory.glob("*.json")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                digest = bytes.fromhex(raw["plaintext_sha256"])
                meta = bytes.fromhex(raw["metadata_sha256"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a current entry, or one too damaged to move: `load` copes with both
            entry = _read(path)
            if entry is not None:
                key = _keyed(secret, digest, meta, entry.dataset_id, entry.derived_from)
                with self.lock(key):
                    if self.load(key) is None:
                        self.save(key, entry)
            path.unlink(missing_ok=True)
            moved += 1
        return moved

    # ---- one registration at a time per entry ----

    @contextmanager
    def lock(self, key: str) -> Iterator[bool]:
        """Hold the entry's lock; yields whether another run held it when we asked (then its
        outcome is in `done`, or its entry is there to resume)."""
        private_dir(self.directory)
        lock = FileLock(str(self.directory / f"{key}.lock"), mode=0o600)
        waited = False
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waited = True
            lock.acquire()
        try:
            yield waited
        finally:
            lock.release()

    def _done_path(self, key: str) -> Path:
        return self.directory / f"{key}.done"

    def finish(self, key: str, dataset_id: int, version: int) -> None:
        """The registration is complete: drop its entry, and leave its outcome for a run of the
        same command that was waiting for this one."""
        write_private(self._done_path(key), json.dumps({"dataset_id": dataset_id, "version": version}))
        self.remove(key)

    def done(self, key: str) -> tuple[int, int] | None:
        try:
            raw = json.loads(self._done_path(key).read_text(encoding="utf-8"))
            return int(raw["dataset_id"]), int(raw["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def clear_done(self, key: str) -> None:
        """Forget the outcome of an earlier run: a run that did not wait registers anew."""
        self._done_path(key).unlink(missing_ok=True)


def _read(path: Path) -> JournalEntry | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        # Entries are written atomically, so this is damage from outside: the registration
        # starts over (a new upload) rather than failing on it.
        return None
    if not isinstance(raw, dict):
        return None
    for name in _LEGACY_FIELDS:
        raw.pop(name, None)
    try:
        return JournalEntry.model_validate(raw)
    except ValidationError:
        return None


def now() -> datetime:
    return datetime.now(timezone.utc)
