"""Writing a generated directory: all or nothing, never over someone's files without --force,
and what --force replaces is moved aside, not deleted (it may hold the only copy of node keys)."""
from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from fullchain.errors import ConfigError
from fullchain.home import write_atomic, write_private


def write_public(path: Path, text: str) -> None:
    """A file anyone may read (configuration, public keys), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, 0o644)


def write_secret(path: Path, text: str) -> None:
    """A file only its owner can read (node keys, cluster secrets and identities)."""
    write_private(path, text)


@contextmanager
def fresh_directory(target: Path, *, force: bool) -> Iterator[Path]:
    """Yield a staging directory next to `target`; on success it becomes `target`.

    A non-empty `target` is refused unless `force`; with `force` it is renamed to
    `<target>.replaced-<UTC time>` first. On any failure the staging directory is removed and
    `target` is untouched.
    """
    target = target.expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory", hint="choose another -o DIR")
    occupied = target.is_dir() and any(target.iterdir())
    if occupied and not force:
        raise ConfigError(f"{target} is not empty", hint="choose an empty or new -o DIR, or pass --force "
                                                         "(the old directory is kept as DIR.replaced-TIME)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    staging.mkdir(mode=0o755)
    try:
        yield staging
        if target.exists():
            if occupied:
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                target.rename(target.with_name(f"{target.name}.replaced-{stamp}-{secrets.token_hex(2)}"))
            else:
                target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replaced_siblings(target: Path) -> list[Path]:
    """Directories an earlier --force moved aside (newest last)."""
    target = target.expanduser().absolute()
    return sorted(target.parent.glob(f"{target.name}.replaced-*"))
