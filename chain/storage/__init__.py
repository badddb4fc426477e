"""Content storage: one interface, two backends giving identical CIDs for identical bytes.

    store = open_store("embedded", home)            # blocks under home / "blocks"
    store = open_store("http://127.0.0.1:5001", home)  # an IPFS node's RPC API
    cid = store.add(encrypted_chunks)               # CIDv1 base32, as `ipfs add --cid-version=1`
    for piece in store.cat(cid): ...

CIDs are those of an IPFS node with ``cid-version=1``: raw leaves, 256 KiB chunks, balanced
UnixFS dag-pb layout with at most 174 links per node, sha2-256, printed in base32.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .base import ContentStore
from .blockstore import EmbeddedStore
from .car import CarWriter, read_car
from .cid import normalize as normalize_cid
from .cid import to_str
from .unixfs import CHUNK_SIZE, MAX_LINKS, file_cid as _file_cid

if TYPE_CHECKING:
    from .ipfs_http import IpfsHttpStore

EMBEDDED = "embedded"


def __getattr__(name: str) -> Any:
    # httpx loads only for a node's API: reading the embedded store or a CID needs none of it.
    if name == "IpfsHttpStore":
        from .ipfs_http import IpfsHttpStore

        return IpfsHttpStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(spec: str, home: Path) -> ContentStore:
    """The store named by ``spec``: ``"embedded"`` (blocks under ``home / "blocks"``) or the
    http(s) URL of an IPFS node's RPC API, e.g. ``http://127.0.0.1:5001``."""
    if spec == EMBEDDED:
        return EmbeddedStore(Path(home) / "blocks")
    if spec.startswith(("http://", "https://")):
        from .ipfs_http import IpfsHttpStore

        return IpfsHttpStore(spec)
    raise InvalidInput(f"unknown storage {spec!r}",
                       hint="use 'embedded' or the URL of an IPFS node's RPC API, e.g. http://127.0.0.1:5001")


def compute_cid(chunks: Iterable[bytes]) -> str:
    """The CID any IPFS node (and both stores) would give these bytes, computed without storing."""
    return to_str(_file_cid(chunks))


__all__ = [
    "CHUNK_SIZE", "MAX_LINKS", "CarWriter", "ContentStore", "EmbeddedStore", "IpfsHttpStore",
    "compute_cid", "normalize_cid", "open_store", "read_car",
]
