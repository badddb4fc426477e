#!/usr/bin/env python3
"""Write the known-answer vectors of fullchain's byte formats into tests/vectors/.

    python scripts/make_vectors.py           # (re)write tests/vectors/*.json
    python scripts/make_vectors.py --check   # exit 1 if the committed files differ

Every vector is what fullchain itself emits from fixed inputs: the stream vectors come from
`fullchain.crypto.StreamEncryptor` with its random nonce prefix pinned, the commitments from
`fullchain.crypto.commitment`. The HPKE library fullchain uses (`cryptography`) takes no
ephemeral key, so the key bundle vector is sealed here by RFC 9180 base mode written out over
X25519, HMAC-SHA256 and AES-256-GCM with a fixed ephemeral key, and is only written once
`fullchain.crypto.unwrap_key` has opened it. The byte layouts are specified in the README,
section "Byte formats (for other implementations)"; tests/test_formats.py checks both ways.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fullchain import crypto
from fullchain.storage import cid as cids

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
SMALL_CHUNK = 32  # any chunk size 1..16 MiB is valid; small ones keep the vectors readable


def _bytes(label: str, n: int) -> bytes:
    """Deterministic test bytes: SHAKE-256 of an ASCII label, `n` bytes long."""
    return hashlib.shake_256(label.encode("ascii")).digest(n)


@contextmanager
def pinned_prefix(prefix: bytes) -> Iterator[None]:
    """Make the next StreamEncryptor take `prefix` as its random nonce prefix."""
    real = crypto.os

    def urandom(n: int) -> bytes:
        if n != len(prefix):
            raise AssertionError(f"expected a request for the {len(prefix)}-byte prefix, not {n} bytes")
        return prefix

    crypto.os = SimpleNamespace(urandom=urandom)  # type: ignore[assignment]
    try:
        yield
    finally:
        crypto.os = real  # type: ignore[assignment]


def seal_stream(key: bytes, prefix: bytes, plaintext: bytes, chunk_size: int) -> list[bytes]:
    """[header, chunk 0, chunk 1, ...] as fullchain emits them for this prefix."""
    with pinned_prefix(prefix):
        encryptor = crypto.StreamEncryptor(key, chunk_size=chunk_size)
    return list(encryptor.encrypt(io.BytesIO(plaintext)))


# --- RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM -----------

KEM_SUITE = b"KEM" + (0x0020).to_bytes(2, "big")
HPKE_SUITE = b"HPKE" + (0x0020).to_bytes(2, "big") + (0x0001).to_bytes(2, "big") + (0x0002).to_bytes(2, "big")


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def hpke_context(shared_dh: bytes, enc: bytes, recipient_public: bytes, info: bytes) -> dict[str, bytes]:
    """The base-mode key schedule (RFC 9180 sections 4.1 and 5.1): shared secret, key, nonce."""
    eae_prk = _labeled_extract(KEM_SUITE, b"", b"eae_prk", shared_dh)
    shared_secret = _labeled_expand(KEM_SUITE, eae_prk, b"shared_secret", enc + recipient_public, 32)
    psk_id_hash = _labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(HPKE_SUITE, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash  # mode_base = 0x00
    secret = _labeled_extract(HPKE_SUITE, shared_secret, b"secret", b"")
    return {"shared_secret": shared_secret,
            "key": _labeled_expand(HPKE_SUITE, secret, b"key", context, 32),
            "base_nonce": _labeled_expand(HPKE_SUITE, secret, b"base_nonce", context, 12)}


def _raw_public(private: X25519PrivateKey) -> bytes:
    return crypto.public_key_bytes(private)


def wrap_with_ephemeral(recipient_public: bytes, ephemeral: X25519PrivateKey, bundle: crypto.KeyBundle,
                        ) -> tuple[bytes, dict[str, bytes]]:
    """What `fullchain.crypto.wrap_key_for` emits, with the ephemeral key given instead of drawn."""
    header = bytes([crypto.WRAP_FORMAT_X25519]) + bundle.commitment
    enc = _raw_public(ephemeral)
    dh = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    ctx = hpke_context(dh, enc, recipient_public, b"fullchain key bundle v1" + header)
    sealed = AESGCM(ctx["key"]).encrypt(ctx["base_nonce"], bundle.data_key + bundle.salt, b"")
    return header + enc + sealed, ctx


# --- the vector files ---------------------------------------------------------------------

def stream_vectors() -> dict[str, Any]:
    key = _bytes("fullchain vector data key", 32)
    cases = [("empty file", 0), ("one byte", 1), ("exactly one chunk", SMALL_CHUNK),
             ("one chunk plus one byte", SMALL_CHUNK + 1), ("three chunks, the last short", 2 * SMALL_CHUNK + 5),
             ("three full chunks", 3 * SMALL_CHUNK)]
    vectors: list[dict[str, Any]] = []
    for n, (name, size) in enumerate(cases):
        prefix = _bytes(f"fullchain vector prefix {n}", crypto.PREFIX_SIZE)
        plaintext = _bytes(f"fullchain vector plaintext {n}", size)
        pieces = seal_stream(key, prefix, plaintext, SMALL_CHUNK)
        vectors.append({"name": name, "chunk_size": SMALL_CHUNK, "prefix": prefix.hex(),
                        "plaintext": plaintext.hex(), "header": pieces[0].hex(),
                        "chunks": [p.hex() for p in pieces[1:]], "ciphertext": b"".join(pieces).hex()})
    # The chunk size every payload really uses: the ciphertext is pinned by its digest and by
    # each chunk's tag, to keep the file small.
    size = 2 * crypto.CHUNK_SIZE + 1000
    seed = "fullchain vector 1 MiB chunks"
    prefix = _bytes("fullchain vector prefix 1 MiB", crypto.PREFIX_SIZE)
    plaintext = _bytes(seed, size)
    pieces = seal_stream(key, prefix, plaintext, crypto.CHUNK_SIZE)
    blob = b"".join(pieces)
    vectors.append({"name": "default 1 MiB chunks, three chunks", "chunk_size": crypto.CHUNK_SIZE,
                    "prefix": prefix.hex(), "plaintext_shake256_label": seed, "plaintext_size": size,
                    "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(), "header": pieces[0].hex(),
                    "chunk_tags": [p[-crypto.TAG_SIZE:].hex() for p in pieces[1:]],
                    "ciphertext_size": len(blob), "ciphertext_sha256": hashlib.sha256(blob).hexdigest()})
    return {"format": "fullchain payload stream, version 1",
            "spec": "README.md, section 'Byte formats (for other implementations)'",
            "generator": "scripts/make_vectors.py",
            "plaintext_rule": "where a plaintext is not given in hex, it is the first plaintext_size bytes of "
                              "SHAKE-256 over the ASCII label",
            "key": key.hex(), "vectors": vectors}


def commitment_vectors() -> dict[str, Any]:
    vectors = []
    for n, plaintext in enumerate([b"", b"a", b"STUDYID,DOMAIN,USUBJID\nS001,DM,S001-0001\n"]):
        salt = _bytes(f"fullchain vector salt {n}", crypto.SALT_SIZE)
        digest = hashlib.sha256(plaintext).digest()
        vectors.append({"salt": salt.hex(), "plaintext": plaintext.hex(), "plaintext_sha256": digest.hex(),
                        "commitment": crypto.commitment(salt, digest).hex()})
    return {"format": "fullchain salted commitment: SHA-256(salt || SHA-256(plaintext))",
            "spec": "README.md, section 'Byte formats (for other implementations)'",
            "generator": "scripts/make_vectors.py", "vectors": vectors}


def bundle_vectors() -> dict[str, Any]:
    recipient = X25519PrivateKey.from_private_bytes(_bytes("fullchain vector recipient key", 32))
    ephemeral = X25519PrivateKey.from_private_bytes(_bytes("fullchain vector ephemeral key", 32))
    salt = _bytes("fullchain vector salt 0", crypto.SALT_SIZE)
    bundle = crypto.KeyBundle(data_key=_bytes("fullchain vector data key", 32), salt=salt,
                              commitment=crypto.commitment(salt, hashlib.sha256(b"").digest()))
    wrapped, ctx = wrap_with_ephemeral(_raw_public(recipient), ephemeral, bundle)
    opened = crypto.unwrap_key(recipient, wrapped, commitment=bundle.commitment)
    if opened != bundle:
        raise AssertionError("fullchain does not open the vector this script sealed")
    digest = hashlib.sha256(wrapped).digest()
    return {"format": "fullchain wrapped key bundle, format byte 0x01",
            "spec": "README.md, section 'Byte formats (for other implementations)'",
            "generator": "scripts/make_vectors.py",
            "vectors": [{
                "recipient_private_key": recipient.private_bytes_raw().hex(),
                "recipient_public_key": _raw_public(recipient).hex(),
                "ephemeral_private_key": ephemeral.private_bytes_raw().hex(),
                "data_key": bundle.data_key.hex(), "salt": bundle.salt.hex(), "commitment": bundle.commitment.hex(),
                "info": (b"fullchain key bundle v1" + wrapped[:33]).hex(), "aad": "",
                "plaintext": (bundle.data_key + bundle.salt).hex(),
                "hpke_shared_secret": ctx["shared_secret"].hex(), "hpke_key": ctx["key"].hex(),
                "hpke_base_nonce": ctx["base_nonce"].hex(),
                "wrapped": wrapped.hex(), "bundle_digest": digest.hex(),
                "bundle_cid": cids.to_str(cids.make_cid(cids.RAW, digest)),
            }]}


FILES = {"stream.json": stream_vectors, "commitment.json": commitment_vectors, "bundle.json": bundle_vectors}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1) + "\n"


def build() -> dict[str, str]:
    """File name -> the text that file must hold."""
    return {name: render(make()) for name, make in FILES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed vectors differ")
    args = parser.parse_args(argv)
    stale = []
    for name, text in build().items():
        path = VECTORS / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(name)
        if not args.check:
            VECTORS.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale vectors: {', '.join(stale)} (run python scripts/make_vectors.py)", file=sys.stderr)
        return 1
    print(("written: " + ", ".join(stale)) if stale and not args.check else "vectors up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
