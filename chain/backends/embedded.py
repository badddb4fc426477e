"""The embedded chain: py-evm in this process, its state in one SQLite file.

eth-tester keeps its chain in memory; here the same chain runs over a SQLite key-value store so
that separate `fullchain` processes see one chain. Each JSON-RPC request takes a file lock, reloads
the canonical head from disk (another process may have mined since) and runs; so two processes
interleave request by request and never write at once. A block is committed in one SQLite
transaction, so a process killed mid-write leaves the previous head intact.
"""
from __future__ import annotations

import ast
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rlp
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import TransactionNotFound
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import setup_tester_chain
from eth_tester.exceptions import TransactionFailed
from eth_utils import to_hex
from filelock import FileLock, Timeout
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from ..errors import ChainBusy, ChainDamaged
from ..home import private_dir
from .embedded_logs import LogTable

# Enough for many dataset registrations at genesis; the development accounts exist only here.
DEV_ACCOUNT_COUNT = 10


class SqliteAtomicDB(BaseAtomicDB):
    """py-evm's key-value interface over one SQLite table; atomic batches are transactions."""

    def __init__(self, path: Path) -> None:
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode.
        # Only when it does not exist yet: closing any descriptor of a file drops every POSIX lock
        # this process holds on it, so reopening an open database would silently release the locks
        # of its other connections (SQLite's documented pitfall): stale reads, then corruption.
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL keeps readers of other processes unblocked; NORMAL sync survives a killed process.
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")

    def __getitem__(self, key: bytes) -> bytes:
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return row[0]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        if self._conn.execute("DELETE FROM kv WHERE k = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        return self._conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicDBWriteBatch]:
        batch = AtomicDBWriteBatch(self)
        try:
            yield batch
            diff = batch._diff()
            with self.transaction():
                diff.apply_to(self, apply_deletes=True)
        finally:
            batch._track_diff = None
            batch._write_target_db = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class PersistentPyEVMBackend(PyEVMBackend):
    """eth-tester's py-evm backend, with its chain stored in a :class:`SqliteAtomicDB`."""

    def __init__(self, db: SqliteAtomicDB) -> None:
        self._disk_db = db
        self.path = db.path
        super().__init__()

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        # The tester chain class is defined inside setup_tester_chain; an in-memory chain is
        # built once per process to get it and the development keys. Its genesis (stamped with
        # the current time) is copied to disk only the very first time, so the chain keeps one
        # genesis hash for its whole life.
        self.account_keys, memory_chain = setup_tester_chain(num_accounts=DEV_ACCOUNT_COUNT)
        self._chain_class = type(memory_chain)
        if not _has_head(self._disk_db):
            with self._disk_db.transaction():
                for key, value in memory_chain.chaindb.db.wrapped_db.kv_store.items():
                    self._disk_db[key] = value
        self.reload()

    def reload(self) -> None:
        """Pick up blocks that other processes committed since the last request."""
        self.chain = self._chain_class(self._disk_db)


def _has_head(db: SqliteAtomicDB) -> bool:
    try:
        ChainDB(db).get_canonical_head()
    except Exception:  # py-evm raises its own CanonicalHeadNotFound, not exported stably
        return False
    return True


class EmbeddedProvider(EthereumTesterProvider):
    """Serves web3 from the persistent backend, one locked request at a time.

    Reverts are answered the way a node answers them (code 3 with the revert data as hex), so
    that web3 raises the same exceptions here as against anvil or Besu.
    """

    def __init__(self, backend: PersistentPyEVMBackend, lock: FileLock, lock_timeout: float) -> None:
        super().__init__(EthereumTester(backend))
        self._backend = backend
        self._lock = lock
        self._lock_timeout = lock_timeout
        self._logs = LogTable(backend._disk_db._conn, backend._disk_db.transaction)  # eth_getLogs from an indexed table

    def make_request(self, method: Any, params: Any) -> Any:
        try:
            return self._request(method, params)
        except sqlite3.DatabaseError:
            raise ChainDamaged(f"the embedded chain database {self._backend.path} is damaged",
                               hint=f"restore it from a backup; or, for a development chain you can lose, "
                                    f"move {self._backend.path.parent} away and deploy again") from None

    def _request(self, method: Any, params: Any) -> Any:
        with self._locked():
            self._backend.reload()
            namespace, _, endpoint = method.partition("_")
            delegator = self.api_endpoints.get(namespace, {}).get(endpoint)
            if method == "eth_getLogs":
                delegator = lambda _tester, params: self._logs.get_logs(self._backend.chain, params)  # noqa: E731
            elif method == "debug_getRawHeader":
                # eth-tester's block JSON pads extraData to 32 bytes, so only the raw header hashes right
                delegator = lambda _tester, params: self._raw_header(params[0])  # noqa: E731
            elif method == "eth_getRawTransactionByHash":  # audit bundles prove transactions from these
                delegator = lambda _tester, params: self._raw_transaction(params[0])  # noqa: E731
            if delegator is None:
                return self._error(-32601, f"method not supported by the embedded chain: {method}")
            try:
                result = delegator(self.ethereum_tester, params)
            except TransactionFailed as failure:
                return self._error(3, "execution reverted", _revert_data(failure))
            except NotImplementedError:
                return self._error(-32601, f"method not supported by the embedded chain: {method}")
            except sqlite3.DatabaseError:
                raise
            except Exception as exc:  # eth-tester's validation errors: report like a node would
                return self._error(-32000, str(exc))
            self._logs.after_request(method, self._backend.chain)
        self._current_request_id += 1
        return {"id": self._current_request_id, "jsonrpc": "2.0", "result": result}

    def _raw_header(self, block: str) -> str:
        chain = self._backend.chain
        if isinstance(block, str) and len(block) == 66:
            header = chain.get_block_header_by_hash(bytes.fromhex(block[2:]))
        else:
            number = {"latest": None, "earliest": "0x0"}.get(block, block)
            number = chain.get_canonical_head().block_number if number is None else int(number, 16)
            header = chain.get_canonical_block_header_by_number(number)
        return to_hex(rlp.encode(header))

    def _raw_transaction(self, tx_hash: str) -> str | None:
        try:
            return to_hex(self._backend.chain.get_canonical_transaction(bytes.fromhex(tx_hash[2:])).encode())
        except TransactionNotFound:
            return None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._lock.acquire(timeout=self._lock_timeout)
        except Timeout:
            raise ChainBusy(
                f"the embedded chain at {self._lock.lock_file} stayed locked by another process for "
                f"{self._lock_timeout:g} s",
                hint="wait for the other fullchain command to finish, or raise FULLCHAIN_LOCK_TIMEOUT",
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    def _error(self, code: int, message: str, data: str | None = None) -> dict[str, Any]:
        self._current_request_id += 1
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        return {"id": self._current_request_id, "jsonrpc": "2.0", "error": error}


def _revert_data(failure: TransactionFailed) -> str:
    """The raw revert bytes inside eth-tester's exception, as 0x-hex ("0x" when there are none)."""
    arg: Any = failure.args[0] if failure.args else b""
    while isinstance(arg, Exception):
        arg = arg.args[0] if arg.args else b""
    if isinstance(arg, str) and arg.startswith(("b'", 'b"')):
        # eth_call reports a custom error as the str() of its bytes; recover them.
        try:
            arg = ast.literal_eval(arg)
        except (ValueError, SyntaxError):
            return "0x"
    return to_hex(arg) if isinstance(arg, bytes) else "0x"


def open_embedded(directory: Path, *, lock_timeout: float = 60.0) -> tuple[Web3, list[bytes]]:
    """A Web3 over the embedded chain stored in `directory`, and its funded development keys."""
    private_dir(directory)
    lock = FileLock(str(directory / "chain.lock"), mode=0o600)
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout:
        raise ChainBusy(
            f"the embedded chain at {directory} stayed locked by another process for {lock_timeout:g} s",
            hint="wait for the other fullchain command to finish, or raise FULLCHAIN_LOCK_TIMEOUT",
        ) from None
    try:
        backend = _open_backend(directory / "chain.sqlite")
    finally:
        lock.release()
    w3 = Web3(EmbeddedProvider(backend, lock, lock_timeout))
    return w3, [key.to_bytes() for key in backend.account_keys]


def _open_backend(path: Path) -> PersistentPyEVMBackend:
    """The backend over the chain DB at `path`; a damaged DB is reported, never replaced."""
    damaged = ChainDamaged(
        f"the embedded chain database {path} is damaged",
        hint=f"restore it from a backup; or, for a development chain you can lose, move {path.parent} "
             f"away and run `fullchain chain deploy` again")
    # A new chain is created only where there is no file; an existing but empty one was cut.
    existed = path.exists()
    if existed and (path.stat().st_size == 0 or not _has_chain_table(path)):
        raise damaged  # checked read-only: opening it for writing would create tables in it
    db = None
    try:
        db = SqliteAtomicDB(path)
        # (No full integrity check here: it reads the whole file on every command. A page that
        # is damaged further in is reported when a request reads it, see EmbeddedProvider.)
        if existed and db._conn.execute("SELECT 1 FROM kv LIMIT 1").fetchone() and not _has_head(db):
            raise damaged
        return PersistentPyEVMBackend(db)
    except sqlite3.DatabaseError:
        if db is not None:
            db.close()
        raise damaged from None
    except ChainDamaged:
        if db is not None:
            db.close()
        raise


def _has_chain_table(path: Path) -> bool:
    try:
        ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        return ro.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'").fetchone() is not None
    except sqlite3.DatabaseError:
        return False
    finally:
        ro.close()
