from __future__ import annotations

import click


@click.group()
def meter() -> None:
    """Contribution metering: measure data, algorithm and compute; submit, attest, dispute."""


from .meter_data import measure, redline; meter.add_command(measure); meter.add_command(redline)  # noqa: E402, E702
