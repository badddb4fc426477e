"""Every error the SDK raises on purpose derives from :class:`FullchainError`.

Each one says what happened and what to do about it, so that the CLI can print it as one line
and a partner application can show it to its users unchanged.
"""
from __future__ import annotations

from typing import Any


class FullchainError(Exception):
    """Base of all fullchain errors: ``str(err)`` is the problem, ``err.hint`` the way out."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0])

    def diagnostics(self) -> str:
        """The problem and the fix as one line, for people."""
        return f"{self.message}: {self.hint}" if self.hint else self.message


class ConfigError(FullchainError):
    """A configuration value or file is missing or malformed."""


class ProfileNotFound(ConfigError):
    """No profile of that name exists under FULLCHAIN_HOME."""


class ProfileExists(ConfigError):
    """`init` would overwrite an existing profile."""


class InvalidInput(FullchainError):
    """A value given by the user is malformed (address, role, hex key...)."""


class KeystoreError(FullchainError):
    """A keystore could not be opened."""


class PasswordRequired(KeystoreError):
    """A key must be decrypted and no password source was given."""


class WrongPassword(KeystoreError):
    """The password does not decrypt the keystore."""


class ChainError(FullchainError):
    """The chain could not be reached or did not behave."""


class ChainUnreachable(ChainError):
    """The RPC endpoint does not answer."""


class ChainBusy(ChainError):
    """Another process holds the embedded chain for longer than we are willing to wait."""


class NotDeployed(ChainError):
    """The contracts are not deployed on this chain (or not known to this profile)."""


class TransactionTimeout(ChainError):
    """A transaction was sent but no receipt (or not enough confirmations) came in time."""


class TransactionReverted(ChainError):
    """A contract refused the call; ``error_name`` and ``error_args`` carry its custom error."""

    def __init__(self, error_name: str, error_args: dict[str, Any], *, contract: str, function: str,
                 hint: str | None = None) -> None:
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in error_args.items())
        super().__init__(f"{contract}.{function} reverted with {error_name}({rendered})", hint=hint)
        self.error_name = error_name
        self.error_args = error_args
        self.contract = contract
        self.function = function


class InsufficientFunds(ChainError):
    """The sending account cannot pay for gas."""


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class StorageError(FullchainError):
    """The content store failed."""


class StorageUnreachable(StorageError):
    """The IPFS node's HTTP API does not answer."""


class ContentNotFound(StorageError):
    """No content under that CID in the store (or not within the timeout)."""


class IntegrityError(FullchainError):
    """Data does not match what was committed: tampered, truncated, or the wrong key."""


class DecryptionError(IntegrityError):
    """A ciphertext stream failed authentication; `chunk_index` says where (None: the header)."""

    def __init__(self, message: str, *, chunk_index: int | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.chunk_index = chunk_index


class IdentifiersFound(InvalidInput):
    """The red-line check found direct identifiers in a file about to be shared; ``findings``
    lists them (column, rule, row; never a value)."""

    def __init__(self, message: str, *, findings: list[Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.findings = findings


class NotAuthorized(FullchainError):
    """The profile's account may not do this (not a member, not the owner, no license...)."""


class UnknownDataset(InvalidInput):
    """No dataset or version with that number."""


class ChainDamaged(ChainError):
    """The embedded chain's database on disk is damaged (it is never replaced automatically)."""


class AuditError(FullchainError):
    """Audit evidence could not be built or read (missing receipts, a malformed proof file...)."""


class VerificationFailed(AuditError):
    """Evidence did not verify; the message names the first check that failed and what it found."""
