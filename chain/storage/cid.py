"""Content identifiers: the one place where CIDs are parsed, normalised and printed.

Every CID leaving this package is a CIDv1 in base32 (multibase prefix ``b``) over a sha2-256
multihash; any CID entering it (base32 or base58btc CIDv1, or a ``Qm...`` CIDv0) is parsed to its
binary form first, so two spellings of the same CID compare equal.
"""
from __future__ import annotations

import base64
import hashlib

from ..errors import InvalidInput, StorageError

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
_DIGEST_LEN = 32

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def varint(n: int) -> bytes:
    """Unsigned LEB128, as used by multiformats and protobuf."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode an unsigned varint at ``pos``; return (value, position after it)."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def make_cid(codec: int, digest: bytes) -> bytes:
    """Binary CIDv1 of a sha2-256 digest: varint(1) varint(codec) 0x12 0x20 digest."""
    return b"\x01" + varint(codec) + bytes((SHA2_256, _DIGEST_LEN)) + digest


def cid_of_block(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    return make_cid(codec, hashlib.sha256(data).digest())


def codec_of(cid: bytes) -> int:
    version, pos = read_varint(cid)
    codec, _ = read_varint(cid, pos)
    return codec


def digest_of(cid: bytes) -> bytes:
    """The sha2-256 digest inside a binary CIDv1 (StorageError for another hash function)."""
    _, pos = read_varint(cid)
    _, pos = read_varint(cid, pos)
    code, pos = read_varint(cid, pos)
    length, pos = read_varint(cid, pos)
    if code != SHA2_256 or length != _DIGEST_LEN or len(cid) != pos + length:
        raise StorageError(f"unsupported multihash in CID {to_str(cid)}",
                           hint="only sha2-256 CIDs are supported")
    return cid[pos:]


def to_str(cid: bytes) -> str:
    """Canonical text form: CIDv1, multibase base32 lower case without padding."""
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


def _b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _B58_INDEX[ch]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def parse(text: str) -> bytes:
    """Binary CIDv1 from any common text form; InvalidInput if it is not a CID we can use."""
    text = text.strip()
    try:
        if len(text) == 46 and text.startswith("Qm"):  # CIDv0: a bare base58btc sha2-256 multihash
            mh = _b58decode(text)
            if mh[:2] != bytes((SHA2_256, _DIGEST_LEN)) or len(mh) != 34:
                raise ValueError("not a sha2-256 multihash")
            return make_cid(DAG_PB, mh[2:])
        if text[:1] in ("b", "B"):
            body = text[1:].upper()
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        elif text[:1] == "z":
            raw = _b58decode(text[1:])
        else:
            raise ValueError("unsupported multibase (expected base32 'b' or base58btc 'z')")
        version, pos = read_varint(raw)
        if version != 1:
            raise ValueError(f"CID version {version}")
        read_varint(raw, pos)
        digest_of(raw)
        return raw
    except (ValueError, KeyError, StorageError) as exc:
        raise InvalidInput(f"{text!r} is not a valid CID ({exc})",
                           hint="pass a CIDv1 such as bafy... or bafk..., or a CIDv0 Qm...") from None


def normalize(text: str) -> str:
    """The canonical base32 CIDv1 spelling of any CID string."""
    return to_str(parse(text))
