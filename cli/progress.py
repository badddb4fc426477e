"""Progress bars for long transfers: on stderr, only for people (a terminal, no --json)."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn, TextColumn
from rich.console import Console

from .output import is_json

# Below this a bar would only flicker.
THRESHOLD = 4 * 1024 * 1024


@contextmanager
def transfer_progress(size: int) -> Iterator:  # noqa: ANN401
    """A `progress(phase, increment, total)` callback; silent when it would not help."""
    if is_json() or not sys.stderr.isatty() or size < THRESHOLD:
        yield lambda phase, n, total: None
        return
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description:<11}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        def advance(phase: str, n: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.advance(tasks[phase], n)
        yield advance


@contextmanager
def stage_progress() -> Iterator:  # noqa: ANN401
    """A `progress(stage, done, total)` callback (counts, not bytes); silent when it would not help."""
    if is_json() or not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description:<11}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=Console(stderr=True), transient=True) as bar:
        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)
        yield update


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
