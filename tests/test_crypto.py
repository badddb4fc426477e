"""The payload stream format, commitments and HPKE key wrapping (fullchain.crypto)."""
from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fullchain import crypto
from fullchain.crypto import (CHUNK_SIZE, HEADER_SIZE, TAG_SIZE, KeyBundle, StreamEncryptor,
                              ciphertext_size, commitment, decrypt, new_data_key, new_salt,
                              public_key_bytes, unwrap_key, verify_commitment, wrap_key_for)
from fullchain.errors import DecryptionError, IntegrityError, InvalidInput

CS = 64  # small chunks keep the tampering tests fast; the 1 MiB default is tested once below
KEY = bytes(range(32))


def seal(data: bytes, key: bytes = KEY, chunk_size: int = CS) -> list[bytes]:
    """[header, chunk 0, chunk 1, ...] exactly as the encryptor yields them."""
    return list(StreamEncryptor(key, chunk_size=chunk_size).encrypt(io.BytesIO(data)))


def open_all(pieces: list[bytes], key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    decrypt(pieces, key, out)
    return out.getvalue()


def failure(pieces: list[bytes], key: bytes = KEY) -> tuple[DecryptionError, bytes]:
    """The error decrypting `pieces` raises, and the plaintext written before it."""
    out = io.BytesIO()
    with pytest.raises(DecryptionError) as info:
        decrypt(pieces, key, out)
    return info.value, out.getvalue()


# --- round trips --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, CS - 1, CS, CS + 1, 5 * CS, 5 * CS + 7])
def test_round_trip_sizes(size: int) -> None:
    data = os.urandom(size)
    enc = StreamEncryptor(KEY, chunk_size=CS)
    pieces = list(enc.encrypt(io.BytesIO(data)))
    assert pieces[0] == enc.header
    # An empty file is one empty final chunk; otherwise no empty chunk is ever added.
    assert len(pieces) - 1 == max(1, -(-size // CS))
    assert all(len(p) == CS + TAG_SIZE for p in pieces[1:-1])
    blob = b"".join(pieces)
    assert len(blob) == ciphertext_size(size, chunk_size=CS) == enc.ciphertext_size
    assert enc.plaintext_size == size
    assert enc.plaintext_sha256 == hashlib.sha256(data).digest()
    out = io.BytesIO()
    result = decrypt([blob], KEY, out)
    assert out.getvalue() == data
    assert result == crypto.DecryptResult(plaintext_sha256=hashlib.sha256(data).digest(), size=size)


def test_default_chunk_size_round_trip() -> None:
    data = os.urandom(3 * CHUNK_SIZE + 5)
    enc = StreamEncryptor(KEY)
    pieces = list(enc.encrypt(io.BytesIO(data)))
    assert [len(p) for p in pieces] == [HEADER_SIZE] + [CHUNK_SIZE + TAG_SIZE] * 3 + [5 + TAG_SIZE]
    blob = b"".join(pieces)
    assert len(blob) == ciphertext_size(len(data))
    reframed = [blob[i:i + 65536] for i in range(0, len(blob), 65536)]
    assert open_all(reframed) == data


def test_ciphertext_size_is_exact_for_the_default_chunk() -> None:
    assert ciphertext_size(0) == HEADER_SIZE + TAG_SIZE
    assert ciphertext_size(CHUNK_SIZE) == HEADER_SIZE + CHUNK_SIZE + TAG_SIZE
    assert ciphertext_size(CHUNK_SIZE + 1) == HEADER_SIZE + CHUNK_SIZE + 1 + 2 * TAG_SIZE
    with pytest.raises(InvalidInput):
        ciphertext_size(-1)


def test_header_layout_and_fresh_prefix() -> None:
    a, b = StreamEncryptor(KEY, chunk_size=CS), StreamEncryptor(KEY, chunk_size=CS)
    magic, version, chunk_size, prefix = struct.unpack(">4sBI7s", a.header)
    assert (len(a.header), magic, version, chunk_size) == (16, b"FCSE", 1, CS)
    assert prefix != struct.unpack(">4sBI7s", b.header)[3]


class Trickle(io.RawIOBase):
    """A source that hands out at most 7 bytes per read, like a pipe would, and counts them."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        n = self._src.readinto(memoryview(buf)[:7])
        self.consumed += n
        return n


def test_short_reads_still_give_full_chunks() -> None:
    data = os.urandom(3 * CS + 3)
    src = Trickle(data)
    pieces = list(StreamEncryptor(KEY, chunk_size=CS).encrypt(src))  # type: ignore[arg-type]
    assert [len(p) for p in pieces[1:]] == [CS + TAG_SIZE] * 3 + [3 + TAG_SIZE]
    assert open_all(pieces) == data


def test_encryption_streams_instead_of_buffering() -> None:
    src = Trickle(os.urandom(50 * CS))
    stream = StreamEncryptor(KEY, chunk_size=CS).encrypt(src)  # type: ignore[arg-type]
    next(stream)  # header
    next(stream)  # chunk 0
    # Chunk 0 and the one read ahead of it, not the whole file.
    assert src.consumed <= 2 * CS


def test_decryption_writes_as_it_goes() -> None:
    data = os.urandom(50 * CS)
    pieces = seal(data)
    out = io.BytesIO()

    def feed() -> Iterator[bytes]:
        for i, piece in enumerate(pieces):
            # By the time chunk i is handed over, chunk i - 2 must already be out: memory stays
            # at a chunk or two whatever the stream length.
            assert len(out.getvalue()) >= max(0, i - 2) * CS
            yield piece

    decrypt(feed(), KEY, out)
    assert out.getvalue() == data


def test_progress_reports_increments() -> None:
    data = os.urandom(3 * CS + 1)
    seen_enc: list[int] = []
    enc = StreamEncryptor(KEY, chunk_size=CS)
    blob = b"".join(enc.encrypt(io.BytesIO(data), progress=seen_enc.append))
    seen_dec: list[int] = []
    decrypt([blob], KEY, io.BytesIO(), progress=seen_dec.append)
    assert seen_enc == seen_dec == [CS, CS, CS, 1]


def test_an_encryptor_seals_only_one_stream() -> None:
    enc = StreamEncryptor(KEY, chunk_size=CS)
    stream = enc.encrypt(io.BytesIO(b"abc"))
    with pytest.raises(RuntimeError):
        _ = enc.plaintext_sha256  # not finished yet
    list(stream)
    with pytest.raises(RuntimeError):
        enc.encrypt(io.BytesIO(b"abc"))  # the same prefix twice would reuse nonces


def test_bad_keys_and_chunk_sizes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        StreamEncryptor(b"short")
    with pytest.raises(InvalidInput):
        StreamEncryptor(KEY, chunk_size=0)
    with pytest.raises(InvalidInput):
        decrypt(seal(b"x"), b"short", io.BytesIO())


def test_data_keys_are_random_and_32_bytes() -> None:
    assert len(new_data_key()) == 32
    assert new_data_key() != new_data_key()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600), chunk_size=st.integers(1, 80),
       cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_any_data_survives_any_rechunking(data: bytes, chunk_size: int, cuts: list[int]) -> None:
    enc = StreamEncryptor(KEY, chunk_size=chunk_size)
    blob = b"".join(enc.encrypt(io.BytesIO(data)))
    assert len(blob) == ciphertext_size(len(data), chunk_size=chunk_size)
    bounds = sorted({c % (len(blob) + 1) for c in cuts} | {0, len(blob)})
    pieces = [blob[a:b] for a, b in zip(bounds, bounds[1:])] + [b""]
    out = io.BytesIO()
    result = decrypt(iter(pieces), KEY, out)
    assert out.getvalue() == data
    assert result.size == len(data) and result.plaintext_sha256 == enc.plaintext_sha256


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_is_detected(data: bytes, position: int, bit: int) -> None:
    blob = bytearray(b"".join(seal(data, chunk_size=32)))
    position %= len(blob)
    blob[position] ^= 1 << bit
    err, written = failure([bytes(blob)])
    index = None if position < HEADER_SIZE else (position - HEADER_SIZE) // (32 + TAG_SIZE)
    if position < 4 + 1 + 4:  # magic, version, chunk size: the header itself is refused or misread
        assert err.chunk_index in (None, 0)
    elif position < HEADER_SIZE:  # the prefix: bound as aad and in the nonce, so chunk 0 fails
        assert err.chunk_index == 0
    else:
        assert err.chunk_index == index
    # Nothing from the damaged chunk (or after it) reached the output.
    assert data.startswith(written) and len(written) <= 32 * (err.chunk_index or 0)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300), keep=st.integers(0, 10_000))
def test_any_truncation_is_detected(data: bytes, keep: int) -> None:
    blob = b"".join(seal(data, chunk_size=32))
    keep %= len(blob)  # a proper prefix
    err, written = failure([blob[:keep]])
    assert (err.chunk_index is None) == (keep < HEADER_SIZE)
    assert data.startswith(written)


# --- each tampering case, named -----------------------------------------------------------

DATA = os.urandom(4 * CS + 10)  # chunks 0-3 full, chunk 4 the short final one


def test_bit_flip_names_the_chunk() -> None:
    pieces = seal(DATA)
    bad = bytearray(pieces[3])  # chunk 2
    bad[5] ^= 0x10
    pieces[3] = bytes(bad)
    err, written = failure(pieces)
    assert err.chunk_index == 2
    assert str(err) == ("chunk 2 failed authentication: tampered, reordered, from another file, "
                        "or wrong key")
    assert err.hint
    assert written == DATA[:2 * CS]


def test_flipped_tag_of_the_final_chunk() -> None:
    pieces = seal(DATA)
    pieces[-1] = pieces[-1][:-1] + bytes([pieces[-1][-1] ^ 1])
    err, written = failure(pieces)
    assert err.chunk_index == 4 and "chunk 4 failed authentication" in str(err)
    assert written == DATA[:4 * CS]


def test_missing_final_chunk_is_truncation() -> None:
    pieces = seal(DATA)[:-1]
    err, written = failure(pieces)
    assert err.chunk_index == 4
    assert str(err) == "stream ends before the final chunk (truncated after chunk 3)"
    assert written == DATA[:3 * CS]


def test_missing_final_chunk_when_all_chunks_are_full() -> None:
    data = os.urandom(4 * CS)
    err, written = failure(seal(data)[:-1])
    assert err.chunk_index == 3
    assert "truncated after chunk 2" in str(err)
    assert written == data[:2 * CS]


def test_cut_inside_the_final_chunk() -> None:
    blob = b"".join(seal(DATA))
    err, written = failure([blob[:-3]])
    assert err.chunk_index == 4 and "truncated" in str(err)
    assert written == DATA[:4 * CS]


def test_nothing_after_the_header() -> None:
    err, written = failure(seal(DATA)[:1])
    assert err.chunk_index == 0 and "no chunk after the header" in str(err)
    assert written == b""


def test_dropped_chunk() -> None:
    pieces = seal(DATA)
    del pieces[2]  # chunk 1
    err, written = failure(pieces)
    assert err.chunk_index == 1 and "chunk 1 failed authentication" in str(err)
    assert written == DATA[:CS]


def test_reordered_chunks() -> None:
    pieces = seal(DATA)
    pieces[2], pieces[3] = pieces[3], pieces[2]  # chunks 1 and 2
    err, written = failure(pieces)
    assert err.chunk_index == 1 and "reordered" in str(err)
    assert written == DATA[:CS]


def test_chunk_spliced_from_another_file_under_the_same_key() -> None:
    ours, theirs = seal(DATA), seal(os.urandom(len(DATA)))
    assert ours[0] != theirs[0]  # different prefixes
    ours[3] = theirs[3]  # chunk 2, same position, same key, same size
    err, written = failure(ours)
    assert err.chunk_index == 2 and "from another file" in str(err)
    assert written == DATA[:2 * CS]


def test_header_from_another_file() -> None:
    ours, theirs = seal(DATA), seal(os.urandom(len(DATA)))
    err, written = failure([theirs[0]] + ours[1:])
    assert err.chunk_index == 0 and written == b""


def test_wrong_key() -> None:
    err, written = failure(seal(DATA), key=new_data_key())
    assert err.chunk_index == 0 and "wrong key" in str(err)
    assert written == b""


def test_trailing_bytes_after_a_short_final_chunk() -> None:
    err, written = failure(seal(DATA) + [b"garbage"])
    assert err.chunk_index == 4 and "trailing bytes" in str(err)
    assert written == DATA[:4 * CS]


def test_trailing_bytes_after_a_full_final_chunk() -> None:
    data = os.urandom(4 * CS)
    pieces = seal(data)
    err, written = failure(pieces + [pieces[-1]])  # the final chunk repeated
    assert err.chunk_index == 4
    assert str(err) == "unexpected data after the final chunk 3 (trailing bytes)"
    assert written == data[:3 * CS]


def test_bad_header_has_no_chunk_index() -> None:
    blob = b"".join(seal(DATA))
    for bad, words in [(b"XXXX" + blob[4:], "magic"),
                       (blob[:4] + b"\x02" + blob[5:], "version 2"),
                       (blob[:5] + struct.pack(">I", 0) + blob[9:], "chunk size"),
                       (blob[:10], "shorter than its 16-byte header")]:
        err, written = failure([bad])
        assert err.chunk_index is None and words in str(err)
        assert written == b""


# --- commitments --------------------------------------------------------------------------

def test_commitment_matches_the_documented_formula() -> None:
    salt, digest = bytes(32), hashlib.sha256(b"").digest()
    # SHA-256 of 32 zero bytes followed by SHA-256(""), a fixed vector.
    assert commitment(salt, digest).hex() == (
        "1c9ecec90e28d2461650418635878a5c91e49f47586ecf75f2b0cbb94e897112")


def test_commitment_is_deterministic_and_salt_sensitive() -> None:
    digest = hashlib.sha256(b"trial data").digest()
    salt = new_salt()
    assert len(salt) == 32 and salt != new_salt()
    assert commitment(salt, digest) == commitment(salt, digest)
    assert commitment(salt, digest) != commitment(new_salt(), digest)
    assert commitment(salt, digest) != commitment(salt, hashlib.sha256(b"trial datA").digest())
    assert verify_commitment(salt, digest, commitment(salt, digest))
    assert not verify_commitment(new_salt(), digest, commitment(salt, digest))


def test_commitment_refuses_wrong_lengths() -> None:
    with pytest.raises(InvalidInput):
        commitment(b"short", bytes(32))
    with pytest.raises(InvalidInput):
        commitment(bytes(32), b"not a digest")


# --- key wrapping -------------------------------------------------------------------------

C1 = b"\x11" * 32
C2 = b"\x22" * 32


def bundle(commitment_: bytes = C1) -> KeyBundle:
    return KeyBundle(data_key=new_data_key(), salt=new_salt(), commitment=commitment_)


def test_wrap_unwrap_round_trip_and_layout() -> None:
    member = X25519PrivateKey.generate()
    original = bundle()
    wrapped = wrap_key_for(public_key_bytes(member), original)
    assert len(wrapped) == 145
    assert wrapped[:33] == b"\x01" + C1
    assert unwrap_key(member, wrapped) == original
    assert unwrap_key(member, wrapped, commitment=C1) == original
    # A fresh ephemeral key per wrap: the same bundle never wraps to the same bytes.
    assert wrap_key_for(public_key_bytes(member), original) != wrapped


def test_wrong_recipient_is_an_integrity_error() -> None:
    wrapped = wrap_key_for(public_key_bytes(X25519PrivateKey.generate()), bundle())
    with pytest.raises(IntegrityError, match="does not open with this private key"):
        unwrap_key(X25519PrivateKey.generate(), wrapped)


def test_replay_for_another_version_is_refused() -> None:
    member = X25519PrivateKey.generate()
    wrapped = wrap_key_for(public_key_bytes(member), bundle(C1))
    with pytest.raises(IntegrityError, match="is for the version with commitment 0x1111"):
        unwrap_key(member, wrapped, commitment=C2)


def test_relabelled_header_fails_authentication() -> None:
    member = X25519PrivateKey.generate()
    wrapped = wrap_key_for(public_key_bytes(member), bundle(C1))
    relabelled = b"\x01" + C2 + wrapped[33:]
    # Even when the caller asks for C2, the header is bound into HPKE's info.
    with pytest.raises(IntegrityError, match="does not open"):
        unwrap_key(member, relabelled, commitment=C2)


@pytest.mark.parametrize("position", [33, 60, 80, 144])
def test_any_altered_byte_of_the_sealed_part_is_refused(position: int) -> None:
    member = X25519PrivateKey.generate()
    wrapped = bytearray(wrap_key_for(public_key_bytes(member), bundle()))
    wrapped[position] ^= 1
    with pytest.raises(IntegrityError):
        unwrap_key(member, bytes(wrapped))


def test_malformed_wrapped_keys() -> None:
    member = X25519PrivateKey.generate()
    wrapped = wrap_key_for(public_key_bytes(member), bundle())
    with pytest.raises(IntegrityError, match="145 bytes"):
        unwrap_key(member, wrapped[:-1])
    with pytest.raises(IntegrityError, match="format 9"):
        unwrap_key(member, b"\x09" + wrapped[1:])
    with pytest.raises(InvalidInput):
        wrap_key_for(b"\x00" * 31, bundle())


def test_key_bundle_validates_and_hides_secrets() -> None:
    b = bundle()
    assert b.data_key.hex() not in repr(b) and b.salt.hex() not in repr(b)
    with pytest.raises(InvalidInput):
        KeyBundle(data_key=b"short", salt=new_salt(), commitment=C1)
    with pytest.raises(InvalidInput):
        KeyBundle(data_key=new_data_key(), salt=new_salt(), commitment=b"\x01" * 31)


def test_public_key_bytes_is_the_raw_key() -> None:
    member = X25519PrivateKey.generate()
    raw = public_key_bytes(member)
    assert raw == member.public_key().public_bytes_raw()
