"""Keys at rest: an eth-account keystore for signing and an encrypted X25519 key for HPKE.

Neither private key ever touches the disk unencrypted. Passwords come from the caller (the CLI
asks a prompt, an environment variable or a file); this module never asks for one itself.

The password is stretched once, by the keystore's scrypt (eth-account: N=2^18, r=8, p=1). The
HPKE private key is sealed (AES-256-GCM) under a key derived with HKDF-SHA256 from the signing
key that the keystore protects, so guessing the password through the HPKE file costs exactly
what guessing it through the keystore costs, and one unlock opens both. (Files written before
this format used PKCS#8 with PBKDF2 at 2,048 iterations, ~3,000x cheaper per guess; they still
open, and are rewritten in the current format on the next unlock.)
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import KeystoreError, PasswordRequired, WrongPassword
from .home import PASSWORD_ENV, write_private

if TYPE_CHECKING:  # eth-account takes ~0.8 s to import: only when a key is really opened
    from eth_account.signers.local import LocalAccount

SIGNING_KEYSTORE = "keystore.json"
HPKE_KEY = "hpke-key.json"
LEGACY_HPKE_KEY = "hpke-key.pem"  # PKCS#8 + PBKDF2, migrated on unlock
# Set to "1" to write new keystores with a light scrypt (tests, throwaway dev profiles).
LIGHT_KDF_ENV = "FULLCHAIN_INSECURE_LIGHT_KDF"
_HPKE_FORMAT = 2
_HKDF_INFO = b"fullchain/hpke-key/v2"


@dataclass(frozen=True)
class NewIdentity:
    address: str
    hpke_public_key: bytes


@dataclass(frozen=True)
class Identity:
    """Both private keys of a profile, decrypted."""

    signing_key: bytes = field(repr=False)
    address: str
    hpke: X25519PrivateKey = field(repr=False)

    @cached_property
    def signer(self) -> LocalAccount:
        from eth_account import Account  # only to sign: reading commands never load it

        return Account.from_key(self.signing_key)


def resolve_password(source: str | Callable[[], str] | None) -> str:
    """The password from `source` (a string or a callable), else $FULLCHAIN_PASSWORD."""
    if callable(source):
        return source()
    if source is not None:
        return source
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    raise PasswordRequired("a password is needed to decrypt the keys and none was given",
                           hint=f"set {PASSWORD_ENV}, pass --password-file, or run in a terminal to be asked")


def create_identity(directory: Path, password: str) -> NewIdentity:
    """Generate a signing key and an HPKE key pair, both stored encrypted under `password`."""
    from eth_account import Account

    if not password:
        raise KeystoreError("an empty password would leave the keys unprotected",
                            hint="set FULLCHAIN_PASSWORD, use --password-file, or type a password")
    account = Account.create()
    if os.environ.get(LIGHT_KDF_ENV) == "1":
        # Like geth's --lightkdf: scrypt N=2^12 instead of 2^18, 64x cheaper to guess. For test
        # suites and throwaway development profiles only; the keystore records its parameters,
        # so such a profile keeps opening the same way.
        keystore = Account.encrypt(account.key, password, kdf="scrypt", iterations=2**12)
    else:
        keystore = Account.encrypt(account.key, password)
    hpke = X25519PrivateKey.generate()
    write_private(directory / SIGNING_KEYSTORE, json.dumps(keystore))
    _save_hpke(directory, account.key, account.address, hpke)
    return NewIdentity(address=account.address, hpke_public_key=_public_bytes(hpke))


def unlock_identity(directory: Path, password: str, *, profile: str) -> Identity:
    """Both keys of the profile in `directory`, with one password stretch."""
    key = load_signing_key(directory, password, profile=profile)
    address = address_of(key)
    return Identity(signing_key=key, address=address,
                    hpke=_load_hpke(directory, key, address, password, profile=profile))


def load_signer(directory: Path, password: str, *, profile: str) -> LocalAccount:
    """The profile's signing account, decrypted with `password`."""
    from eth_account import Account

    return Account.from_key(load_signing_key(directory, password, profile=profile))


def load_signing_key(directory: Path, password: str, *, profile: str) -> bytes:
    """The profile's secp256k1 private key, decrypted with `password`."""
    path = directory / SIGNING_KEYSTORE
    damaged = f"keystore {path} of profile '{profile}' is damaged"
    fix = "restore the file from your backup; the key cannot be recovered without it"
    if not password:
        raise PasswordRequired(f"the password for profile '{profile}' is empty",
                               hint="set FULLCHAIN_PASSWORD or --password-file to the profile's password")
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeystoreError(f"profile '{profile}' has no keystore at {path}",
                            hint="restore it from your backup, or create a new profile with `fullchain init`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"{damaged} (not valid JSON: {exc})", hint=fix) from None
    problem = _keystore_problem(keystore)
    if problem:
        raise KeystoreError(f"{damaged} ({problem})", hint=fix)
    try:
        return decrypt_keystore(keystore, password)
    except _MacMismatch:
        raise WrongPassword(f"wrong password for profile '{profile}' (keystore {path})",
                            hint="check FULLCHAIN_PASSWORD or the file given to --password-file") from None
    except ValueError as exc:
        raise KeystoreError(f"{damaged} ({exc})", hint=fix) from None
    except (KeyError, TypeError) as exc:
        raise KeystoreError(f"{damaged} (missing or malformed field {exc})", hint=fix) from None


class _MacMismatch(ValueError):
    pass


def decrypt_keystore(keystore: dict[str, Any], password: str) -> bytes:
    """The private key in a Web3 Secret Storage v3 keystore (the file eth-account writes).

    Decrypted here with hashlib and `cryptography` rather than by eth-keyfile: importing that
    loads py_ecc's BLS12-381 tables (~0.7 s of CPU on every command), and its scrypt holds the
    GIL, where hashlib's releases it, so a reading command can unlock while it does its other
    work. tests/test_keys.py checks it against eth-account on keystores of both KDFs."""
    crypto = keystore.get("crypto", keystore.get("Crypto"))
    params = crypto["kdfparams"]
    salt = _unhex(params["salt"])
    secret = password.encode("utf-8")
    if crypto["kdf"] == "scrypt":
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        derived = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=int(params["dklen"]),
                                 maxmem=128 * r * (n + p + 2) + (1 << 20))
    elif crypto["kdf"] == "pbkdf2":
        if params.get("prf") != "hmac-sha256":
            raise ValueError(f"unsupported pbkdf2 prf {params.get('prf')!r}")
        derived = hashlib.pbkdf2_hmac("sha256", secret, salt, int(params["c"]), int(params["dklen"]))
    else:
        raise ValueError(f"unsupported key derivation {crypto['kdf']!r}")
    if len(derived) < 32:
        raise ValueError(f"derived key of {len(derived)} bytes, at least 32 are needed")
    ciphertext = _unhex(crypto["ciphertext"])
    if not hmac.compare_digest(_keccak(derived[16:32] + ciphertext), _unhex(crypto["mac"])):
        raise _MacMismatch("MAC mismatch")
    if crypto["cipher"] != "aes-128-ctr":
        raise ValueError(f"unsupported cipher {crypto['cipher']!r}")
    decryptor = Cipher(algorithms.AES(derived[:16]), modes.CTR(_unhex(crypto["cipherparams"]["iv"]))).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def address_of(private_key: bytes) -> str:
    """The Ethereum account (checksummed) of a secp256k1 private key."""
    from coincurve import PublicKey
    from eth_utils import to_checksum_address

    public = PublicKey.from_secret(private_key).format(compressed=False)[1:]
    return to_checksum_address(_keccak(public)[-20:])


def _keccak(data: bytes) -> bytes:
    from Crypto.Hash import keccak

    return keccak.new(digest_bits=256, data=data).digest()


def _unhex(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected a hex string, got {type(value).__name__}")
    return bytes.fromhex(value.removeprefix("0x"))


def load_hpke_private_key(directory: Path, password: str, *, profile: str) -> X25519PrivateKey:
    """The profile's HPKE private key, decrypted with `password`."""
    return unlock_identity(directory, password, profile=profile).hpke


def _keystore_problem(keystore: Any) -> str | None:
    if not isinstance(keystore, dict):
        return "not a keystore object"
    if keystore.get("version") != 3:
        return f"unsupported keystore version {keystore.get('version')!r}, expected 3"
    crypto = keystore.get("crypto", keystore.get("Crypto"))
    if not isinstance(crypto, dict):
        return "no 'crypto' section"
    for name in ("cipher", "cipherparams", "ciphertext", "kdf", "kdfparams", "mac"):
        if name not in crypto:
            return f"the 'crypto' section has no '{name}'"
    return None


def _public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _sealing_key(signing_key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(hashes.SHA256(), 32, salt=salt, info=_HKDF_INFO).derive(bytes(signing_key)))


def _associated_data(address: str, public: bytes) -> bytes:
    # Binds the sealed key to its account and public key: a file copied from another profile,
    # or with a swapped public key, does not open.
    return b"fullchain hpke-key v2|" + address.lower().encode() + b"|" + public


def _save_hpke(directory: Path, signing_key: bytes, address: str, hpke: X25519PrivateKey) -> None:
    salt, nonce = os.urandom(32), os.urandom(12)
    public = _public_bytes(hpke)
    raw = hpke.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    sealed = _sealing_key(signing_key, salt).encrypt(nonce, raw, _associated_data(address, public))
    document = {
        "format": _HPKE_FORMAT, "address": address, "public_key": public.hex(),
        "kdf": {"name": "hkdf-sha256", "input": "the keystore's signing key", "salt": salt.hex()},
        "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()}, "ciphertext": sealed.hex(),
    }
    write_private(directory / HPKE_KEY, json.dumps(document, indent=2))


def _load_hpke(directory: Path, signing_key: bytes, address: str, password: str, *, profile: str) -> X25519PrivateKey:
    path = directory / HPKE_KEY
    fix = "restore it from your backup; without it, data keys wrapped to this profile cannot be opened"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _migrate_legacy(directory, signing_key, address, password, profile=profile)
    except UnicodeDecodeError:
        raise KeystoreError(f"the HPKE key file {path} of profile '{profile}' is corrupt (not text)",
                            hint=fix) from None
    try:
        document = json.loads(text)
        if document["format"] != _HPKE_FORMAT:
            raise KeystoreError(f"the HPKE key file {path} has format {document['format']!r}, which this "
                                f"version of fullchain does not read", hint="upgrade fullchain")
        public = bytes.fromhex(document["public_key"])
        salt = bytes.fromhex(document["kdf"]["salt"])
        nonce = bytes.fromhex(document["cipher"]["nonce"])
        sealed = bytes.fromhex(document["ciphertext"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"the HPKE key file {path} of profile '{profile}' is corrupt ({type(exc).__name__})",
                            hint=fix) from None
    try:
        raw = _sealing_key(signing_key, salt).decrypt(nonce, sealed, _associated_data(address, public))
    except (InvalidTag, ValueError):
        # The keystore already proved the password right, so a failure here is the file's.
        raise KeystoreError(f"the HPKE key file {path} of profile '{profile}' is corrupt or belongs to "
                            f"another profile (it does not open with this profile's key)", hint=fix) from None
    key = X25519PrivateKey.from_private_bytes(raw)
    if _public_bytes(key) != public:
        raise KeystoreError(f"the HPKE key file {path} of profile '{profile}' is corrupt (its public key "
                            f"does not match its private key)", hint=fix)
    return key


def _migrate_legacy(directory: Path, signing_key: bytes, address: str, password: str, *,
                    profile: str) -> X25519PrivateKey:
    legacy = directory / LEGACY_HPKE_KEY
    fix = "restore it from your backup; without it, data keys wrapped to this profile cannot be opened"
    try:
        pem = legacy.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"profile '{profile}' has no HPKE key at {directory / HPKE_KEY}",
                            hint=fix) from None
    try:
        key = serialization.load_pem_private_key(pem, password=password.encode())
    except (ValueError, TypeError):
        # The keystore opened with this password, and both files were written under it.
        raise KeystoreError(f"the HPKE key file {legacy} of profile '{profile}' is corrupt (it does not "
                            f"open with the password that opens the keystore)", hint=fix) from None
    if not isinstance(key, X25519PrivateKey):
        raise KeystoreError(f"{legacy} does not hold an X25519 key", hint=fix)
    _save_hpke(directory, signing_key, address, key)  # written (atomically) before the old one goes
    legacy.unlink()
    return key
