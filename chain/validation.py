"""Range checks for numbers that go into contract calls, so that a value the ABI cannot encode is
refused with its name and range instead of an ABI-encoding error deep in web3."""
from __future__ import annotations

from .errors import InvalidInput

UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1


def uint(value: object, *, name: str, bits: int = 256, minimum: int = 0) -> int:
    """`value` as an int within [minimum, 2**bits - 1], else :class:`InvalidInput` naming `name`."""
    top = 2**bits - 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, not {value!r}",
                           hint=f"give a number from {minimum} to {top}")
    if not minimum <= value <= top:
        raise InvalidInput(f"{name} {value} is out of range", hint=f"give a number from {minimum} to {top}")
    return value


def dataset_id(value: object) -> int:
    return uint(value, name="dataset id", minimum=1)


def license_id(value: object) -> int:
    return uint(value, name="license id", minimum=1)


def proposal_id(value: object) -> int:
    return uint(value, name="proposal id", minimum=1)


def version(value: object) -> int:
    return uint(value, name="version", bits=32, minimum=1)


def seconds(value: object, *, name: str = "duration") -> int:
    return uint(value, name=f"{name} in seconds", bits=64)
