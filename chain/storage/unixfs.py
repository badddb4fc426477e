"""UnixFS files as an IPFS node builds them with ``cid-version=1``: byte-for-byte the same blocks.

- fixed-size chunker, 256 KiB (``size-262144``); every chunk is a raw block (codec 0x55);
- a file of one chunk (the empty file included) is that raw block alone;
- larger files get a balanced tree of dag-pb nodes, at most 174 links per node, each node carrying
  UnixFS ``Data{Type=File, filesize, blocksizes}``; links have an empty name and a Tsize of the
  child's whole subtree (encoded nodes plus leaf bytes).

dag-pb is protobuf with a canonical field order (Links, field 2, before Data, field 1); the few
messages involved are encoded and decoded here by hand.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .cid import DAG_PB, RAW, cid_of_block, read_varint, varint

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174
UNIXFS_FILE = 2

Piece = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Link:
    """A child of a file node: its CID, the bytes of its whole subtree, the file bytes under it."""

    cid: bytes
    tsize: int
    filesize: int


# --- protobuf ---------------------------------------------------------------------------------

def _field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def encode_file_node(links: list[Link]) -> bytes:
    """A dag-pb PBNode for a UnixFS file whose content is entirely in ``links``."""
    out = bytearray()
    for link in links:
        pblink = _field_bytes(1, link.cid) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        out += _field_bytes(2, pblink)
    data = _field_varint(1, UNIXFS_FILE) + _field_varint(3, sum(link.filesize for link in links))
    data += b"".join(_field_varint(4, link.filesize) for link in links)
    out += _field_bytes(1, data)
    return bytes(out)


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) for each field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated protobuf field")
            yield number, wire, bytes(buf[pos:pos + length])
            pos += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")


@dataclass
class FileNode:
    """A decoded dag-pb UnixFS node: inline data (if any) then the children, in file order."""

    links: list[tuple[bytes, int]] = field(default_factory=list)  # (cid, tsize)
    data: bytes = b""
    unixfs_type: int | None = None
    filesize: int | None = None


def decode_node(block: bytes) -> FileNode:
    node = FileNode()
    for number, wire, value in _fields(block):
        if number == 2 and wire == 2:
            cid, tsize = b"", 0
            for lnum, lwire, lvalue in _fields(value):  # type: ignore[arg-type]
                if lnum == 1 and lwire == 2:
                    cid = lvalue  # type: ignore[assignment]
                elif lnum == 3 and lwire == 0:
                    tsize = lvalue  # type: ignore[assignment]
            node.links.append((cid, tsize))
        elif number == 1 and wire == 2:
            for unum, uwire, uvalue in _fields(value):  # type: ignore[arg-type]
                if unum == 1 and uwire == 0:
                    node.unixfs_type = uvalue  # type: ignore[assignment]
                elif unum == 2 and uwire == 2:
                    node.data = uvalue  # type: ignore[assignment]
                elif unum == 3 and uwire == 0:
                    node.filesize = uvalue  # type: ignore[assignment]
    return node


# --- chunking and layout ----------------------------------------------------------------------

def chunked(pieces: Iterable[Piece], size: int = CHUNK_SIZE) -> Iterator[bytes | memoryview]:
    """Re-cut a stream of arbitrary pieces into ``size``-byte chunks (the last may be shorter;
    an empty stream gives one empty chunk, as the IPFS importer does).

    Chunks are fresh immutable objects, except slices of caller ``bytes`` that cover a whole
    chunk, which are passed on as memoryviews without a copy.
    """
    parts: list[memoryview] = []
    have = 0
    emitted = False
    for piece in pieces:
        view = memoryview(piece).cast("B")
        immutable = isinstance(piece, bytes)
        pos = 0
        n = len(view)
        if have:  # top up the pending chunk first
            take = min(size - have, n)
            head = view[:take]
            parts.append(head if immutable or have + take == size else memoryview(bytes(head)))
            have += take
            pos = take
            if have == size:
                yield b"".join(parts)
                emitted = True
                parts.clear()
                have = 0
        while n - pos >= size:  # whole chunks straight from this piece
            yield view[pos:pos + size] if immutable else bytes(view[pos:pos + size])
            emitted = True
            pos += size
        if pos < n:
            rest = view[pos:]
            parts.append(rest if immutable else memoryview(bytes(rest)))
            have += n - pos
    if have or not emitted:
        yield b"".join(parts)


class BalancedLayout:
    """Builds the balanced tree bottom-up from leaves pushed in order, keeping at most one
    pending row of links per tree level (so memory does not grow with the file).

    ``put_node(cid, block)`` is called for each dag-pb node, always after every block below it
    was pushed, so a store that writes leaves before pushing them never has a parent without
    its children.
    """

    def __init__(self, put_node: Callable[[bytes, bytes], None], max_links: int = MAX_LINKS) -> None:
        self._put_node = put_node
        self._max = max_links
        self._levels: list[list[Link]] = [[]]
        self._leaves = 0

    def push(self, leaf: Link) -> None:
        self._leaves += 1
        self._levels[0].append(leaf)
        level = 0
        while len(self._levels[level]) == self._max:
            self._reduce(level)
            level += 1

    def _reduce(self, level: int) -> None:
        links = self._levels[level]
        block = encode_file_node(links)
        cid = cid_of_block(DAG_PB, block)
        self._put_node(cid, block)
        parent = Link(cid, len(block) + sum(link.tsize for link in links), sum(link.filesize for link in links))
        self._levels[level] = []
        if level + 1 == len(self._levels):
            self._levels.append([])
        self._levels[level + 1].append(parent)

    def finish(self) -> Link:
        """The root: the only leaf of a one-chunk file, else the top dag-pb node."""
        if self._leaves == 0:
            raise ValueError("no leaves")
        if self._leaves == 1:
            return self._levels[0][0]
        level = 0
        while True:
            top = level == len(self._levels) - 1
            row = self._levels[level]
            if top and len(row) == 1 and level > 0:
                return row[0]
            if row:
                self._reduce(level)
            level += 1


def leaf_of(chunk: Piece) -> Link:
    return Link(cid_of_block(RAW, chunk), len(chunk), len(chunk))


def file_cid(pieces: Iterable[Piece]) -> bytes:
    """The CID an IPFS node gives these bytes with ``cid-version=1``, computed without storing."""
    layout = BalancedLayout(lambda cid, block: None)
    for chunk in chunked(pieces):
        layout.push(leaf_of(chunk))
    return layout.finish().cid
