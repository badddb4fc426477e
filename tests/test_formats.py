"""The byte formats as the README specifies them (section "Byte formats (for other
implementations)"): known-answer vectors in tests/vectors/, and a reader written from the
section's words alone.

The `spec_*` functions implement that section over `cryptography`'s AES-GCM and X25519, hmac and
hashlib: they import nothing of fullchain's crypto, so fullchain is checked against the written
format (and the format against fullchain), never only against itself.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import fullchain
from fullchain import crypto
from fullchain.errors import DecryptionError, IntegrityError
from fullchain.metadata import build_metadata
from fullchain.models import Role
from scripts import make_vectors

VECTORS = Path(__file__).resolve().parent / "vectors"
MiB = 1 << 20


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


STREAM = load("stream.json")
SMALL = [v for v in STREAM["vectors"] if "ciphertext" in v]
DEFAULT = next(v for v in STREAM["vectors"] if v["chunk_size"] == MiB)
BUNDLE = load("bundle.json")["vectors"][0]
COMMITMENTS = load("commitment.json")["vectors"]


# --- the spec, written from the README only -------------------------------------------------

class Refused(ValueError):
    """The spec says a reader must refuse this input."""


def spec_open_stream(key: bytes, stream: bytes) -> bytes:
    """Payload stream, version 1."""
    if len(stream) < 16:
        raise Refused("fewer than 16 header bytes")
    header = stream[:16]
    if header[0:4] != b"FCSE":
        raise Refused("bad magic")
    if header[4] != 1:
        raise Refused(f"version {header[4]}")
    size = int.from_bytes(header[5:9], "big")
    if not 1 <= size <= 16 * MiB:
        raise Refused(f"chunk size {size}")
    prefix = header[9:16]
    rest = stream[16:]
    if not rest:
        raise Refused("nothing after the header")
    frame = size + 16
    frames = [rest[i:i + frame] for i in range(0, len(rest), frame)]
    if len(frames[-1]) < 16:
        raise Refused("final frame shorter than a tag")
    if len(frames) > 2**32:
        raise Refused("too many chunks")
    aead = AESGCM(key)
    plain = []
    for i, sealed in enumerate(frames):
        flag = b"\x01" if i == len(frames) - 1 else b"\x00"
        plain.append(aead.decrypt(prefix + i.to_bytes(4, "big") + flag, sealed, header))
    return b"".join(plain)


def spec_commitment(salt: bytes, plaintext: bytes) -> bytes:
    return hashlib.sha256(salt + hashlib.sha256(plaintext).digest()).digest()


# RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-256-GCM 0x0002.
_KEM = b"KEM\x00\x20"
_HPKE = b"HPKE\x00\x20\x00\x01\x00\x02"


def _lextract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), b"HPKE-v1" + suite + label + ikm, hashlib.sha256).digest()


def _lexpand(suite: bytes, prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
    # n <= 32 here: one HMAC block
    msg = n.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info + b"\x01"
    return hmac.new(prk, msg, hashlib.sha256).digest()[:n]


def _hpke_key_nonce(dh: bytes, enc: bytes, pk_r: bytes, info: bytes) -> tuple[bytes, bytes]:
    shared = _lexpand(_KEM, _lextract(_KEM, b"", b"eae_prk", dh), b"shared_secret", enc + pk_r, 32)
    context = (b"\x00" + _lextract(_HPKE, b"", b"psk_id_hash", b"")
               + _lextract(_HPKE, b"", b"info_hash", info))
    secret = _lextract(_HPKE, shared, b"secret", b"")
    return _lexpand(_HPKE, secret, b"key", context, 32), _lexpand(_HPKE, secret, b"base_nonce", context, 12)


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes_raw()


def spec_seal_bundle(pk_r: bytes, sk_e: X25519PrivateKey, data_key: bytes, salt: bytes,
                     commitment: bytes) -> bytes:
    head = b"\x01" + commitment
    enc = _raw(sk_e.public_key())
    key, nonce = _hpke_key_nonce(sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r)), enc, pk_r,
                                 b"fullchain key bundle v1" + head)
    return head + enc + AESGCM(key).encrypt(nonce, data_key + salt, b"")


def spec_open_bundle(sk_r: X25519PrivateKey, blob: bytes, commitment: bytes) -> tuple[bytes, bytes]:
    """Key bundle, format 0x01: (data key, salt)."""
    if len(blob) != 145:
        raise Refused(f"{len(blob)} bytes")
    if blob[0] != 0x01:
        raise Refused(f"format {blob[0]}")
    if blob[1:33] != commitment:
        raise Refused("the bundle of another version")
    enc = blob[33:65]
    key, nonce = _hpke_key_nonce(sk_r.exchange(X25519PublicKey.from_public_bytes(enc)), enc,
                                 _raw(sk_r.public_key()), b"fullchain key bundle v1" + blob[:33])
    plain = AESGCM(key).decrypt(nonce, blob[65:], b"")
    return plain[:32], plain[32:]


def spec_cid(codec: int, digest: bytes) -> str:
    binary = b"\x01" + bytes([codec]) + b"\x12\x20" + digest  # both codecs are < 0x80: one varint byte
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def spec_hpke_private_key(profile_dir: Path, password: str) -> X25519PrivateKey:
    """HPKE key file, format 2 (the keystore is Web3 Secret Storage, opened by eth-account)."""
    from eth_account import Account

    signing_key = Account.decrypt(json.loads((profile_dir / "keystore.json").read_text()), password)
    doc = json.loads((profile_dir / "hpke-key.json").read_text())
    if doc["format"] != 2:
        raise Refused(f"format {doc['format']}")
    public = bytes.fromhex(doc["public_key"])
    k = HKDF(SHA256(), 32, salt=bytes.fromhex(doc["kdf"]["salt"]), info=b"fullchain/hpke-key/v2").derive(signing_key)
    aad = b"fullchain hpke-key v2|" + doc["address"].lower().encode("ascii") + b"|" + public
    raw = AESGCM(k).decrypt(bytes.fromhex(doc["cipher"]["nonce"]), bytes.fromhex(doc["ciphertext"]), aad)
    private = X25519PrivateKey.from_private_bytes(raw)
    if _raw(private.public_key()) != public:
        raise Refused("the private key does not match public_key")
    return private


# --- helpers over fullchain --------------------------------------------------------------------

def fullchain_seal(monkeypatch: pytest.MonkeyPatch, key: bytes, prefix: bytes, plaintext: bytes,
                   chunk_size: int) -> list[bytes]:
    """What fullchain emits when its random prefix happens to be `prefix`."""
    with monkeypatch.context() as m:
        m.setattr(crypto, "os", SimpleNamespace(urandom=lambda n: prefix[:n]))
        encryptor = crypto.StreamEncryptor(key, chunk_size=chunk_size)
    return list(encryptor.encrypt(io.BytesIO(plaintext)))


def fullchain_open(key: bytes, stream: bytes) -> bytes:
    out = io.BytesIO()
    crypto.decrypt([stream], key, out)
    return out.getvalue()


def shake(label: str, n: int) -> bytes:
    return hashlib.shake_256(label.encode("ascii")).digest(n)


KEY = bytes.fromhex(STREAM["key"])


# --- stream ----------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", SMALL, ids=[v["name"] for v in SMALL])
def test_stream_vector_opens_with_the_spec_reader(vector: dict[str, Any]) -> None:
    stream, plain, size = bytes.fromhex(vector["ciphertext"]), bytes.fromhex(vector["plaintext"]), vector["chunk_size"]
    header = b"FCSE\x01" + size.to_bytes(4, "big") + bytes.fromhex(vector["prefix"])
    assert stream[:16] == header == bytes.fromhex(vector["header"])
    assert len(stream) == 16 + len(plain) + 16 * max(1, -(-len(plain) // size))
    assert spec_open_stream(KEY, stream) == plain
    chunks = [bytes.fromhex(c) for c in vector["chunks"]]
    assert b"".join(chunks) == stream[16:]
    assert all(len(c) == size + 16 for c in chunks[:-1]) and 16 <= len(chunks[-1]) <= size + 16


@pytest.mark.parametrize("vector", SMALL, ids=[v["name"] for v in SMALL])
def test_fullchain_recreates_the_stream_vector_byte_for_byte(vector: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    plain = bytes.fromhex(vector["plaintext"])
    pieces = fullchain_seal(monkeypatch, KEY, bytes.fromhex(vector["prefix"]), plain, vector["chunk_size"])
    assert [p.hex() for p in pieces] == [vector["header"], *vector["chunks"]]
    assert fullchain_open(KEY, bytes.fromhex(vector["ciphertext"])) == plain


def test_default_chunk_size_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = shake(DEFAULT["plaintext_shake256_label"], DEFAULT["plaintext_size"])
    assert hashlib.sha256(plain).hexdigest() == DEFAULT["plaintext_sha256"]
    pieces = fullchain_seal(monkeypatch, KEY, bytes.fromhex(DEFAULT["prefix"]), plain, crypto.CHUNK_SIZE)
    stream = b"".join(pieces)
    assert pieces[0].hex() == DEFAULT["header"] and DEFAULT["header"][8:18] == "0100100000"
    assert [p[-16:].hex() for p in pieces[1:]] == DEFAULT["chunk_tags"] and len(pieces) == 4
    assert (len(stream), hashlib.sha256(stream).hexdigest()) == (DEFAULT["ciphertext_size"], DEFAULT["ciphertext_sha256"])
    assert spec_open_stream(KEY, stream) == plain


@pytest.mark.parametrize("chunk_size", [32, crypto.CHUNK_SIZE])
def test_chunk_1_opens_directly_with_aesgcm_and_the_documented_nonce_and_aad(chunk_size: int) -> None:
    key = AESGCM.generate_key(bit_length=256)
    plain = shake(f"chunk 1 test {chunk_size}", 2 * chunk_size + 3)
    stream = b"".join(crypto.StreamEncryptor(key, chunk_size=chunk_size).encrypt(io.BytesIO(plain)))
    header = stream[:16]
    start = 16 + (chunk_size + 16)
    chunk1 = stream[start:start + chunk_size + 16]
    nonce = header[9:16] + (1).to_bytes(4, "big") + b"\x00"  # not the final chunk of three
    assert AESGCM(key).decrypt(nonce, chunk1, header) == plain[chunk_size:2 * chunk_size]
    with pytest.raises(InvalidTag):  # the header is the associated data of every chunk, not only of chunk 0
        AESGCM(key).decrypt(nonce, chunk1, b"")


def _three_full() -> dict[str, Any]:
    return next(v for v in SMALL if v["name"] == "three full chunks")


S = 32
FRAME = S + 16
STREAM_REFUSALS = {
    "bad magic": lambda b: b"FCSX" + b[4:],
    "version 2": lambda b: b[:4] + b"\x02" + b[5:],
    "chunk size 0": lambda b: b[:5] + (0).to_bytes(4, "big") + b[9:],
    "chunk size above 16 MiB": lambda b: b[:5] + (16 * MiB + 1).to_bytes(4, "big") + b[9:],
    "chunk size edited": lambda b: b[:5] + (S // 2).to_bytes(4, "big") + b[9:],
    "prefix edited": lambda b: b[:15] + bytes([b[15] ^ 1]) + b[16:],
    "header only": lambda b: b[:16],
    "short header": lambda b: b[:15],
    "cut at a chunk boundary": lambda b: b[:16 + 2 * FRAME],
    "trailing bytes": lambda b: b + b"\x00",
    "chunks 0 and 1 swapped": lambda b: b[:16] + b[16 + FRAME:16 + 2 * FRAME] + b[16:16 + FRAME] + b[16 + 2 * FRAME:],
    "final frame shorter than a tag": lambda b: b[:16 + 2 * FRAME + 5],
    "bit flipped in chunk 1": lambda b: b[:16 + FRAME + 3] + bytes([b[16 + FRAME + 3] ^ 0x80]) + b[16 + FRAME + 4:],
}


@pytest.mark.parametrize("edit", list(STREAM_REFUSALS), ids=list(STREAM_REFUSALS))
def test_what_the_spec_refuses_fullchain_refuses(edit: str) -> None:
    vector = _three_full()
    assert vector["chunk_size"] == S
    bad = STREAM_REFUSALS[edit](bytes.fromhex(vector["ciphertext"]))
    with pytest.raises((Refused, InvalidTag)):
        spec_open_stream(KEY, bad)
    with pytest.raises(DecryptionError):
        fullchain_open(KEY, bad)


# --- commitment ------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", COMMITMENTS)
def test_commitment_vectors(vector: dict[str, Any]) -> None:
    salt, plain = bytes.fromhex(vector["salt"]), bytes.fromhex(vector["plaintext"])
    assert hashlib.sha256(plain).hexdigest() == vector["plaintext_sha256"]
    assert spec_commitment(salt, plain).hex() == vector["commitment"]
    assert crypto.commitment(salt, hashlib.sha256(plain).digest()).hex() == vector["commitment"]


# --- key bundle ------------------------------------------------------------------------------

def test_bundle_vector_opens_with_fullchain_and_the_spec_and_is_recreated() -> None:
    v = {k: bytes.fromhex(x) if k not in ("bundle_cid",) else x for k, x in BUNDLE.items()}
    recipient = X25519PrivateKey.from_private_bytes(v["recipient_private_key"])
    ephemeral = X25519PrivateKey.from_private_bytes(v["ephemeral_private_key"])
    wrapped = v["wrapped"]
    assert len(wrapped) == 145 and wrapped[0] == 1 and wrapped[1:33] == v["commitment"]
    assert wrapped[33:65] == _raw(ephemeral.public_key())
    assert v["info"] == b"fullchain key bundle v1" + wrapped[:33] and len(v["info"]) == 56
    assert v["plaintext"] == v["data_key"] + v["salt"]

    assert spec_open_bundle(recipient, wrapped, v["commitment"]) == (v["data_key"], v["salt"])
    bundle = crypto.unwrap_key(recipient, wrapped, commitment=v["commitment"])
    assert (bundle.data_key, bundle.salt, bundle.commitment) == (v["data_key"], v["salt"], v["commitment"])
    # Any RFC 9180 implementation opens it with the documented info and empty aad.
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    assert suite.decrypt(wrapped[33:], recipient, info=v["info"]) == v["plaintext"]

    assert spec_seal_bundle(v["recipient_public_key"], ephemeral, v["data_key"], v["salt"], v["commitment"]) == wrapped
    assert hashlib.sha256(wrapped).digest() == v["bundle_digest"]
    assert spec_cid(0x55, v["bundle_digest"]) == BUNDLE["bundle_cid"]


def test_bundles_fullchain_wraps_open_with_the_spec() -> None:
    recipient = X25519PrivateKey.generate()
    salt = crypto.new_salt()
    bundle = crypto.KeyBundle(data_key=crypto.new_data_key(), salt=salt,
                              commitment=crypto.commitment(salt, hashlib.sha256(b"x").digest()))
    wrapped = crypto.wrap_key_for(_raw(recipient.public_key()), bundle)
    assert len(wrapped) == 145 and wrapped[:33] == b"\x01" + bundle.commitment
    assert spec_open_bundle(recipient, wrapped, bundle.commitment) == (bundle.data_key, bundle.salt)


BUNDLE_REFUSALS = {
    "144 bytes": lambda b, c: (b[:-1], c),
    "format 2": lambda b, c: (b"\x02" + b[1:], c),
    "another version's bundle": lambda b, c: (b, bytes(32)),
    "commitment field edited to match": lambda b, c: (b[:1] + bytes(32) + b[33:], bytes(32)),
    "ciphertext altered": lambda b, c: (b[:-1] + bytes([b[-1] ^ 1]), c),
}


@pytest.mark.parametrize("edit", list(BUNDLE_REFUSALS), ids=list(BUNDLE_REFUSALS))
def test_bundles_the_spec_refuses_fullchain_refuses(edit: str) -> None:
    recipient = X25519PrivateKey.from_private_bytes(bytes.fromhex(BUNDLE["recipient_private_key"]))
    wrapped, commitment = BUNDLE_REFUSALS[edit](bytes.fromhex(BUNDLE["wrapped"]), bytes.fromhex(BUNDLE["commitment"]))
    with pytest.raises((Refused, InvalidTag)):
        spec_open_bundle(recipient, wrapped, commitment)
    with pytest.raises(IntegrityError):
        crypto.unwrap_key(recipient, wrapped, commitment=commitment)


# --- the vector files ------------------------------------------------------------------------

def test_the_committed_vectors_are_what_the_generator_makes_now() -> None:
    for name, text in make_vectors.build().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, f"{name}: run python scripts/make_vectors.py"


# --- done when: a payload fullchain registered, read from the spec alone ---------------------

PW = "formats-tests"


def test_a_registered_dataset_is_read_from_the_chain_and_the_store_by_the_spec(home: Path, tmp_path: Path) -> None:
    fullchain.init("hospital", password=PW)
    fc = fullchain.connect("hospital", password=PW)
    fc.deploy([fullchain.Founder(fc.address, Role.HOSPITAL | Role.GOVERNOR,
                                 bytes.fromhex(fc.profile.hpke_public_key[2:]))], threshold=1)
    src = tmp_path / "dm.bin"
    src.write_bytes(shake("registered payload", 2 * MiB + 5))  # three chunks
    meta = build_metadata(title="Study 001 DM", standard="sdtm", tier="restricted", data_use=["HMB"])
    reg = fc.datasets.register(src, meta)

    # Only chain reads and content-addressed blocks from here on; everything else is the spec.
    registry, store = fc.datasets.contract.functions, fc.datasets.store
    (commitment, payload_digest, meta_digest, size, _, payload_codec, meta_codec, standard, tier,
     erased) = registry.version(reg.dataset_id, reg.version).call()
    assert (size, standard, tier, erased) == (src.stat().st_size, 1, 2, False)
    digest = bytes(registry.keyBundle(reg.dataset_id, reg.version, fc.address).call())
    bundle_cid = spec_cid(0x55, digest)
    assert bundle_cid.startswith("bafkrei")
    blob = b"".join(store.cat(bundle_cid))
    assert hashlib.sha256(blob).digest() == digest

    private = spec_hpke_private_key(home / "profiles" / "hospital", PW)
    data_key, salt = spec_open_bundle(private, blob, bytes(commitment))

    payload_cid = spec_cid(payload_codec, bytes(payload_digest))
    assert payload_cid == reg.cid
    plain = spec_open_stream(data_key, b"".join(store.cat(payload_cid)))
    assert plain == src.read_bytes()
    assert spec_commitment(salt, plain) == bytes(commitment)

    document = spec_open_stream(data_key, b"".join(store.cat(spec_cid(meta_codec, bytes(meta_digest)))))
    parsed = json.loads(document)
    assert document == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    described = {"title": "Study 001 DM", "description": "", "standard": "sdtm", "domain": None,
                 "subject_count": None, "data_use": ["DUO:0000006"], "tier": "restricted", "extensions": {}}
    assert {k: v for k, v in parsed.items() if k in described} == described
    # What registration measured and checked (issue 9) joins the document; nothing else does.
    assert set(parsed) - set(described) <= {"measurement", "measurement_skipped", "redline", "allow_identifiers"}
    assert parsed["redline"]["status"] == "skipped"  # random bytes: neither CSV, XPT nor NDJSON


# --- journal names and on-chain encodings, against the README's words and tables ------------

def test_journal_entry_name_follows_the_spec() -> None:
    from fullchain.journal import intent_key, journal_secret

    private = X25519PrivateKey.from_private_bytes(shake("journal key", 32))
    secret = hmac.new(private.private_bytes_raw(), b"fullchain journal key v1", hashlib.sha256).digest()
    assert journal_secret(private) == secret
    plain, meta = hashlib.sha256(b"data").digest(), b'{"title":"t"}'
    for dataset_id, derived, target in [(None, [7, 3], b"None|3,7"), (5, [], b"5|")]:
        mac = hmac.new(secret, plain + hashlib.sha256(meta).digest() + target, hashlib.sha256)
        assert intent_key(secret, plain, meta, dataset_id, derived) == mac.hexdigest()[:32]


def _readme_formats_section() -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    return text.split("## Byte formats (for other implementations)\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_tables_are_the_codes_fullchain_writes() -> None:
    import re

    from fullchain.duo import MODIFIER_BITS, PERMISSIONS, Purpose, modifier_mask, parse_purpose, terms
    from fullchain.metadata import STANDARD_CODES, TIER_CODES

    section = _readme_formats_section()
    rows = re.findall(r"^\| (\d+) \| (DUO:\d{7}) \| (\w+) \| (\d+) \| (DUO:\d{7}) \| (\w+) \|$", section, re.M)
    documented = {int(bit): (code, short) for row in rows for bit, code, short in (row[:3], row[3:])}
    assert documented == {bit: (code, terms()[code].shorthand) for bit, code in enumerate(MODIFIER_BITS)}
    assert modifier_mask(["DUO:0000012", "NCU"]) == 1 | 1 << 17

    purposes = dict(re.findall(r"(NRES|GRU|HMB|DS|POA) (\d+)", section))
    assert {terms()[p].shorthand: Purpose(p).number for p in PERMISSIONS} == {k: int(v) for k, v in purposes.items()}
    ds = parse_purpose("DS", "MONDO:0005015")
    assert ds.disease_bytes == b"MONDO:0005015".ljust(32, b"\x00") and parse_purpose("HMB").disease_bytes == bytes(32)
    assert Purpose.from_chain(7, ds.disease_bytes) == ds

    def codes(line: str) -> dict[str, int]:
        return {name: int(n) for name, n in re.findall(r"(\w+) (\d+)", line)}

    standard = re.search(r"^\| standard \| uint8 \| (.*) \|$", section, re.M)
    tier = re.search(r"^\| tier \| uint8 \(enum\) \| (.*) \|$", section, re.M)
    assert standard and tier
    assert codes(standard.group(1)) == STANDARD_CODES and codes(tier.group(1)) == TIER_CODES


def test_metadata_canonical_bytes_are_as_documented() -> None:
    meta = build_metadata(title="Étude 😀", standard="omop", data_use=["GRU"], extensions={"z": {"b": 1, "a": 2}})
    assert meta.to_bytes() == (
        b'{"data_use":["DUO:0000042"],"description":"","domain":null,"extensions":{"z":{"a":2,"b":1}},'
        b'"standard":"omop","subject_count":null,"tier":"consortium","title":"\\u00c9tude \\ud83d\\ude00"}')
