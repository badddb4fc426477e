"""`fullchain agent`: unlock once, then read encrypted titles without the password for a while."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from fullchain.agent import DEFAULT_TTL, start_agent, status, stop
from fullchain.home import fullchain_home
from fullchain.profiles import resolve_name

from ..context import common_options, password_source, settings
from ..output import emit_json, is_json
from ..types import Duration


@click.group()
def agent() -> None:
    """A key agent (like ssh-agent): holds the profile's decryption key in memory for a while, so
    reading commands (dataset list/show/history/search) open encrypted titles without asking for
    the password and without the ~1 s scrypt each time. The key never touches the disk."""


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _profile() -> str:
    return resolve_name(settings().profile)


@agent.command("start")
@common_options
@click.option("--ttl", type=Duration(), default=DEFAULT_TTL, show_default="10m",
              help="How long the agent keeps the key (at most 12h).")
def start_cmd(ttl: int) -> None:
    """Unlock the profile and start its agent (replacing a running one)."""
    name = _profile()
    found = start_agent(name, password=password_source(profile=name), ttl=ttl)
    if is_json():
        emit_json({"profile": found.profile, "pid": found.pid, "expires_at": found.expires_at,
                   "socket": str(found.socket)})
        return
    click.echo(f"agent for profile '{found.profile}' running (pid {found.pid}) until {_when(found.expires_at)}")


@agent.command("status")
@common_options
def status_cmd() -> None:
    """Whether the profile's agent runs, and until when. Exit 1 if it does not."""
    name = _profile()
    found = status(fullchain_home(), name)
    if is_json():
        emit_json({"profile": name, "running": found is not None,
                   "pid": found.pid if found else None, "expires_at": found.expires_at if found else None})
    elif found is None:
        click.echo(f"no agent for profile '{name}'")
    else:
        click.echo(f"agent for profile '{name}' running (pid {found.pid}) until {_when(found.expires_at)}")
    if found is None:
        raise SystemExit(1)


@agent.command("stop")
@common_options
def stop_cmd() -> None:
    """End the profile's agent now; its key is gone with it."""
    name = _profile()
    stopped = stop(fullchain_home(), name)
    if is_json():
        emit_json({"profile": name, "stopped": stopped})
        return
    click.echo(f"agent for profile '{name}' stopped" if stopped else f"no agent for profile '{name}' was running")
