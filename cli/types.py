"""Parameter types for numbers that end up in contract integers.

A number the contract cannot hold (an id of 2**256 + 1, a negative id after `--`, a term of
10**20 days) must stop at the command line as a usage error naming the allowed range, the same
way for every id and every duration, instead of surfacing as an ABI encoding failure.
"""
from __future__ import annotations

import re
from typing import Any

import click

from fullchain.durations import parse_duration
from fullchain.errors import InvalidInput

_WHOLE = re.compile(r"[+-]?[0-9]+")
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
# DataUseLicensing.MAX_TERM: a century, so that now + term never overflows a uint64 timestamp.
MAX_DURATION_SECONDS = 100 * 365 * 86400


class BoundedInt(click.ParamType):
    """A whole number in [low, high]; `what` names it in the error ("dataset id")."""

    name = "integer"

    def __init__(self, what: str, low: int, high: int) -> None:
        self.what, self.low, self.high = what, low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a {self.what}", param, ctx)
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            # int() would also take '1_000', '٣' and other spellings nobody means as an id.
            if not _WHOLE.fullmatch(text):
                self.fail(f"'{value}' is not a whole number: a {self.what} is between {self.low} and "
                          f"{self.high}", param, ctx)
            number = int(text)
        if not self.low <= number <= self.high:
            self.fail(f"{value} is out of range: a {self.what} is between {self.low} and {self.high}", param, ctx)
        return number


class Duration(click.ParamType):
    """A duration as people write it (45s, 30m, 12h, 90d, 2w), in seconds, at most a century."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        else:
            try:
                seconds = parse_duration(str(value))
            except InvalidInput as exc:
                self.fail(f"{exc.message}: {exc.hint}", param, ctx)
        if not 1 <= seconds <= MAX_DURATION_SECONDS:
            self.fail(f"'{value}' is out of range: a duration is between 1s and {MAX_DURATION_SECONDS // 86400}d "
                      "(100 years)", param, ctx)
        return seconds


class Hash32(click.ParamType):
    """A 32-byte hash as 0x followed by 64 hex digits (a block hash)."""

    name = "hash"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bytes:
        if isinstance(value, bytes):
            return value
        text = str(value).strip()
        if not re.fullmatch(r"0x[0-9a-fA-F]{64}", text):
            self.fail(f"'{value}' is not a block hash: give 0x followed by 64 hex digits", param, ctx)
        return bytes.fromhex(text[2:])


DATASET_ID = BoundedInt("dataset id", 1, UINT64_MAX)
LICENSE_ID = BoundedInt("license id", 1, UINT64_MAX)
REQUEST_ID = BoundedInt("request id", 1, UINT64_MAX)
PROPOSAL_ID = BoundedInt("proposal id", 1, UINT64_MAX)
VERSION = BoundedInt("version number", 1, UINT32_MAX)
THRESHOLD = BoundedInt("threshold", 1, UINT32_MAX)
DURATION = Duration()
HASH32 = Hash32()
PAGE_SIZE = BoundedInt("limit", 1, 1_000_000)
OFFSET = BoundedInt("offset", 0, UINT64_MAX)
