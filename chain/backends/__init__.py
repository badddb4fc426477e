"""Chain backends: both give a Web3 whose transactions this SDK signs and sends raw."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError
from ..home import embedded_chain_dir

if TYPE_CHECKING:
    from web3 import Web3

LOCK_TIMEOUT_ENV = "FULLCHAIN_LOCK_TIMEOUT"


@dataclass
class ChainConnection:
    w3: Web3
    kind: Literal["embedded", "rpc"]
    endpoint: str
    dev_keys: list[bytes] = field(default_factory=list, repr=False)


def open_chain(chain: str, home: Path) -> ChainConnection:
    """Open `chain`: "embedded" (the state under `home`) or a JSON-RPC URL."""
    if chain == "embedded":
        from .embedded import open_embedded  # py-evm loads slowly; only when needed

        raw = os.environ.get(LOCK_TIMEOUT_ENV, "60")
        try:
            lock_timeout = float(raw)
        except ValueError:
            raise ConfigError(f"{LOCK_TIMEOUT_ENV}={raw!r} is not a number of seconds",
                              hint=f"set {LOCK_TIMEOUT_ENV} to e.g. 60") from None
        directory = embedded_chain_dir(home)
        w3, dev_keys = open_embedded(directory, lock_timeout=lock_timeout)
        return ChainConnection(w3=w3, kind="embedded", endpoint=str(directory), dev_keys=dev_keys)
    if chain.startswith(("http://", "https://")):
        from .rpc import open_rpc

        return ChainConnection(w3=open_rpc(chain), kind="rpc", endpoint=chain)
    raise ConfigError(f"unknown chain '{chain}'", hint="use 'embedded' or an http(s):// JSON-RPC URL")
