"""fullchain: a permissioned-blockchain toolkit for sharing biomedical data in a consortium.

    import fullchain
    fc = fullchain.connect("hospital")
    for member in fc.consortium.members():
        print(member.account, member.roles)
"""
from .client import Fullchain, connect, init
from .consortium import Founder
from .errors import (
    ChainBusy,
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
from .models import ChainStatus, Deployment, Member, Proposal, Role

__version__ = "0.1.0"

__all__ = [
    "ChainBusy", "ChainError", "ChainStatus", "ChainUnreachable", "ConfigError", "Deployment",
    "Founder", "Fullchain", "FullchainError", "InsufficientFunds", "InvalidInput", "KeystoreError",
    "Member", "NotDeployed", "PasswordRequired", "ProfileExists", "ProfileNotFound", "Proposal",
    "Role", "TransactionReverted", "TransactionTimeout", "WrongPassword", "connect", "init",
]
