"""The embedded chain's log table: `eth_getLogs` costs what its matches cost, as on a real node.

eth-tester answers `eth_getLogs` by decoding every receipt of every block in the range, so a
query over the whole chain grows with the chain, whatever it matches. Here every log of every
canonical block is written, once, to an indexed SQLite table beside the chain's own data (the
same file and connection, so it shares the chain's permissions and lock). A query is then one
indexed SELECT.

The table follows the canonical chain: a block is recorded with its hash, and when the stored
hash of the last recorded block no longer matches the chain (a snapshot was reverted, or the
table belongs to an older chain), the table is cut back to the last matching block first. A
chain that was created before this table existed is backfilled from its receipts the first time.

Answers have eth-tester's shape and order (its `log_index` counts within the transaction, as its
receipts do), so that web3 formats them exactly as before, plus the `blockTimestamp` that current
nodes (geth, reth, anvil) include in every log. Block tags mean what they mean on a node
("earliest" is block 0; eth-tester mishandles "earliest", "safe", "finalized" and "pending").
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, ContextManager

from eth_utils import decode_hex, encode_hex, is_hex, to_checksum_address

# Requests after which the canonical chain may have new (or fewer) blocks.
_CHAIN_CHANGING = frozenset({
    "eth_sendRawTransaction", "eth_sendTransaction", "evm_mine", "evm_revert", "evm_snapshot",
    "testing_mine", "testing_timeTravel", "evm_increaseTime", "evm_setNextBlockTimestamp",
})
# Blocks written per transaction while backfilling: bounded memory, progress kept if killed.
_BACKFILL_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
    block INTEGER NOT NULL, tx_index INTEGER NOT NULL, log_index INTEGER NOT NULL,
    address BLOB NOT NULL, topic_count INTEGER NOT NULL,
    topic0 BLOB, topic1 BLOB, topic2 BLOB, topic3 BLOB,
    data BLOB NOT NULL, tx_hash BLOB NOT NULL, block_hash BLOB NOT NULL, block_timestamp INTEGER NOT NULL,
    PRIMARY KEY (block, tx_index, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_address ON logs (address, block);
CREATE INDEX IF NOT EXISTS logs_topic0 ON logs (topic0, block);
CREATE INDEX IF NOT EXISTS logs_topic1 ON logs (topic1, block);
CREATE INDEX IF NOT EXISTS logs_topic2 ON logs (topic2, block);
CREATE INDEX IF NOT EXISTS logs_topic3 ON logs (topic3, block);
"""


class LogTable:
    """The logs of the canonical chain of one py-evm `chain`, stored over `conn`.

    `conn` is the chain database's own connection (autocommit mode) and `transaction` the
    database's own transaction; every write happens while the caller holds the chain's file lock.
    """

    def __init__(self, conn: sqlite3.Connection, transaction: Callable[[], ContextManager[None]]) -> None:
        self._conn = conn
        self._transaction = transaction
        self._ready = False

    # ---- writing ----

    def after_request(self, method: str, chain: Any) -> None:
        """Record the logs of any block the request `method` mined (or forget reverted ones)."""
        if method in _CHAIN_CHANGING:
            self.catch_up(chain)

    def catch_up(self, chain: Any) -> None:
        """Make the table hold exactly the logs of the canonical blocks 0..head of `chain`."""
        if not self._ready:  # created here, under the chain's lock, not when the provider opens
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(logs)")}
            if columns and "block_timestamp" not in columns:  # an earlier layout: written again
                self._conn.executescript("DROP TABLE logs; DROP TABLE log_blocks;")
            self._conn.executescript(_SCHEMA)
            self._ready = True
        head = chain.get_canonical_head().block_number
        last = self._rewind(chain, head)
        while last < head:
            upto = min(head, last + _BACKFILL_BATCH)
            with self._transaction():
                for number in range(last + 1, upto + 1):
                    self._record(chain, number)
            last = upto

    def _rewind(self, chain: Any, head: int) -> int:
        """Drop recorded blocks that are no longer canonical; the last block still recorded."""
        row = self._conn.execute("SELECT max(number) FROM log_blocks").fetchone()
        last = -1 if row[0] is None else row[0]
        stale_from = None
        if last > head:
            stale_from = head + 1
            last = head
        while last >= 0:
            stored = self._conn.execute("SELECT hash FROM log_blocks WHERE number = ?", (last,)).fetchone()
            if stored is not None and bytes(stored[0]) == chain.get_canonical_block_hash(last):
                break
            stale_from = last
            last -= 1
        if stale_from is not None:
            with self._transaction():
                self._conn.execute("DELETE FROM logs WHERE block >= ?", (stale_from,))
                self._conn.execute("DELETE FROM log_blocks WHERE number >= ?", (stale_from,))
        return last

    def _record(self, chain: Any, number: int) -> None:
        block = chain.get_canonical_block_by_number(number)
        rows = []
        if block.transactions:
            receipts = block.get_receipts(chain.chaindb)
            for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts)):
                for log_index, log in enumerate(receipt.logs):
                    topics = [t.to_bytes(32, "big") for t in log.topics]
                    padded = (topics + [None] * 4)[:4]
                    rows.append((number, tx_index, log_index, bytes(log.address), len(topics), *padded,
                                 bytes(log.data), bytes(tx.hash), bytes(block.hash), block.header.timestamp))
        self._conn.executemany("INSERT INTO logs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        self._conn.execute("INSERT INTO log_blocks (number, hash) VALUES (?, ?)", (number, bytes(block.hash)))

    # ---- reading ----

    def get_logs(self, chain: Any, params: Any) -> list[dict[str, Any]]:
        """The answer to `eth_getLogs` with filter `params[0]` (eth-tester's keys or JSON-RPC's)."""
        self.catch_up(chain)
        sql, args = self.query(chain, params)
        return [_log_entry(row) for row in self._conn.execute(sql, args)]

    def query(self, chain: Any, params: Any) -> tuple[str, list[Any]]:
        """The SELECT answering an `eth_getLogs` filter, and its arguments."""
        query = params[0] if isinstance(params, (list, tuple)) and params else params
        if not isinstance(query, dict):
            raise ValueError("eth_getLogs takes one filter object")
        head = chain.get_canonical_head().block_number
        block_hash = query.get("blockHash", query.get("block_hash"))
        if block_hash is not None:
            if _present(query, "fromBlock", "from_block") or _present(query, "toBlock", "to_block"):
                raise ValueError("blockHash cannot be combined with fromBlock/toBlock")
            row = self._conn.execute("SELECT number FROM log_blocks WHERE hash = ?",
                                     (_bytes(block_hash, "blockHash"),)).fetchone()
            if row is None:
                raise ValueError(f"unknown block {block_hash}")
            low = high = row[0]
        else:
            low = _block_number(query.get("fromBlock", query.get("from_block")), head)
            high = _block_number(query.get("toBlock", query.get("to_block")), head)
        sql = ["SELECT block, tx_index, log_index, address, topic_count, topic0, topic1, topic2, topic3,"
               " data, tx_hash, block_hash, block_timestamp FROM logs WHERE block BETWEEN ? AND ?"]
        args: list[Any] = [low, high]
        addresses = _addresses(query.get("address"))
        if addresses:
            sql.append(f"AND address IN ({','.join('?' * len(addresses))})")
            args += addresses
        topics = query.get("topics") or []
        if not isinstance(topics, (list, tuple)) or len(topics) > 4:
            raise ValueError("topics must be a list of at most 4 entries")
        if topics:
            # As on geth and eth-tester: a log needs at least as many topics as the filter lists.
            sql.append("AND topic_count >= ?")
            args.append(len(topics))
        for position, wanted in enumerate(topics):
            alternatives = _topic_alternatives(wanted)
            if alternatives is None:
                continue
            sql.append(f"AND topic{position} IN ({','.join('?' * len(alternatives))})")
            args += alternatives
        sql.append("ORDER BY block, tx_index, log_index")
        return " ".join(sql), args


def _present(query: dict[str, Any], *keys: str) -> bool:
    return any(query.get(k) is not None for k in keys)


def _block_number(value: Any, head: int) -> int:
    if value is None or value in ("latest", "safe", "finalized"):
        return head
    if value == "earliest":
        return 0
    if value == "pending":  # the pending block of an auto-mining chain holds no logs yet
        return head + 1
    if isinstance(value, str) and is_hex(value):
        return int(value, 16)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(f"invalid block number {value!r}")


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str) and is_hex(value):
        return decode_hex(value)
    raise ValueError(f"invalid {what} {value!r}")


def _addresses(value: Any) -> list[bytes]:
    if value is None:
        return []
    items: Iterable[Any] = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        raw = _bytes(item, "address")
        if len(raw) != 20:
            raise ValueError(f"invalid address {item!r}")
        out.append(raw)
    return out


def _topic_alternatives(wanted: Any) -> list[bytes] | None:
    """The topics allowed at one position; None when any topic is (null, or a list holding null)."""
    if wanted is None:
        return None
    items = list(wanted) if isinstance(wanted, (list, tuple)) else [wanted]
    if not items or any(item is None for item in items):
        return None
    out = []
    for item in items:
        raw = _bytes(item, "topic")
        if len(raw) != 32:
            raise ValueError(f"invalid topic {item!r}: topics are 32 bytes")
        out.append(raw)
    return out


def _log_entry(row: tuple[Any, ...]) -> dict[str, Any]:
    block, tx_index, log_index, address, count, t0, t1, t2, t3, data, tx_hash, block_hash, timestamp = row
    return {
        "type": "mined",
        "log_index": log_index,
        "transaction_index": tx_index,
        "transaction_hash": encode_hex(tx_hash),
        "block_hash": encode_hex(block_hash),
        "block_number": block,
        "address": to_checksum_address(address),
        "data": encode_hex(data),
        "topics": [encode_hex(t) for t in (t0, t1, t2, t3)[:count]],
        # Not in eth-tester's answer, but in geth's, reth's and anvil's (hex, as they send it):
        # a reader of logs needs no extra request per block for the time.
        "blockTimestamp": hex(timestamp),
    }
