"""Payload encryption, commitments and key wrapping for datasets.

Stream format (version 1)
-------------------------
A payload is a 16-byte header followed by sealed chunks::

    header  = magic "FCSE" (4) | format version 0x01 (1) | chunk size, u32 big-endian (4)
              | nonce prefix, random (7)
    chunk i = AES-256-GCM(key, nonce_i, plaintext_i, aad=header) -> ciphertext_i || tag (16)
    nonce_i = nonce prefix (7) | i, u32 big-endian (4) | last-chunk flag, 0x00 or 0x01 (1)

This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizar 2015), laid out as Tink's
streaming AEAD lays it out. Every chunk but the last holds exactly `chunk size` plaintext bytes;
the last holds 1..chunk size bytes, or 0 when the whole file is empty, so
:func:`ciphertext_size` is exact. The counter in the nonce makes a dropped, repeated or
reordered chunk fail authentication at its position; the flag makes a stream cut at a chunk
boundary fail (the chunk before the cut was sealed as "not last"); the per-file prefix makes a
chunk spliced from another file under the same key fail; the header as associated data stops
anyone from editing the chunk size or prefix. A 56-bit random prefix is ample because a data key
is fresh per dataset version and so seals only a handful of streams (payload, metadata).

Reading needs no length up front: a full-size chunk is opened as "not last" when more bytes
follow it and as "last" at the end of the stream, so memory stays at about one chunk.

Wrapped key format (version 1)
------------------------------
See :func:`wrap_key_for`: ``0x01 | commitment (32) | HPKE enc (32) | HPKE ciphertext (80)``,
145 bytes, the first 33 bytes bound into the HPKE ``info``. The commitment names the dataset
version (it is unique per version, and known before the chain assigns a dataset id).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import DecryptionError, IntegrityError, InvalidInput

__all__ = [
    "CHUNK_SIZE", "HEADER_SIZE", "TAG_SIZE", "DecryptResult", "KeyBundle", "StreamEncryptor",
    "ciphertext_size", "commitment", "decrypt", "new_data_key", "new_salt", "public_key_bytes",
    "unwrap_key", "verify_commitment", "wrap_key_for",
]

Progress = Callable[[int], None]

# --- stream -------------------------------------------------------------------------------

MAGIC = b"FCSE"
FORMAT_VERSION = 1
CHUNK_SIZE = 1 << 20
# A reader buffers one chunk, and the chunk size comes from an untrusted header: cap it.
MAX_CHUNK_SIZE = 16 << 20
KEY_SIZE = 32
TAG_SIZE = 16
PREFIX_SIZE = 7
_HEADER = struct.Struct(">4sBI7s")
HEADER_SIZE = _HEADER.size
MAX_CHUNKS = 1 << 32  # the counter is a u32

_TAMPER_HINT = ("the payload is corrupt or does not belong to this key: fetch it again, and check "
                "that the key was unwrapped for this dataset version")


def new_data_key() -> bytes:
    """A fresh random AES-256 key: one per dataset version, never reused across versions."""
    return os.urandom(KEY_SIZE)


def ciphertext_size(plaintext_size: int, *, chunk_size: int = CHUNK_SIZE) -> int:
    """The exact size of the encrypted stream for `plaintext_size` bytes of plaintext."""
    if plaintext_size < 0:
        raise InvalidInput(f"a size cannot be negative ({plaintext_size})")
    chunks = max(1, -(-plaintext_size // chunk_size))  # an empty file is one empty chunk
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_SIZE:
        raise InvalidInput(f"a data key is {KEY_SIZE} bytes, not {len(key)}")
    return AESGCM(key)


def _check_chunk_size(chunk_size: int) -> None:
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidInput(f"chunk size {chunk_size} is outside 1..{MAX_CHUNK_SIZE}")


def _read_full(src: BinaryIO, buf: bytearray) -> int:
    """Fill `buf` from `src` (short reads from pipes and raw files are retried); bytes read."""
    view = memoryview(buf)
    filled = 0
    readinto = getattr(src, "readinto", None)
    while filled < len(buf):
        if readinto is not None:
            n = readinto(view[filled:])
        else:
            data = src.read(len(buf) - filled)
            n = len(data)
            view[filled:filled + n] = data
        if not n:
            break
        filled += n
    view.release()
    return filled


class StreamEncryptor:
    """Seals one plaintext stream under `key`; one instance per stream (its prefix is random).

    `chunk_size` exists for tests and tools; payloads use the 1 MiB default.
    """

    def __init__(self, key: bytes, *, chunk_size: int = CHUNK_SIZE) -> None:
        _check_chunk_size(chunk_size)
        self._aead = _aead(key)
        self._chunk_size = chunk_size
        self._prefix = os.urandom(PREFIX_SIZE)
        self._header = _HEADER.pack(MAGIC, FORMAT_VERSION, chunk_size, self._prefix)
        self._started = False
        self._digest: bytes | None = None
        self._size = 0

    @property
    def header(self) -> bytes:
        """The 16-byte stream header (also the first piece `encrypt` yields)."""
        return self._header

    def encrypt(self, src: BinaryIO, *, progress: Progress | None = None) -> Iterator[bytes]:
        """Yield the header, then each sealed chunk of `src` read to its end.

        `progress`, when given, is called after each chunk with the number of plaintext bytes
        that chunk held (an increment, as a progress bar's `advance` wants).
        """
        if self._started:
            # A second stream under the same prefix and key would reuse every nonce.
            raise RuntimeError("a StreamEncryptor seals exactly one stream; create a new one")
        self._started = True
        return self._seal(src, progress)

    def _seal(self, src: BinaryIO, progress: Progress | None) -> Iterator[bytes]:
        sha = hashlib.sha256()
        # Two buffers: the next chunk is read before the current one is sealed, because only
        # then do we know whether the current one is the last.
        current, ahead = bytearray(self._chunk_size), bytearray(self._chunk_size)
        n = _read_full(src, current)
        yield self._header
        index = 0
        while True:
            m = _read_full(src, ahead) if n == self._chunk_size else 0
            last = m == 0
            if index >= MAX_CHUNKS:
                raise InvalidInput("the file is too large for this chunk size")
            with memoryview(current) as view:
                plain = view[:n]
                sha.update(plain)
                yield self._aead.encrypt(_nonce(self._prefix, index, last), plain, self._header)
            self._size += n
            if progress is not None and n:
                progress(n)
            if last:
                break
            current, ahead, n = ahead, current, m
            index += 1
        self._digest = sha.digest()

    def _finished(self) -> None:
        if self._digest is None:
            raise RuntimeError("the stream has not been read to its end yet")

    @property
    def plaintext_sha256(self) -> bytes:
        """SHA-256 of the plaintext (available once `encrypt`'s iterator is exhausted)."""
        self._finished()
        assert self._digest is not None
        return self._digest

    @property
    def plaintext_size(self) -> int:
        """Bytes of plaintext read (once the stream is exhausted)."""
        self._finished()
        return self._size

    @property
    def ciphertext_size(self) -> int:
        """Bytes yielded, header included (once the stream is exhausted)."""
        self._finished()
        return ciphertext_size(self._size, chunk_size=self._chunk_size)


@dataclass(frozen=True)
class DecryptResult:
    """What a completed decryption produced: the plaintext's SHA-256 and size."""

    plaintext_sha256: bytes
    size: int


def _parse_header(header: bytes) -> tuple[int, bytes]:
    magic, version, chunk_size, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise DecryptionError("not a fullchain encrypted stream (bad magic bytes)",
                              chunk_index=None, hint=_TAMPER_HINT)
    if version != FORMAT_VERSION:
        raise DecryptionError(f"unsupported stream format version {version}", chunk_index=None,
                              hint="upgrade fullchain to read this payload")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionError(f"stream header has an invalid chunk size ({chunk_size})",
                              chunk_index=None, hint=_TAMPER_HINT)
    return chunk_size, prefix


def _frames(pieces: Iterator[memoryview], frame: int) -> Iterator[tuple[memoryview, bool]]:
    """Cut arbitrary pieces into sealed chunks: yields (chunk, more_bytes_follow).

    A full-size chunk is held back until one more byte arrives, because whether it is the last
    chunk depends on it. Frames lying wholly inside a large piece are yielded without copying.
    A yielded view is only valid until the next iteration.
    """
    pending = bytearray()
    for view in pieces:
        if pending:
            need = frame - len(pending)
            if len(view) <= need:
                pending += view
                continue
            pending += view[:need]
            view = view[need:]
            with memoryview(pending) as chunk:
                yield chunk, True
            pending.clear()
        while len(view) > frame:
            yield view[:frame], True
            view = view[frame:]
        pending += view
    with memoryview(pending) as chunk:
        yield chunk, False


def _split_header(chunks: Iterable[bytes]) -> tuple[bytes, Iterator[memoryview]]:
    """Take the header off the front of the ciphertext pieces; the rest, as views."""
    pieces = (memoryview(p) for p in chunks if len(p))
    header = bytearray()
    for view in pieces:
        need = HEADER_SIZE - len(header)
        header += view[:need]
        if len(header) == HEADER_SIZE:
            rest = view[need:]

            def remainder() -> Iterator[memoryview]:
                if len(rest):
                    yield rest
                yield from pieces
            return bytes(header), remainder()
    raise DecryptionError(
        f"stream is {len(header)} bytes, shorter than its {HEADER_SIZE}-byte header",
        chunk_index=None, hint=_TAMPER_HINT)


def decrypt(chunks: Iterable[bytes], key: bytes, dst: BinaryIO, *,
            progress: Progress | None = None) -> DecryptResult:
    """Authenticate and decrypt a stream given as pieces of any size, writing plaintext to `dst`.

    Only authenticated chunks reach `dst`, but an error can come after earlier chunks were
    written: write to a temporary file and move it into place only when this returns.
    `progress` is called with each chunk's plaintext size (an increment).
    Raises :class:`DecryptionError` whose `chunk_index` is the failing chunk (None: header).
    """
    aead = _aead(key)
    header, rest = _split_header(chunks)
    chunk_size, prefix = _parse_header(header)
    frame = chunk_size + TAG_SIZE
    sha = hashlib.sha256()
    size = 0
    index = 0
    for sealed, more in _frames(rest, frame):
        if not more and not len(sealed):
            # Only reachable when nothing at all follows the header.
            raise DecryptionError("stream ends before the final chunk (no chunk after the header)",
                                  chunk_index=0, hint=_TAMPER_HINT)
        if index >= MAX_CHUNKS:
            raise DecryptionError(f"chunk {index} is beyond the last possible chunk",
                                  chunk_index=index, hint=_TAMPER_HINT)
        plain = _open(aead, prefix, header, frame, index, sealed, more)
        sha.update(plain)
        dst.write(plain)
        size += len(plain)
        if progress is not None and plain:
            progress(len(plain))
        index += 1
    return DecryptResult(plaintext_sha256=sha.digest(), size=size)


def _open(aead: AESGCM, prefix: bytes, header: bytes, frame: int, index: int,
          sealed: memoryview, more: bool) -> bytes:
    """Open chunk `index`, or raise naming what went wrong with it."""
    if len(sealed) < TAG_SIZE:
        raise DecryptionError(f"chunk {index} is {len(sealed)} bytes, shorter than its tag: "
                              "truncated or trailing bytes", chunk_index=index, hint=_TAMPER_HINT)
    try:
        return aead.decrypt(_nonce(prefix, index, not more), sealed, header)
    except InvalidTag:
        pass
    # Only full-size chunks are ambiguous between "last" and "not last"; trying the other flag
    # tells a clean cut or appended bytes apart from tampering (costs one chunk, on failure only).
    if len(sealed) == frame:
        try:
            aead.decrypt(_nonce(prefix, index, more), sealed, header)
        except InvalidTag:
            pass
        else:
            problem = (f"unexpected data after the final chunk {index} (trailing bytes)" if more
                       else f"stream ends before the final chunk (truncated after chunk {index})")
            raise DecryptionError(problem, chunk_index=index + 1, hint=_TAMPER_HINT)
    what = "tampered, reordered, from another file, or wrong key"
    if not more:
        what = "tampered, truncated, followed by trailing bytes, from another file, or wrong key"
    raise DecryptionError(f"chunk {index} failed authentication: {what}", chunk_index=index,
                          hint=_TAMPER_HINT)


# --- commitments --------------------------------------------------------------------------

SALT_SIZE = 32
COMMITMENT_SIZE = 32


def new_salt() -> bytes:
    """A fresh 32-byte salt; it travels with the data key, never on chain."""
    return os.urandom(SALT_SIZE)


def commitment(salt: bytes, plaintext_sha256: bytes) -> bytes:
    """SHA-256(salt || SHA-256(plaintext)): what goes on chain.

    The salt keeps outsiders from confirming a guessed file against the chain.
    """
    if len(salt) != SALT_SIZE:
        raise InvalidInput(f"a commitment salt is {SALT_SIZE} bytes, not {len(salt)}")
    if len(plaintext_sha256) != 32:
        raise InvalidInput(f"a SHA-256 digest is 32 bytes, not {len(plaintext_sha256)}")
    return hashlib.sha256(salt + plaintext_sha256).digest()


def verify_commitment(salt: bytes, plaintext_sha256: bytes, expected: bytes) -> bool:
    """Whether `expected` (from the chain) commits to this plaintext digest under `salt`."""
    return hmac.compare_digest(commitment(salt, plaintext_sha256), expected)


# --- key wrapping -------------------------------------------------------------------------

WRAP_FORMAT_X25519 = 1
_WRAP_HEADER = struct.Struct(">B32s")
_WRAP_INFO = b"fullchain key bundle v1"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_BUNDLE_SIZE = KEY_SIZE + SALT_SIZE
WRAPPED_SIZE = _WRAP_HEADER.size + hpke.KEM.X25519.enc_length() + _BUNDLE_SIZE + TAG_SIZE


@dataclass(frozen=True)
class KeyBundle:
    """What a recipient needs to read and verify one dataset version. Secrets stay out of repr."""

    data_key: bytes = field(repr=False)
    salt: bytes = field(repr=False)
    commitment: bytes

    def __post_init__(self) -> None:
        if len(self.data_key) != KEY_SIZE:
            raise InvalidInput(f"a data key is {KEY_SIZE} bytes, not {len(self.data_key)}")
        if len(self.salt) != SALT_SIZE:
            raise InvalidInput(f"a commitment salt is {SALT_SIZE} bytes, not {len(self.salt)}")
        if len(self.commitment) != COMMITMENT_SIZE:
            raise InvalidInput(f"a commitment is {COMMITMENT_SIZE} bytes, not {len(self.commitment)}")


def public_key_bytes(private_key: X25519PrivateKey) -> bytes:
    """The raw 32-byte X25519 public key, as registered on chain."""
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def wrap_key_for(recipient_public_key: bytes, bundle: KeyBundle) -> bytes:
    """Seal `bundle` to a recipient with HPKE base mode (X25519, HKDF-SHA256, AES-256-GCM).

    Layout (145 bytes)::

        0x01 (format) | commitment (32) | enc (32) | ciphertext (64 + 16 tag)

    The first 33 bytes are readable (so a store can file the blob) and are bound into HPKE's
    `info`: changing them, or presenting the blob for another dataset version, fails. Base
    mode does not authenticate the sender; who published a bundle is for the chain to say.
    """
    if len(recipient_public_key) != 32:
        raise InvalidInput(f"an X25519 public key is 32 bytes, not {len(recipient_public_key)}")
    public = X25519PublicKey.from_public_bytes(recipient_public_key)
    header = _WRAP_HEADER.pack(WRAP_FORMAT_X25519, bundle.commitment)
    sealed = _SUITE.encrypt(bundle.data_key + bundle.salt, public, info=_WRAP_INFO + header)
    return header + sealed


def unwrap_key(private_key: X25519PrivateKey, wrapped: bytes, *, commitment: bytes | None = None) -> KeyBundle:
    """Open a bundle sealed by :func:`wrap_key_for`; refuse it if it names another version.

    Raises :class:`IntegrityError` when the blob is malformed, meant for another dataset
    version (commitment) than the one given, sealed to another key, or altered.
    """
    wrapped = bytes(wrapped)
    if len(wrapped) != WRAPPED_SIZE:
        raise IntegrityError(f"a wrapped key is {WRAPPED_SIZE} bytes, this one is {len(wrapped)}",
                             hint="fetch the wrapped key again")
    header = wrapped[:_WRAP_HEADER.size]
    fmt, found = _WRAP_HEADER.unpack(header)
    if fmt != WRAP_FORMAT_X25519:
        raise IntegrityError(f"unknown wrapped key format {fmt}", hint="upgrade fullchain")
    if commitment is not None and not hmac.compare_digest(found, commitment):
        raise IntegrityError(
            f"wrapped key is for the version with commitment 0x{found.hex()}, not 0x{commitment.hex()}",
            hint="fetch the wrapped key recorded for this dataset version")
    try:
        plain = _SUITE.decrypt(wrapped[_WRAP_HEADER.size:], private_key, info=_WRAP_INFO + header)
    except InvalidTag:
        raise IntegrityError("wrapped key does not open with this private key: it was wrapped for "
                             "another member or altered",
                             hint="check the profile, or ask the owner to share the dataset "
                                  "with you") from None
    return KeyBundle(data_key=plain[:KEY_SIZE], salt=plain[KEY_SIZE:], commitment=found)
