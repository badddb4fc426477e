"""Arguments checked against the contracts' Solidity types before web3 sees them.

web3 answers a number that does not fit its parameter (an id of 2^256+1, a negative id, an
expiry past uint64) with a `MismatchedABI` listing every overload: an internal error to a user.
Every contract this SDK binds goes through :func:`checked`, so each client (and a partner's own
code using `fc.datasets.contract`) gets one :class:`InvalidInput` naming the parameter and the
range it allows, whatever the entry point.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from web3 import Web3

from .errors import InvalidInput

_INT = re.compile(r"^(u?)int(\d*)$")


def int_range(solidity_type: str) -> tuple[int, int] | None:
    """The inclusive range of an integer Solidity type (None for other types)."""
    match = _INT.match(solidity_type)
    if not match:
        return None
    bits = int(match.group(2) or 256)
    if match.group(1):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _bound(value: int) -> str:
    """2^64-1 rather than 18446744073709551615."""
    magnitude = abs(value) + (1 if value > 0 else 0)
    if magnitude >= 2**32 and magnitude & (magnitude - 1) == 0:
        power = f"2^{magnitude.bit_length() - 1}"
        return f"{power}-1" if value > 0 else f"-{power}"
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 24 else f"{text[:12]}... ({len(text.lstrip('-'))} digits)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(w3: Web3, abi_input: Mapping[str, Any], value: Any, name: str) -> str | None:
    """What is wrong with `value` for `abi_input`, or None when it fits."""
    kind = abi_input["type"]
    if kind == "tuple" and "components" in abi_input:
        components = abi_input["components"]
        if isinstance(value, Mapping):
            value = [value.get(c["name"]) for c in components]
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or len(value) != len(components):
            return f"{name} must be a tuple of {len(components)} values"
        for component, item in zip(components, value):
            problem = _problem(w3, component, item, f"{name}.{component['name']}")
            if problem:
                return problem
        return None
    bounds = int_range(kind)
    if bounds is not None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number ({kind}), not {type(value).__name__}"
        low, high = bounds
        if not low <= value <= high:
            return f"{name} {_show(value)} is out of range: it must be {_bound(low)} to {_bound(high)} ({kind})"
        return None
    if not w3.codec.is_encodable(kind, value):
        return f"{name} is not a valid {kind}: {_show(value)}"
    return None


def check_arguments(w3: Web3, inputs: Sequence[Mapping[str, Any]], args: Sequence[Any], *,
                    where: str) -> None:
    """Raise :class:`InvalidInput` for the first argument that does not fit its parameter."""
    for index, (abi_input, value) in enumerate(zip(inputs, args)):
        problem = _problem(w3, abi_input, value, abi_input.get("name") or f"argument {index + 1}")
        if problem:
            hint = "give a value within that range" if "out of range" in problem else "give a value of that type"
            raise InvalidInput(f"{problem} (for {where})", hint=hint)


class _CheckedFunction:
    def __init__(self, w3: Web3, function: Any, entries: list[dict[str, Any]], where: str) -> None:
        self._w3 = w3
        self._function = function
        self._entries = entries
        self._where = where

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        candidates = [e for e in self._entries if len(e["inputs"]) == len(args)]
        if candidates and not kwargs:
            problems = []
            for entry in candidates:
                try:
                    check_arguments(self._w3, entry["inputs"], args, where=self._where)
                    break
                except InvalidInput as exc:
                    problems.append(exc)
            else:
                raise problems[0]
        return self._function(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._function, name)


class _CheckedFunctions:
    """`contract.functions`, with every call's arguments checked first."""

    def __init__(self, w3: Web3, functions: Any, abi: Sequence[Mapping[str, Any]], contract: str) -> None:
        self._w3 = w3
        self._functions = functions
        self._abi = abi
        self._contract = contract

    def __getattr__(self, name: str) -> Any:
        function = getattr(self._functions, name)
        entries = [dict(e) for e in self._abi if e.get("type") == "function" and e.get("name") == name]
        if not entries:
            return function
        return _CheckedFunction(self._w3, function, entries, f"{self._contract}.{name}")

    def __iter__(self) -> Any:
        return iter(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions


def checked(contract: Any, name: str) -> Any:
    """`contract` (a bound web3 contract) with its functions' arguments checked before encoding."""
    contract.functions = _CheckedFunctions(contract.w3, contract.functions, contract.abi, name)
    return contract


def check_constructor(w3: Web3, abi: Sequence[Mapping[str, Any]], args: Sequence[Any], *, contract: str) -> None:
    """The constructor's arguments, checked the same way (call before `.constructor(*args)`)."""
    for entry in abi:
        if entry.get("type") == "constructor" and len(entry.get("inputs", [])) == len(args):
            check_arguments(w3, entry["inputs"], args, where=f"{contract} constructor")
