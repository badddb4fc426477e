"""fullchain: a permissioned-blockchain toolkit for sharing biomedical data in a consortium.

    import fullchain
    fc = fullchain.connect("hospital")
    for member in fc.consortium.members():
        print(member.account, member.roles)
"""
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    ChainBusy,
    ChainDamaged,
    ChainError,
    ChainUnreachable,
    ConfigError,
    FullchainError,
    InsufficientFunds,
    InvalidInput,
    KeystoreError,
    NotDeployed,
    PasswordRequired,
    ProfileExists,
    ProfileNotFound,
    TransactionReverted,
    TransactionTimeout,
    WrongPassword,
)

if TYPE_CHECKING:
    from .client import Fullchain, connect, init
    from .consortium import Founder
    from .models import ChainStatus, Deployment, Member, Proposal, Role

# web3, eth-account and py-evm take seconds to import: the public names that need them load on
# first use, so `import fullchain` (and `fullchain --help`) stays fast.
_LAZY = {"Fullchain": "client", "connect": "client", "init": "client", "Founder": "consortium",
         "ChainStatus": "models", "Deployment": "models", "Member": "models", "Proposal": "models", "Role": "models"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fullchain' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "ChainBusy", "ChainDamaged", "ChainError", "ChainStatus", "ChainUnreachable", "ConfigError", "Deployment",
    "Founder", "Fullchain", "FullchainError", "InsufficientFunds", "InvalidInput", "KeystoreError",
    "Member", "NotDeployed", "PasswordRequired", "ProfileExists", "ProfileNotFound", "Proposal",
    "Role", "TransactionReverted", "TransactionTimeout", "WrongPassword", "connect", "init",
]
