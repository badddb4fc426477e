"""Profile names for the accounts of this machine, so that people read `pharma`, not `0xeF07...`.

Output for scripts (--json) keeps the addresses; text for people shows a local account by its
profile name wherever it appears, tables, messages and errors alike.
"""
from __future__ import annotations

import re
from pathlib import Path

from fullchain.errors import FullchainError, InvalidInput
from fullchain.home import fullchain_home
from fullchain.profiles import list_profiles, resolve_account
from fullchain.profiles import local_names as profile_names

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")


def local_names(home: Path | None = None) -> dict[str, str]:
    """Checksummed address -> profile name; a broken profile is simply left out (its own
    commands report it), so that naming can never be what fails a command."""
    try:
        return profile_names(fullchain_home(home))
    except (FullchainError, OSError, ValueError):
        return {}


def who(address: str | None, names: dict[str, str]) -> str:
    """A profile name for a local account, else the address."""
    if address is None:
        return "-"
    return names.get(address, address)


def named(text: str, names: dict[str, str]) -> str:
    """`text` with every local account's address replaced by its profile name."""
    if not names:
        return text
    return _ADDRESS.sub(lambda m: names.get(m.group(0), m.group(0)), text)


def resolve(home: Path, text: str, *, what: str = "account") -> tuple[str, object]:
    """An account given as an address or a local profile name; the error names both forms."""
    try:
        return resolve_account(home, text)
    except InvalidInput:
        if text.strip().lower().startswith("0x"):
            raise  # meant as an address: its own error (length, checksum) says more
        known = list_profiles(home)
        profiles = f"a local profile ({', '.join(known)})" if known else "a local profile (none exist here yet)"
        raise InvalidInput(f"{what} '{text}' is neither a local profile nor an Ethereum address",
                           hint=f"give {profiles} or 0x followed by 40 hexadecimal digits") from None
