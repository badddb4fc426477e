"""Where fullchain keeps its state: one directory, `FULLCHAIN_HOME` or the user data dir."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


HOME_ENV = "FULLCHAIN_HOME"
PASSWORD_ENV = "FULLCHAIN_PASSWORD"


def fullchain_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The state directory: `explicit`, else $FULLCHAIN_HOME, else the platform's user data dir."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # only when no home is given: it is most of this module's import time

    return Path(platformdirs.user_data_dir("fullchain", appauthor=False))


def profiles_dir(home: Path) -> Path:
    return home / "profiles"


def embedded_chain_dir(home: Path) -> Path:
    return home / "chain"


def deployments_dir(home: Path) -> Path:
    return home / "deployments"


def private_dir(path: Path) -> Path:
    """`path` as a directory, creating what is missing with mode 0700 (whatever the umask).

    Directories that already exist are left as they are: they may be the user's own.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(directory, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (never a half-written keystore)."""
    private_dir(path.parent)
    write_atomic(path, text, 0o600)


def write_atomic(path: Path, text: str, mode: int) -> None:
    """Write `path` whole or not at all, created with `mode` (the directory must exist)."""
    # A name of its own: two processes writing the same file never share a half-written temp.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
