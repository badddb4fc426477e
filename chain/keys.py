"""Keys at rest: an eth-account keystore for signing and an encrypted X25519 key for HPKE.

Neither private key ever touches the disk unencrypted. Passwords come from the caller (the CLI
asks a prompt, an environment variable or a file); this module never asks for one itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account
from eth_account.signers.local import LocalAccount

from .errors import KeystoreError, WrongPassword
from .home import write_private

SIGNING_KEYSTORE = "keystore.json"
HPKE_KEY = "hpke-key.pem"


@dataclass(frozen=True)
class NewIdentity:
    address: str
    hpke_public_key: bytes


def create_identity(directory: Path, password: str) -> NewIdentity:
    """Generate a signing key and an HPKE key pair, both stored encrypted under `password`."""
    if not password:
        raise KeystoreError("an empty password would leave the keys unprotected",
                            hint="set FULLCHAIN_PASSWORD, use --password-file, or type a password")
    account = Account.create()
    keystore = Account.encrypt(account.key, password)
    hpke = X25519PrivateKey.generate()
    pem = hpke.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(password.encode()),
    )
    write_private(directory / SIGNING_KEYSTORE, json.dumps(keystore))
    write_private(directory / HPKE_KEY, pem.decode())
    public = hpke.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return NewIdentity(address=account.address, hpke_public_key=public)


def load_signer(directory: Path, password: str, *, profile: str) -> LocalAccount:
    """The profile's signing account, decrypted with `password`."""
    path = directory / SIGNING_KEYSTORE
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeystoreError(f"profile '{profile}' has no keystore at {path}",
                            hint="run `fullchain init --profile " + profile + "` again") from None
    except json.JSONDecodeError as exc:
        raise KeystoreError(f"keystore {path} is not valid JSON ({exc.msg})",
                            hint="restore it from your backup") from None
    try:
        key = Account.decrypt(keystore, password)
    except ValueError:
        raise WrongPassword(f"wrong password for profile '{profile}' (keystore {path})",
                            hint="check FULLCHAIN_PASSWORD or the file given to --password-file") from None
    return Account.from_key(key)


def load_hpke_private_key(directory: Path, password: str, *, profile: str) -> X25519PrivateKey:
    """The profile's HPKE private key, decrypted with `password`."""
    path = directory / HPKE_KEY
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=password.encode())
    except FileNotFoundError:
        raise KeystoreError(f"profile '{profile}' has no HPKE key at {path}",
                            hint="run `fullchain init --profile " + profile + "` again") from None
    except ValueError:
        raise WrongPassword(f"wrong password for the HPKE key of profile '{profile}' ({path})",
                            hint="check FULLCHAIN_PASSWORD or the file given to --password-file") from None
    if not isinstance(key, X25519PrivateKey):
        raise KeystoreError(f"{path} does not hold an X25519 key", hint="restore it from your backup")
    return key
