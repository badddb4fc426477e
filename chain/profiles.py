"""Profiles: one identity (signing key + HPKE key) and its chain settings, under FULLCHAIN_HOME."""
from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from .errors import ConfigError, FullchainError, ProfileExists, ProfileNotFound
from .home import profiles_dir, write_private
from .keys import create_identity
from .models import ProfileConfig

PROFILE_ENV = "FULLCHAIN_PROFILE"
DEFAULT_PROFILE = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def profile_dir(home: Path, name: str) -> Path:
    return profiles_dir(home) / name


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"invalid profile name '{name}'",
                          hint="use 1-40 lowercase letters, digits, '-' or '_', starting with a letter or digit")
    return name


def resolve_name(name: str | None) -> str:
    """`name`, else $FULLCHAIN_PROFILE, else "default"."""
    return check_name(name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE)


def list_profiles(home: Path) -> list[str]:
    root = profiles_dir(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "profile.json").is_file())


def load_profile(home: Path, name: str) -> ProfileConfig:
    path = profile_dir(home, check_name(name)) / "profile.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = list_profiles(home)
        hint = f"create it with `fullchain init --profile {name}`"
        if known:
            hint += f", or use one of: {', '.join(known)}"
        raise ProfileNotFound(f"no profile '{name}' in {profiles_dir(home)}", hint=hint) from None
    try:
        return ProfileConfig.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "file"
        raise ConfigError(f"profile file {path} is invalid: {field}: {first['msg']}",
                          hint="fix the value by hand or create the profile again") from None


def create_profile(home: Path, name: str, password: str, *, chain: str = "embedded",
                   storage: str = "embedded", contracts: dict[str, str] | None = None,
                   overwrite: bool = False) -> ProfileConfig:
    """Create keys and config for profile `name`; refuses to replace one unless `overwrite`."""
    directory = profile_dir(home, check_name(name))
    if (directory / "profile.json").exists() and not overwrite:
        raise ProfileExists(f"profile '{name}' already exists in {directory}",
                            hint="pick another --profile name; its keys are not replaced")
    try:
        config = ProfileConfig(name=name, address="0x" + "0" * 40, hpke_public_key="", chain=chain,
                               storage=storage, contracts=contracts or {}, created_at=datetime.now(timezone.utc))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid {field}: {first['msg']}",
                          hint=f"use --{field} embedded or --{field} http://host:port") from None
    # Built aside and moved in whole: an interrupted init leaves no half profile behind.
    staging = directory.with_name(f".{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    identity = create_identity(staging, password)
    config = config.model_copy(update={"address": identity.address,
                                       "hpke_public_key": "0x" + identity.hpke_public_key.hex()})
    write_private(staging / "profile.json", config.model_dump_json(indent=2))
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return config


def save_profile(home: Path, config: ProfileConfig) -> None:
    write_private(profile_dir(home, config.name) / "profile.json", config.model_dump_json(indent=2))


def resolve_account(home: Path, text: str) -> tuple[str, ProfileConfig | None]:
    """An account given as an address or as the name of a local profile."""
    from .addresses import to_account

    if text.lower().startswith("0x"):
        return to_account(text), None
    if _NAME.match(text) and (profile_dir(home, text) / "profile.json").is_file():
        config = load_profile(home, text)
        return config.address, config
    return to_account(text), None  # not a profile either: report it as a malformed address


def local_names(home: Path) -> dict[str, str]:
    """Address -> profile name for the profiles under `home` (for human-readable output). A
    broken profile is left out (its own commands report it): naming never fails a command."""
    names: dict[str, str] = {}
    for name in list_profiles(home):
        try:
            names[load_profile(home, name).address] = name
        except (FullchainError, OSError, ValueError):
            continue
    return names
