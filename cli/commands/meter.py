from __future__ import annotations

import click


@click.group()
def meter() -> None:
    """Contribution metering: measure data, algorithm and compute; submit, attest, dispute."""


from .meter_data import measure, redline  # noqa: E402  (the data dimension: measure, red-line check)

meter.add_command(measure); meter.add_command(redline)  # noqa: E702
