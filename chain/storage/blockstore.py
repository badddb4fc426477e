"""The embedded store: IPFS-compatible blocks in a local directory, no daemon needed.

Layout under ``root``::

    <xy>/<cid>     one file per block, named by its CIDv1 base32, sharded by the two characters
                   before the CID's last one (like Kubo's flatfs ``next-to-last/2``)
    pins/<cid>     an empty file per recursively pinned root

Each block is written under a temporary name in its shard and renamed into place, so a crash
never leaves a partial block under a CID's name, and two processes adding the same content never
see each other's half-written files. Children are written before their parents, so a present
root means a complete DAG. ``durable=True`` adds an fsync of every block (and its directory), so
this also holds across a power loss, at disk speed instead of page-cache speed.

Hashing and writing the 256 KiB leaves runs on worker threads (hashlib releases the GIL), with a
bounded window of chunks in flight: memory stays constant whatever the file size.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from ..errors import ContentNotFound, StorageError
from ..home import private_dir
from . import dag
from .car import read_car
from .cid import DAG_PB, codec_of, digest_of, parse, to_str
from .unixfs import BalancedLayout, Link, Piece, chunked, decode_node, leaf_of

_PINS = "pins"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EmbeddedStore:
    """A :class:`~fullchain.storage.ContentStore` over a local directory of blocks."""

    def __init__(self, root: Path, *, durable: bool = False, verify: bool = True, workers: int = 2,
                 window: int = 8) -> None:
        self.root = Path(root)
        self.durable = durable
        self.verify = verify
        self._workers = max(1, workers)
        self._window = max(1, window)
        self._shards: set[str] = set()
        private_dir(self.root / _PINS)

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    # --- blocks -------------------------------------------------------------------------------

    def block_path(self, cid: bytes | str) -> Path:
        """Where the block with this CID lives (whether or not it is there)."""
        name = to_str(parse(cid) if isinstance(cid, str) else cid)
        return self.root / name[-3:-1] / name

    def _put(self, cid: bytes, data: Piece) -> None:
        try:
            self._write(cid, data)
        except OSError as exc:
            raise StorageError(f"cannot write to the embedded store {self.root}: {exc.strerror or exc}",
                               hint="check the free space and the permissions of that directory") from exc

    def _write(self, cid: bytes, data: Piece) -> None:
        """Write one block atomically (tmp + rename); a block already present is left alone."""
        final = self.block_path(cid)
        shard = final.parent.name
        if shard not in self._shards:
            private_dir(final.parent)
            self._shards.add(shard)
        if final.exists():
            return
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.durable:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, final)
        if self.durable:
            _fsync_dir(final.parent)

    def _put_leaf(self, chunk: Piece) -> Link:
        link = leaf_of(chunk)
        self._put(link.cid, chunk)
        return link

    def _get(self, cid: bytes) -> bytes:
        try:
            data = self.block_path(cid).read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(f"block {to_str(cid)} is missing from the embedded store {self.root}",
                                  hint="add the content again, or import it from a CAR or an IPFS node "
                                       "that has it") from None
        return dag.check_block(cid, data, f"the embedded store {self.root}") if self.verify else data

    def _root(self, cid: str) -> bytes:
        root = parse(cid)
        if not self.block_path(root).exists():
            raise ContentNotFound(f"{to_str(root)} is not in the embedded store {self.root}",
                                  hint="check the CID, or add the content to this store first")
        return root

    # --- ContentStore -------------------------------------------------------------------------

    def add(self, chunks: Iterable[Piece], *, pin: bool = True) -> str:
        layout = BalancedLayout(self._put)
        inflight: deque[Future[Link]] = deque()
        with ThreadPoolExecutor(self._workers, thread_name_prefix="fullchain-add") as pool:
            try:
                for chunk in chunked(chunks):
                    inflight.append(pool.submit(self._put_leaf, chunk))
                    if len(inflight) >= self._window:
                        layout.push(inflight.popleft().result())
                while inflight:
                    layout.push(inflight.popleft().result())
            except BaseException:
                for future in inflight:
                    future.cancel()
                raise
        root = layout.finish().cid
        if pin:
            self._pin(root)
        return to_str(root)

    def _pin(self, cid: bytes) -> None:
        pin = self.root / _PINS / to_str(cid)
        if not pin.exists():
            os.close(os.open(pin, os.O_WRONLY | os.O_CREAT, 0o600))
            if self.durable:
                _fsync_dir(pin.parent)

    def cat(self, cid: str) -> Iterator[bytes]:
        return dag.file_bytes(self._get, self._root(cid), workers=self._workers, window=self._window)

    def has(self, cid: str) -> bool:
        return self.block_path(parse(cid)).exists()

    def pinned(self, cid: str) -> bool:
        return (self.root / _PINS / to_str(parse(cid))).exists()

    def unpin(self, cid: str) -> None:
        (self.root / _PINS / to_str(parse(cid))).unlink(missing_ok=True)

    def export_car(self, cid: str, out: BinaryIO) -> None:
        dag.write_car(self._get, self._root(cid), out, window=self._window)

    def discard(self, cid: str) -> None:
        """Unpin and delete every block of content that only this CID refers to (erasure of a
        key bundle or of a payload encrypted under a unique key). Missing blocks are skipped,
        so an interrupted discard can simply be run again."""
        root = parse(cid)
        self.unpin(cid)
        pending = [root]
        while pending:
            block = pending.pop()
            path = self.block_path(block)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            if codec_of(block) == DAG_PB:
                pending.extend(_v1(child) for child, _ in decode_node(data).links)
            path.unlink(missing_ok=True)

    def import_car(self, stream: BinaryIO, *, pin: bool = True) -> list[str]:
        """Store every block of a CARv1 (each checked against its CID); pin and return its roots.

        Blocks are stored as they come; the roots are pinned only once every block is in."""
        roots, sections = read_car(stream)
        for cid, data in sections:
            cid = _v1(cid)
            if hashlib.sha256(data).digest() != digest_of(cid):
                raise StorageError(f"block {to_str(cid)} in the CAR does not match its CID",
                                   hint="the CAR file is corrupt: export it again")
            self._put(cid, data)
        roots = [_v1(r) for r in roots]
        if pin:
            for root in roots:
                self._pin(root)
        return [to_str(r) for r in roots]


def _v1(cid: bytes) -> bytes:
    """CARs from other tools may name dag-pb blocks by a CIDv0 (a bare sha2-256 multihash)."""
    return bytes((1, DAG_PB)) + cid if cid[:2] == b"\x12\x20" and len(cid) == 34 else cid
