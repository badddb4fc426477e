"""Reading a UnixFS file DAG block by block, whatever store the blocks come from.

Both stores read through ``get(cid) -> bytes`` (which raises ContentNotFound for a missing block
and checks each block against its CID), so ``cat`` and ``export_car`` never yield unverified
bytes, never silently stop short, and fail fast when a block is missing.
"""
from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from ..errors import StorageError
from .car import CarWriter
from .cid import DAG_PB, RAW, codec_of, digest_of, to_str
from .unixfs import decode_node

GetBlock = Callable[[bytes], bytes]


def check_block(cid: bytes, data: bytes, where: str) -> bytes:
    """``data`` if it hashes to ``cid``, else StorageError naming ``where`` it came from."""
    if hashlib.sha256(data).digest() != digest_of(cid):
        raise StorageError(f"block {to_str(cid)} from {where} does not match its CID (corrupt)",
                           hint="delete or repair that block and add the content again")
    return data


def walk(get: GetBlock, root: bytes) -> Iterator[tuple[bytes, bytes | None, int]]:
    """Every block of the DAG in depth-first pre-order (= file order) as (cid, bytes, tsize):
    dag-pb nodes are fetched here and given with their bytes, raw leaves are given as
    (cid, None, size according to the parent's link) for the caller to fetch."""
    stack: list[Iterator[tuple[bytes, int]]] = [iter(((root, -1),))]
    while stack:
        cid, tsize = next(stack[-1], (b"", 0))
        if not cid:
            stack.pop()
            continue
        if len(cid) == 34 and cid[:2] == b"\x12\x20":  # a CIDv0 link (older DAGs): same block as v1
            cid = bytes((1, DAG_PB)) + cid
        codec = codec_of(cid)
        if codec == RAW:
            yield cid, None, tsize
        elif codec == DAG_PB:
            block = get(cid)
            try:
                links = decode_node(block).links
            except ValueError as exc:
                raise StorageError(f"block {to_str(cid)} of {to_str(root)} is not valid dag-pb ({exc})",
                                   hint="only UnixFS files are supported") from None
            yield cid, block, tsize
            stack.append(iter(links))
        else:
            raise StorageError(f"{to_str(root)} links to {to_str(cid)} whose codec 0x{codec:x} "
                               "is not part of a UnixFS file", hint="only UnixFS files are supported")


def blocks(get: GetBlock, root: bytes, *, workers: int = 1, window: int = 8) -> Iterator[tuple[bytes, bytes]]:
    """(cid, bytes) of every block in pre-order; leaves are fetched ahead on worker threads."""
    if codec_of(root) == RAW:  # a one-block file (metadata, key bundles): no pool to start
        yield root, get(root)
        return
    pending: deque[tuple[bytes, Future[bytes] | bytes]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="fullchain-read")
    try:
        for cid, block, _ in walk(get, root):
            pending.append((cid, block if block is not None else pool.submit(get, cid)))
            while len(pending) > window:
                done, item = pending.popleft()
                yield done, item if isinstance(item, bytes) else item.result()
        while pending:
            done, item = pending.popleft()
            yield done, item if isinstance(item, bytes) else item.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def file_bytes(get: GetBlock, root: bytes, *, workers: int = 1, window: int = 8) -> Iterator[bytes]:
    """The file's content, in order."""
    for cid, block in blocks(get, root, workers=workers, window=window):
        if codec_of(cid) == RAW:
            if block:
                yield block
        else:
            data = decode_node(block).data
            if data:
                yield data


def write_car(get: GetBlock, root: bytes, out: BinaryIO, *, workers: int = 1, window: int = 8) -> None:
    """A CARv1 of the DAG under ``root`` (each distinct block once, in pre-order)."""
    writer = CarWriter(out, [root])
    seen: set[bytes] = set()
    for cid, block in blocks(get, root, workers=workers, window=window):
        if cid not in seen:
            seen.add(cid)
            writer.write_block(cid, block)
