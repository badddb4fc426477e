"""Parsing of user-given identifiers: accounts, hex strings, enode URLs."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

from .errors import InvalidInput

_ENODE_KEY = re.compile(r"^[0-9a-fA-F]{128}$")


def to_account(text: str, *, what: str = "account") -> str:
    """A checksummed address, or InvalidInput saying what is wrong with `text`."""
    value = text.strip()
    if not is_hex_address(value):
        raise InvalidInput(f"{what} '{text}' is not an Ethereum address",
                           hint="give 0x followed by 40 hexadecimal digits")
    if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
        raise InvalidInput(f"{what} '{text}' has a wrong checksum (mixed case that does not match)",
                           hint="copy the address again, or write it in lower case")
    return to_checksum_address(value)


def to_bytes_hex(text: str, *, what: str, length: int | None = None) -> bytes:
    value = text.strip()
    body = value[2:] if value.lower().startswith("0x") else value
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise InvalidInput(f"{what} '{text}' is not hexadecimal", hint="give 0x followed by hex digits") from None
    if length is not None and len(raw) != length:
        raise InvalidInput(f"{what} must be {length} bytes, got {len(raw)}",
                           hint=f"give 0x followed by {2 * length} hex digits")
    return raw


def parse_enode(text: str) -> tuple[bytes, str, int]:
    """`enode://<128 hex>@host:port` to (public key, host, port)."""
    parts = urlsplit(text.strip())
    key = parts.username or ""
    if parts.scheme != "enode" or not _ENODE_KEY.match(key) or not parts.hostname:
        raise InvalidInput(f"'{text}' is not an enode URL",
                           hint="give enode://<128 hex digits of the node key>@host:port")
    try:
        port = parts.port or 30303
    except ValueError:
        raise InvalidInput(f"'{text}' has an invalid port", hint="use a port between 1 and 65535") from None
    return bytes.fromhex(key), parts.hostname, port


def format_enode(public_key: bytes, host: str, port: int) -> str:
    return f"enode://{public_key.hex()}@{host}:{port}"
