"""The chain's genesis, head and block hashes, read without web3 or py-evm.

A reading command whose event index already holds everything up to the head needs nothing
else from the chain; proving that costs two SQLite queries on the embedded chain, or a few
small JSON-RPC calls on a node, instead of seconds of importing and opening the chain library.
Every function answers None when it cannot be sure: the caller then takes the full path.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..home import embedded_chain_dir

# py-evm's key for the canonical head (eth.db.schema.SchemaV1.make_canonical_head_hash_lookup_key)
_CANONICAL_HEAD = b"v1:canonical_head_hash"


@dataclass(frozen=True)
class ChainHead:
    """The chain as one probe saw it. `block_hash(n)` is the canonical hash of block n (or None)."""

    genesis_hash: str
    number: int
    block_hash: Callable[[int], str | None]
    chain_id: int | None = None  # None: the caller tells it from its records (the embedded chain)


def probe_head(chain: str, home: Path, *, timeout: float = 5.0) -> ChainHead | None:
    if chain == "embedded":
        return _embedded_head(embedded_chain_dir(home) / "chain.sqlite")
    if chain.startswith(("http://", "https://")):
        return _rpc_head(chain, timeout)
    return None


def _embedded_head(path: Path) -> ChainHead | None:
    """From the log table the embedded node keeps of its canonical blocks, provided it has caught
    up with py-evm's own head (a chain last written by an older fullchain may not have)."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error:
        return None
    try:
        head = conn.execute("SELECT v FROM kv WHERE k = ?", (_CANONICAL_HEAD,)).fetchone()
        if head is None:
            return None
        row = conn.execute("SELECT number FROM log_blocks WHERE hash = ?", (bytes(head[0]),)).fetchone()
        last = conn.execute("SELECT max(number) FROM log_blocks").fetchone()
        genesis = conn.execute("SELECT hash FROM log_blocks WHERE number = 0").fetchone()
        if row is None or last is None or last[0] != row[0] or genesis is None:
            return None
        hashes = {n: "0x" + bytes(h).hex() for n, h in conn.execute(
            "SELECT number, hash FROM log_blocks WHERE number >= ?", (max(0, row[0] - 64),))}
    except sqlite3.Error:  # no log table yet, damaged, busy: the full path says what is wrong
        return None
    finally:
        conn.close()
    return ChainHead(genesis_hash="0x" + bytes(genesis[0]).hex(), number=row[0], block_hash=hashes.get)


def _rpc_head(url: str, timeout: float) -> ChainHead | None:
    import httpx

    def call(method: str, *params: object) -> object:
        answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                            timeout=timeout)
        answer.raise_for_status()
        body = answer.json()
        if "error" in body:
            raise ValueError(body["error"])
        return body["result"]

    def block_hash(number: int) -> str | None:
        try:
            block = call("eth_getBlockByNumber", hex(number), False)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return block["hash"].lower() if isinstance(block, dict) else None

    try:
        chain_id = int(str(call("eth_chainId")), 16)
        number = int(str(call("eth_blockNumber")), 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    genesis = block_hash(0)
    if genesis is None:
        return None
    return ChainHead(genesis_hash=genesis, number=number, block_hash=block_hash, chain_id=chain_id)
