"""A local journal of registrations in flight, so that a registration interrupted between the
upload and the transaction is finished by running the same command again.

Entries hold no secret in the clear: the data key and salt are kept only as the bundle wrapped
(HPKE) to the profile's own public key, exactly as published.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from .home import write_private


class JournalEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plaintext_sha256: str
    size: int
    dataset_id: int | None  # None: a new dataset
    derived_from: list[int]
    metadata_sha256: str
    commitment: str
    wrapped_bundle: str
    payload_cid: str | None = None
    metadata_cid: str | None = None
    bundle_cid: str | None = None
    tx_hash: str | None = None
    created_at: datetime


def intent_key(plaintext_sha256: bytes, metadata: bytes, dataset_id: int | None, derived_from: list[int]) -> str:
    """The same file, metadata and target give the same key: that is what "the same command" means."""
    target = f"{dataset_id}|{','.join(map(str, sorted(derived_from)))}"
    h = hashlib.sha256(plaintext_sha256 + hashlib.sha256(metadata).digest() + target.encode())
    return h.hexdigest()[:32]


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> JournalEntry | None:
        try:
            return JournalEntry.model_validate_json(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValidationError:
            # A damaged entry only costs a re-upload; the chain check below prevents duplicates.
            return None

    def save(self, key: str, entry: JournalEntry) -> None:
        write_private(self._path(key), entry.model_dump_json(indent=2))

    def remove(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def entries(self) -> list[tuple[str, JournalEntry]]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            entry = self.load(path.stem)
            if entry is not None:
                found.append((path.stem, entry))
        return found


def now() -> datetime:
    return datetime.now(timezone.utc)
