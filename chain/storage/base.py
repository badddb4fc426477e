"""The one interface every content store implements."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol, runtime_checkable


@runtime_checkable
class ContentStore(Protocol):
    """Content-addressed storage giving the CIDs an IPFS node gives (CIDv1, raw leaves, base32).

    CID arguments may be any spelling of a CID (base32 or base58btc CIDv1, CIDv0); CIDs returned
    are always CIDv1 base32.
    """

    def add(self, chunks: Iterable[bytes], *, pin: bool = True) -> str:
        """Store the concatenation of ``chunks`` (pieces of any size, consumed as a stream, never
        held whole) and return its CID."""
        ...

    def cat(self, cid: str) -> Iterator[bytes]:
        """The content's bytes, streamed in order. ContentNotFound if it is not available."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the content's root block is available in this store."""
        ...

    def unpin(self, cid: str) -> None:
        """Drop the pin (a no-op if it was not pinned); blocks may then be garbage collected."""
        ...

    def pinned(self, cid: str) -> bool:
        """Whether the content is pinned (recursively)."""
        ...

    def export_car(self, cid: str, out: BinaryIO) -> None:
        """Write a CARv1 to ``out`` with ``cid`` as its only root and every block of its DAG."""
        ...
