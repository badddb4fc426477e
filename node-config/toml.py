"""A TOML writer for the flat files Besu reads: strings, integers, booleans, lists of strings.

Strings are written as TOML basic strings with JSON escaping, which TOML accepts for every
character we can be given (quotes, backslashes, control characters as \\uXXXX).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

TomlValue = str | int | bool | Sequence[str]


def _value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    items = [json.dumps(v, ensure_ascii=False) for v in value]
    if not items:
        return "[]"
    return "[\n" + "".join(f"  {item},\n" for item in items) + "]"


def dumps(values: Mapping[str, TomlValue], *, header: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    if lines:
        lines.append("")
    lines.extend(f"{key}={_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
