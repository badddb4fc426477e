"""Filling the index from a node: eth_getLogs over adaptive block ranges, reorg rewinds.

Each range is applied in one SQLite transaction that also advances the cursor, so a reader (or
a process killed mid-sync) sees the index either before or after a whole range, never half of
one. A file lock serializes syncing processes; readers never wait for it (WAL).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from requests.exceptions import RequestException
from web3 import Web3
from web3.exceptions import Web3Exception

from ..errors import ChainError
from ._apply import apply_event
from ._decode import checksum, decode_log
from ._schema import STATE_TABLES, get_meta, set_meta

INITIAL_SPAN = 5_000
MAX_SPAN = 1_000_000
# Grow the range while answers stay under GROW_BELOW logs; shrink it above SHRINK_ABOVE.
GROW_BELOW = 1_000
SHRINK_ABOVE = 5_000
# How many stored blocks a rewind checks before it gives up and rebuilds from scratch.
MAX_REWIND_PROBES = 256
# Times in a row a range may be found changed (a reorg while reading it) before giving up.
MAX_RETRIES = 8
# Words by which nodes refuse a range that is too large or an answer that is too big
# (geth, Besu, Erigon, anvil, hosted providers), and transport timeouts of a slow answer.
_TOO_MUCH = ("range", "limit", "too many", "too large", "exceed", "more than", "max results",
             "response size", "timeout", "timed out", "query returned")

Progress = Callable[[int, int], None]  # (last block indexed, target block)


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: the blocks covered, the events added, and any rewind."""

    from_block: int
    to_block: int
    events: int
    ranges: int
    rewound_to: int | None = None
    rebuilt: bool = False


class RangeRefused(Exception):
    """The node refused a getLogs range as too large (or timed out answering it)."""


class Syncer:
    def __init__(self, conn: sqlite3.Connection, w3: Web3, contracts: Mapping[str, str]) -> None:
        self._conn = conn
        self._w3 = w3
        # address (lowercase) -> contract name
        self._by_address = {Web3.to_checksum_address(a).lower(): name for name, a in contracts.items()}
        self._addresses = [Web3.to_checksum_address(a) for a in contracts.values()]

    # ---- one sync ----

    def run(self, target: int, progress: Progress | None = None) -> SyncResult:
        cursor = int(get_meta(self._conn, "cursor", "-1"))  # type: ignore[arg-type]
        rewound = self._check_reorg(cursor)
        rebuilt = rewound == -1 and cursor >= 0
        if rewound is not None:
            cursor = rewound
        start, events, ranges = cursor + 1, 0, 0
        span = int(get_meta(self._conn, "span", str(INITIAL_SPAN)))  # type: ignore[arg-type]
        moving = 0
        while cursor < target and self._addresses:
            to = min(target, cursor + span)
            try:
                added = self._sync_range(cursor + 1, to, span)
            except RangeRefused:
                if span == 1:
                    raise ChainError(f"the node refused eth_getLogs even for the single block {cursor + 1}",
                                     hint="check the node's log query limits (e.g. RPC max results)") from None
                span = max(1, span // 2)
                continue
            if added is None:  # the chain moved under this range: check for a reorg, then go on
                moving += 1
                if moving > MAX_RETRIES:
                    raise ChainError(f"the node's blocks {cursor + 1}-{to} kept changing while they were read",
                                     hint="try again once the network has settled")
                moved = self._check_reorg(cursor)
                if moved is not None:
                    cursor = moved
                continue
            moving = 0
            events += added
            ranges += 1
            cursor = to
            if added < GROW_BELOW:
                span = min(MAX_SPAN, span * 2)
            elif added > SHRINK_ABOVE:
                span = max(1, span // 2)
            if progress is not None:
                progress(cursor, target)
        with _transaction(self._conn):
            set_meta(self._conn, "span", span)
        return SyncResult(from_block=start, to_block=max(cursor, start - 1), events=events, ranges=ranges,
                          rewound_to=rewound, rebuilt=rebuilt)

    def _sync_range(self, low: int, high: int, span: int) -> int | None:
        """Index blocks low..high in one transaction; the number of events, or None when the
        chain changed while the range was read (it is then read again)."""
        before = self._block(high)
        try:
            logs = self._w3.eth.get_logs({"fromBlock": low, "toBlock": high, "address": self._addresses})
        except (Web3Exception, RequestException, ValueError, OSError) as exc:
            text = str(exc).lower()
            if any(word in text for word in _TOO_MUCH):
                raise RangeRefused(str(exc)) from None
            raise ChainError(f"eth_getLogs for blocks {low}-{high} failed: {exc}",
                             hint="check that the node is reachable and serves eth_getLogs") from None
        after = self._block(high)
        if before["hash"] != after["hash"]:
            return None
        blocks: dict[int, tuple[str, int]] = {high: (_hex(after["hash"]), int(after["timestamp"]))}
        rows = []
        for log in logs:
            if log.get("removed"):
                continue
            number = int(log["blockNumber"])
            log_hash = _hex(log["blockHash"])
            if number not in blocks:
                stamp = log.get("blockTimestamp")
                if stamp is not None:
                    blocks[number] = (log_hash, int(stamp, 16) if isinstance(stamp, str) else int(stamp))
                else:
                    header = self._block(number)
                    blocks[number] = (_hex(header["hash"]), int(header["timestamp"]))
            if blocks[number][0] != log_hash:
                return None
            rows.append((number, log))
        with _transaction(self._conn):
            count = 0
            for number, log in rows:
                if self._store_event(number, blocks[number][1], log):
                    count += 1
            self._conn.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?)",
                                   [(n, h, t) for n, (h, t) in blocks.items()])
            set_meta(self._conn, "cursor", high)
        return count

    def _store_event(self, number: int, timestamp: int, log: Any) -> bool:
        contract = self._by_address.get(str(log["address"]).lower())
        if contract is None:
            return False
        return store_event(self._conn, contract, str(log["address"]), number, int(log["transactionIndex"]),
                           int(log["logIndex"]), _hex(log["transactionHash"]), timestamp,
                           [bytes(t) for t in log["topics"]], bytes(log["data"]))

    def _block(self, number: int) -> Any:
        try:
            return self._w3.eth.get_block(number)
        except (Web3Exception, RequestException, ValueError, OSError) as exc:
            raise ChainError(f"cannot read block {number} from the node: {exc}",
                             hint="check that the node is reachable") from None

    # ---- reorgs ----

    def _check_reorg(self, cursor: int) -> int | None:
        """None if the stored blocks are still on the chain; else the block to continue from
        after the index was rewound to it (-1: rebuilt from scratch)."""
        if cursor < 0:
            return None
        head = self._w3.eth.block_number
        probes = 0
        fork = -1
        rows = self._conn.execute("SELECT number, hash FROM blocks ORDER BY number DESC")
        try:
            for number, stored in rows:
                if number > head:
                    continue
                if _hex(self._block(number)["hash"]) == stored:
                    fork = number
                    break
                probes += 1
                if probes >= MAX_REWIND_PROBES:
                    break
        finally:
            rows.close()  # before the rewind writes
        if fork == cursor:
            return None
        self.rewind(fork)
        return fork

    def rewind(self, fork: int) -> None:
        """Forget everything after block `fork` and derive the state again from the events kept."""
        with _transaction(self._conn):
            self._conn.execute("DELETE FROM events WHERE block > ?", (fork,))
            self._conn.execute("DELETE FROM blocks WHERE number > ?", (fork,))
            replay(self._conn)
            # Content-addressed, so never wrong, but no longer anything's metadata.
            self._conn.execute("DELETE FROM public_metadata WHERE metadata_cid NOT IN "
                               "(SELECT metadata_cid FROM versions)")
            set_meta(self._conn, "cursor", fork)


def store_event(conn: sqlite3.Connection, contract: str, address: str, number: int, tx_index: int, log_index: int,
                tx_hash: str, timestamp: int, topics: list[bytes], data: bytes) -> bool:
    """Decode one log of `contract`, apply it to the state tables and file it in `events`; False
    for a log the contract does not declare. Audit bundles fill their own index with it too."""
    decoded = decode_log(contract, topics, data)
    if decoded is None:
        return False
    name, args = decoded
    dataset_id, license_id, account = apply_event(conn, name, args, number, timestamp)
    conn.execute("INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (number, tx_index, log_index, tx_hash, timestamp, contract, checksum(address), name,
                  json.dumps(args), dataset_id, license_id, account))
    return True


def replay(conn: sqlite3.Connection) -> None:
    """Rebuild every state table from the `events` table (inside the caller's transaction)."""
    for table in STATE_TABLES:
        conn.execute(f"DELETE FROM {table}")
    rows = conn.execute("SELECT block, timestamp, name, args FROM events ORDER BY block, tx_index, log_index").fetchall()
    for block, timestamp, name, args in rows:
        apply_event(conn, name, json.loads(args), block, timestamp)


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()
