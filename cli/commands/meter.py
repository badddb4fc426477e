from __future__ import annotations

import click


@click.group()
def meter() -> None:
    """Contribution metering: measure data, algorithm and compute; submit, attest, dispute."""


from .meter_value import register as _register_value  # noqa: E402 (meter value, compute, storage)
_register_value(meter)
from .meter_chain import attach_chain_commands  # noqa: E402  (the chain commands, in their own module)
attach_chain_commands(meter)
from .meter_data import measure, redline; meter.add_command(measure); meter.add_command(redline)  # noqa: E402, E702
