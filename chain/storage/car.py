"""CARv1 (content-addressed archive) writing and reading, enough to move a DAG between stores.

Layout: varint(len(header)) header, then for each block varint(len(cid) + len(data)) cid data.
The header is dag-cbor ``{"roots": [CID, ...], "version": 1}`` (keys in dag-cbor canonical order:
shorter first), a CID being tag 42 over a byte string of 0x00 followed by the binary CID.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .cid import read_varint, varint


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes((major << 5 | n,))
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes((major << 5 | extra,)) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def encode_header(roots: Iterable[bytes]) -> bytes:
    roots = list(roots)
    out = bytearray(_cbor_head(5, 2))
    out += _cbor_head(3, 5) + b"roots" + _cbor_head(4, len(roots))
    for cid in roots:
        out += b"\xd8\x2a" + _cbor_head(2, len(cid) + 1) + b"\x00" + cid
    out += _cbor_head(3, 7) + b"version" + _cbor_head(0, 1)
    return bytes(out)


class CarWriter:
    """Streams a CARv1 to ``out``: the header at once, then each block as it is given."""

    def __init__(self, out: BinaryIO, roots: Iterable[bytes]) -> None:
        self._out = out
        header = encode_header(roots)
        out.write(varint(len(header)) + header)

    def write_block(self, cid: bytes, data: bytes | memoryview) -> None:
        self._out.write(varint(len(cid) + len(data)) + cid)
        self._out.write(data)


# --- reading ----------------------------------------------------------------------------------

class _Cbor:
    """A minimal dag-cbor reader: unsigned ints, byte and text strings, arrays, maps, tag 42."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def _arg(self, info: int) -> int:
        if info < 24:
            return info
        size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
        if size is None:
            raise ValueError("indefinite or reserved CBOR length")
        value = int.from_bytes(self.buf[self.pos:self.pos + size], "big")
        self.pos += size
        return value

    def read(self) -> object:
        if self.pos >= len(self.buf):
            raise ValueError("truncated CBOR")
        head = self.buf[self.pos]
        self.pos += 1
        major, n = head >> 5, self._arg(head & 31)
        if major == 0:
            return n
        if major in (2, 3):
            raw = self.buf[self.pos:self.pos + n]
            self.pos += n
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            return [self.read() for _ in range(n)]
        if major == 5:
            return {self.read(): self.read() for _ in range(n)}  # type: ignore[misc]
        if major == 6 and n == 42:
            value = self.read()
            if not isinstance(value, bytes) or value[:1] != b"\x00":
                raise ValueError("malformed CID in CBOR")
            return ("cid", value[1:])
        raise ValueError(f"unsupported CBOR item (major type {major})")


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError("truncated CAR")
    return data


def _read_varint_stream(stream: BinaryIO) -> int | None:
    buf = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            if buf:
                raise ValueError("truncated CAR varint")
            return None
        buf += byte
        if not byte[0] & 0x80:
            return read_varint(bytes(buf))[0]


def _cid_length(buf: bytes) -> int:
    """Length of the binary CIDv1 at the start of ``buf`` (version, codec, multihash)."""
    _, pos = read_varint(buf)
    _, pos = read_varint(buf, pos)
    _, pos = read_varint(buf, pos)
    length, pos = read_varint(buf, pos)
    return pos + length


def read_car(stream: BinaryIO) -> tuple[list[bytes], Iterator[tuple[bytes, bytes]]]:
    """(roots, iterator of (binary CID, block bytes)) from a CARv1 stream."""
    header_len = _read_varint_stream(stream)
    if header_len is None:
        raise ValueError("empty CAR")
    header = _Cbor(_read_exact(stream, header_len)).read()
    if not isinstance(header, dict) or header.get("version") != 1:
        raise ValueError("not a CARv1 header")
    roots = [value[1] for value in header.get("roots", [])]

    def blocks() -> Iterator[tuple[bytes, bytes]]:
        while (length := _read_varint_stream(stream)) is not None:
            section = _read_exact(stream, length)
            if section[:2] == b"\x12\x20":  # CIDv0: a bare multihash
                split = 34
            else:
                split = _cid_length(section)
            yield section[:split], section[split:]

    return roots, blocks()
