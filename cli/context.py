"""What every command shares: profile, output mode, password source, and the SDK connection."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

import fullchain
from fullchain.home import PASSWORD_ENV
from fullchain.errors import ConfigError

if TYPE_CHECKING:
    from fullchain.view import View

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    profile: str | None = None
    json: bool = False
    verbose: bool = False
    password_file: Path | None = None


def settings() -> Settings:
    ctx = click.get_current_context()
    return ctx.ensure_object(Settings)


def _store(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(Settings), field, value)
        return value
    return callback


def common_options(func: F) -> F:
    """--profile, --json, --password-file and --verbose, accepted on the group and on every command."""
    options = [
        click.option("--profile", "-p", expose_value=False, callback=_store("profile"), is_eager=True,
                     help="Profile to act as (default: $FULLCHAIN_PROFILE or 'default')."),
        click.option("--json", "json_", is_flag=True, default=False, expose_value=False, callback=_store("json"),
                     help="Print machine-readable JSON."),
        click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
                     callback=_store("password_file"),
                     help=f"Read the keystore password from this file (else ${PASSWORD_ENV}, else a prompt)."),
        click.option("--verbose", "-v", is_flag=True, default=False, expose_value=False,
                     callback=_store("verbose"), help="Show tracebacks of unexpected errors."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def password_source(*, confirm: bool = False, profile: str | None = None) -> fullchain.client.PasswordSource:
    """--password-file, else $FULLCHAIN_PASSWORD (read by the SDK), else a prompt on a terminal."""
    s = settings()
    if s.password_file is not None:
        path = s.password_file
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the password file {path} ({exc.strerror})",
                              hint="check the path given to --password-file") from None
    if os.environ.get(PASSWORD_ENV) is not None or not sys.stdin.isatty():
        return None
    label = f"Password for profile '{profile}'" if profile else "Keystore password"
    return lambda: click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)


def view(*, storage: str | None = None, keys: bool = False) -> View:
    """What reading commands use: the event index without the chain library when it is provably
    up to date (fullchain.view), else a connection that syncs it first. `keys`: the command
    will likely decrypt something (titles), so unlocking may start at once."""
    from fullchain.view import open_view

    s = settings()
    password = password_source(profile=s.profile)
    return (open_view(s.profile, password=password, storage=storage, prefetch_keys=keys)
            or fullchain.connect(s.profile, password=password, storage=storage).view())


def connect(*, storage: str | None = None) -> fullchain.Fullchain:
    s = settings()
    return fullchain.connect(s.profile, password=password_source(profile=s.profile), storage=storage)
