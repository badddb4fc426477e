"""libp2p Ed25519 identities as IPFS Cluster stores them in `identity.json`.

Keys are protobuf messages `{Type = 1: KeyType, Data = 2: bytes}` with Ed25519 = 1; the public
key's Data is the 32-byte key, the private key's Data the 32-byte seed followed by the public key
(libp2p peer-ids spec). The peer id is the multihash of the serialized public key: serialized
Ed25519 public keys are 36 bytes, under the 42-byte limit, so the multihash is the identity one
(code 0x00, length 36), written in base58btc: the familiar `12D3KooW...`. `private_key` in
identity.json is the serialized private key in standard base64 (go's `crypto.MarshalPrivateKey`).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_TYPE_ED25519 = 1
_IDENTITY_MULTIHASH = 0x00
_MAX_INLINE_KEY = 42
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _field(number: int, wire_type: int) -> bytes:
    return bytes([(number << 3) | wire_type])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key_message(data: bytes) -> bytes:
    return _field(1, 0) + _varint(KEY_TYPE_ED25519) + _field(2, 2) + _varint(len(data)) + data


def marshal_public_key(public_key: bytes) -> bytes:
    return _key_message(public_key)


def marshal_private_key(seed: bytes, public_key: bytes) -> bytes:
    return _key_message(seed + public_key)


def base58btc(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _BASE58_ALPHABET[rest] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


def peer_id(public_key: bytes) -> str:
    serialized = marshal_public_key(public_key)
    if len(serialized) > _MAX_INLINE_KEY:  # never for Ed25519; kept so the rule reads as specified
        raise ValueError("only inline (identity multihash) peer ids are produced here")
    return base58btc(bytes([_IDENTITY_MULTIHASH]) + _varint(len(serialized)) + serialized)


@dataclass(frozen=True)
class Identity:
    peer_id: str
    private_key_b64: str

    def __repr__(self) -> str:  # the private key stays out of tracebacks and logs
        return f"Identity(peer_id={self.peer_id})"


def identity_from_seed(seed: bytes) -> Identity:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return Identity(peer_id=peer_id(public),
                    private_key_b64=base64.b64encode(marshal_private_key(seed, public)).decode("ascii"))


def generate_identity() -> Identity:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return identity_from_seed(seed)
