from __future__ import annotations

import click


@click.group()
def meter() -> None:
    """Contribution metering: measure data, algorithm and compute; submit, attest, dispute."""
