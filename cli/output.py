"""Printing: JSON for scripts (stable keys), rich tables for people."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from .context import settings


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2, sort_keys=True))


def is_json() -> bool:
    return settings().json


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    if title:
        click.echo(title)
    t = Table(show_lines=False)
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    # Off a terminal rich would wrap to 80 columns and cut addresses; let rows keep their width.
    console = Console() if sys.stdout.isatty() else Console(width=1000)
    console.print(t)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Key/value lines for one object."""
    items = [(k, "" if v is None else str(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    for key, value in items:
        click.echo(f"{key.ljust(width)}  {value}")


def say(message: str) -> None:
    """Progress and notes for people: to stderr, so stdout stays clean for pipes."""
    if not is_json():
        click.echo(message, err=True)
