"""JSON from an untrusted source (a bundle, an anchored records document) read safely."""
from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import VerificationFailed

# JSON nesting no fullchain document needs; deeper input is refused before it can exhaust the stack.
MAX_DEPTH = 200


def parse_json(text: str | bytes, what: str, *,
               hint: str = "give the file as fullchain wrote it, unaltered") -> Any:
    """JSON from an untrusted source: nesting beyond MAX_DEPTH (which would overflow the stack of
    a process whose recursion limit py-evm raised) and integers past Python's digit limit are
    refused as VerificationFailed, like any other text that is not JSON."""
    limit = sys.getrecursionlimit()
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    sys.setrecursionlimit(min(limit, depth + MAX_DEPTH + 50))  # the decoder recurses once per level
    try:
        return json.loads(text)
    except (RecursionError, ValueError) as exc:  # JSONDecodeError and the int digit limit are ValueErrors
        reason = f"nested deeper than {MAX_DEPTH} levels" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise VerificationFailed(f"{what} is not JSON fullchain can read ({reason})", hint=hint) from None
    finally:
        sys.setrecursionlimit(limit)
