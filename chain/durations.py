"""Durations as people write them: 90d, 12h, 30m, 45s, 2w."""
from __future__ import annotations

import re

from .errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> int:
    """Seconds in `text` (e.g. "90d"); a bare number is seconds."""
    if text.strip().isdigit():
        seconds = int(text)
    else:
        match = _PATTERN.match(text.lower())
        if not match:
            raise InvalidInput(f"'{text}' is not a duration",
                               hint="write a number and a unit: 45s, 30m, 12h, 90d or 2w")
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise InvalidInput(f"duration '{text}' must be positive", hint="e.g. 7d")
    return seconds
