"""Besu node keys: a secp256k1 key pair whose public key is the node's enode id and whose
address is its validator address.

Besu reads `key` as the hex private key (the file Besu itself writes holds `0x` + 64 hex digits)
and `key.pub` holds `0x` + the 128 hex digits of the uncompressed public key without its 04
prefix, the id in `enode://<id>@host:port`.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from eth_keys import keys

from fullchain.errors import ConfigError

# Order of secp256k1: a private key is an integer in [1, n-1].
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class NodeKey:
    private_key: bytes
    public_key: bytes  # 64 bytes: x || y
    address: str  # checksummed

    def __repr__(self) -> str:  # never show the private key in a traceback or a log
        return f"NodeKey(address={self.address})"


def from_private(private_key: bytes) -> NodeKey:
    key = keys.PrivateKey(private_key)
    public = key.public_key
    return NodeKey(private_key=private_key, public_key=public.to_bytes(), address=public.to_checksum_address())


def generate() -> NodeKey:
    while True:
        candidate = secrets.token_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < _SECP256K1_N:
            return from_private(candidate)


def private_key_text(key: NodeKey) -> str:
    return "0x" + key.private_key.hex()


def public_key_text(key: NodeKey) -> str:
    return "0x" + key.public_key.hex()


def read_private(path: Path) -> NodeKey:
    """The node key in a Besu `key` file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the node key {path} ({exc.strerror})",
                          hint="check the path; node keys are readable by their owner only") from None
    body = text[2:] if text.lower().startswith("0x") else text
    try:
        raw = bytes.fromhex(body)
        if len(raw) != 32:
            raise ValueError
        return from_private(raw)
    except ValueError:
        raise ConfigError(f"{path} does not hold a secp256k1 private key (0x + 64 hex digits)",
                          hint="restore the node key from your backup; a new key is a new node") from None


def read_public(path: Path) -> bytes:
    """The 64-byte public key in a `key.pub` file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror})", hint="regenerate the network directory") from None
    body = text[2:] if text.lower().startswith("0x") else text
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != 64:
        raise ConfigError(f"{path} does not hold a node public key (0x + 128 hex digits)",
                          hint="write it again from the node key: `besu public-key export`")
    return raw


def enode(public_key: bytes, host: str, port: int) -> str:
    return f"enode://{public_key.hex()}@{host}:{port}"
