"""The event index of one chain: sync it from the node, then query it without the node."""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict
from eth_utils import to_checksum_address

from ..duo import Purpose, lookup, modifier_codes
from ..errors import ChainBusy, ChainError, ConfigError, ContentNotFound, InvalidInput, StorageUnreachable
from ..models import (
    DatasetInfo,
    DatasetVersion,
    License,
    Member,
    MemberPoints,
    MemberStatus,
    MeterEpoch,
    MeterRecord,
    Proposal,
    ProposalKind,
    Role,
)
from . import _schema
from ._apply import CANCELLED, EXECUTED, GRANTED, PENDING
from ._schema import get_meta, set_meta

if TYPE_CHECKING:
    from web3 import Web3

    from ._sync import Progress, SyncResult
    from ..client import Fullchain
    from ..storage import ContentStore

_LICENSE_STATUS = ("CASE l.status WHEN 1 THEN 'requested' "
                   "WHEN 2 THEN CASE WHEN l.expires_at < :now THEN 'expired' ELSE 'granted' END "
                   "WHEN 3 THEN 'rejected' WHEN 4 THEN 'revoked' WHEN 5 THEN 'superseded' END")
# DataUseLicensing.isValid: granted, not expired, the requester still in the membership it asked
# in (removal ends a license for good, re-admission revives nothing), and no required consent
# withdrawn on the dataset or on any ancestor of its lineage.
_LICENSE_VALID = ("(l.status = 2 AND :now <= l.expires_at "
                  "AND EXISTS (SELECT 1 FROM members m WHERE m.account = l.requester AND m.status = 1 "
                  "AND m.admission = l.admission) "
                  "AND NOT EXISTS (SELECT 1 FROM consents c WHERE c.dataset_id = l.dataset_id AND c.given = 0) "
                  "AND NOT EXISTS (SELECT 1 FROM ancestors a JOIN consents c ON c.dataset_id = a.ancestor_id "
                  "WHERE a.dataset_id = l.dataset_id AND c.given = 0))")
# Consortium.proposal(id).approvals: approvals of governors still in the term they approved in.
_APPROVALS = ("(SELECT count(*) FROM approvals a JOIN members m ON m.account = a.governor "
              f"WHERE a.proposal_id = p.id AND m.status = 1 AND m.roles & {int(Role.GOVERNOR)} != 0 "
              "AND m.governor_term = a.term)")
LICENSE_STATUSES = ("requested", "granted", "rejected", "revoked", "superseded", "expired")
STANDARDS = ("sdtm", "adam", "send", "omop", "fhir", "other")
TIERS = ("public", "consortium", "restricted")
METADATA_RETRY_S = 3600
# The latest version of dataset `d` is not erased: an erased version's metadata is not shown.
_LATEST_LIVE = ("NOT EXISTS (SELECT 1 FROM versions e WHERE e.dataset_id = d.id AND e.version = d.latest_version "
                "AND e.erased = 1)")
_WITH_TITLE = f"SELECT d.*, p.title FROM datasets d LEFT JOIN public_metadata p ON p.metadata_cid = d.metadata_cid " \
              f"AND {_LATEST_LIVE}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetEntry(_Model):
    """A dataset as the index knows it: the SDK's DatasetInfo, its latest version, and which
    versions were erased. `info.title` is set only for public metadata (read from the store)."""

    info: DatasetInfo
    latest: DatasetVersion | None
    erased_versions: list[int]


class IndexedEvent(_Model):
    """One decoded event of a fullchain contract, where and when it happened."""

    block: int
    tx_index: int
    log_index: int
    tx_hash: str
    timestamp: datetime
    contract: str
    address: str
    name: str
    args: dict[str, Any]
    dataset_id: int | None
    license_id: int | None


@dataclass(frozen=True)
class PoolFigures:
    """The indexed figures of one epoch's pool of one token (see EventIndex.pool_figures).
    Amounts and points are exact integers (base units)."""

    epoch: int
    token: str
    funds: list[tuple[str, int]]  # (funder, amount) in order of first funding
    claims: dict[str, int]  # account -> claimed in total
    sweep: tuple[int, int, int] | None  # (to epoch, amount, block time)
    fixed: bool  # funded at least once: the split is the epoch's snapshot
    split: dict[str, Any] | None  # the snapshot (IBenefitDistributor.Split fields), when fixed
    current_split: dict[str, Any] | None  # the split in force now
    claim_window: int | None
    finalized_at: int | None
    points: dict[str, dict[str, int]]  # member -> dimension -> points (members with points only)
    totals: dict[str, int]
    patient_points: dict[str, int]  # patient -> points (patients with points only)


class EventIndex:
    """The index at `path`. `w3` and `contracts` (name -> address) are needed only to sync;
    `depth` blocks below the head are left unindexed until they are that deep (confirmations)."""

    def __init__(self, path: Path, *, w3: Web3 | None = None, contracts: Mapping[str, str] | None = None,
                 depth: int = 0, store: Callable[[], ContentStore] | None = None,
                 lock_timeout: float = 120.0) -> None:
        self.path = Path(path)
        self._w3 = w3
        self._contracts = {name: to_checksum_address(a) for name, a in (contracts or {}).items()}
        self._depth = max(0, depth)
        self._store = store
        self._lock = FileLock(str(self.path) + ".lock", mode=0o600)
        self._lock_timeout = lock_timeout
        try:
            self._conn = _schema.connect(self.path)
            self._ensure_schema()
        except OSError as exc:  # the directory or file cannot be created
            raise _unusable(self.path, exc) from None
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full...
                raise _unusable(self.path, exc) from None
            # Not an SQLite file any more (truncated, overwritten): it is a cache, start afresh.
            with self._locked():
                for leftover in (self.path, *(Path(str(self.path) + s) for s in ("-wal", "-shm"))):
                    leftover.unlink(missing_ok=True)
            self._conn = _schema.connect(self.path)
            self._ensure_schema()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EventIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- sync ----

    def sync(self, *, progress: Progress | None = None, metadata: bool = True) -> SyncResult:
        """Bring the index up to `head - depth`: rewind blocks that left the chain, then fetch
        and apply the new events range by range. With a store, public metadata documents of
        new versions are cached too (`metadata`). Safe to run from several processes at once."""
        if self._w3 is None:
            raise ChainError("this index was opened without a chain connection", hint="open it with open_index(fc)")
        from ._sync import Syncer  # web3's machinery: only when there is something to fetch

        with self._locked():
            try:
                self._ensure_contracts()
                target = self._w3.eth.block_number - self._depth
                result = Syncer(self._conn, self._w3, self._contracts).run(target, progress)
                if metadata and self._store is not None:
                    self._cache_public_metadata(self._store())
            except sqlite3.OperationalError as exc:
                raise _unusable(self.path, exc) from None
        return result

    def holds_exactly(self, number: int, block_hash: str | None, contracts: Mapping[str, str]) -> bool:
        """Whether the index was synced, for `contracts`, up to block `number` and no further,
        and stored that block with `block_hash`: then it holds what a sync would fetch."""
        if block_hash is None or self.cursor != number:
            return False
        row = self._conn.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        wanted = json.dumps({name: to_checksum_address(a) for name, a in contracts.items()}, sort_keys=True)
        return row is not None and row[0] == block_hash.lower() and get_meta(self._conn, "contracts") == wanted

    @property
    def cursor(self) -> int:
        """The last block indexed (-1: none yet)."""
        return int(get_meta(self._conn, "cursor", "-1"))  # type: ignore[arg-type]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._lock.acquire(timeout=self._lock_timeout)
        except Timeout:
            raise ChainBusy(f"the event index {self.path} stayed locked by another process for "
                            f"{self._lock_timeout:g} s", hint="wait for the other fullchain command to finish") from None
        try:
            yield
        finally:
            self._lock.release()

    def _schema_version(self) -> str | None:
        try:
            return get_meta(self._conn, "schema")
        except sqlite3.OperationalError:  # a new, empty file
            return None

    def _ensure_schema(self) -> None:
        if self._schema_version() == str(_schema.SCHEMA_VERSION):
            return
        with self._locked():
            if self._schema_version() == str(_schema.SCHEMA_VERSION):
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                _schema.drop_all(self._conn)  # another version's index: it is a cache, rebuild it
                for statement in _schema.statements():
                    self._conn.execute(statement)
                set_meta(self._conn, "schema", _schema.SCHEMA_VERSION)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _ensure_contracts(self) -> None:
        wanted = json.dumps(self._contracts, sort_keys=True)
        if get_meta(self._conn, "contracts") == wanted:
            return
        # Another deployment on the same chain: start again for these contracts.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for (table,) in self._conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta'").fetchall():
                self._conn.execute(f"DELETE FROM {table}")
            self._conn.execute("DELETE FROM meta WHERE key != 'schema'")
            set_meta(self._conn, "contracts", wanted)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _cache_public_metadata(self, store: ContentStore) -> None:
        from ..metadata import DatasetMetadata

        now = int(time.time())
        missing = [r[0] for r in self._conn.execute(
            "SELECT DISTINCT v.metadata_cid FROM versions v WHERE v.tier = 'public' AND v.erased = 0 "
            "AND NOT EXISTS (SELECT 1 FROM public_metadata p WHERE p.metadata_cid = v.metadata_cid) "
            "AND NOT EXISTS (SELECT 1 FROM metadata_misses m WHERE m.metadata_cid = v.metadata_cid "
            "AND m.tried_at > ?)", (now - METADATA_RETRY_S,))]
        found, misses = [], []
        for cid in missing:
            try:
                document = DatasetMetadata.from_bytes(b"".join(store.cat(cid)))
            except StorageUnreachable:
                break  # the views work without titles; the next sync tries again
            except (ContentNotFound, ValueError):
                misses.append((cid, now))  # not in this store (yet), or not a document: asked again later
                continue
            found.append((cid, document.title, document.standard, json.dumps(document.data_use),
                          document.model_dump_json()))
        # An erased version's document leaves the cache too, as it left the store (erasure).
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.execute("DELETE FROM public_metadata WHERE metadata_cid IN (SELECT metadata_cid FROM versions "
                           "WHERE erased = 1) AND metadata_cid NOT IN (SELECT metadata_cid FROM versions WHERE erased = 0)")
        self._conn.execute("COMMIT")
        if found or misses:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO public_metadata VALUES (?, ?, ?, ?, ?)", found)
            self._conn.executemany("INSERT OR REPLACE INTO metadata_misses VALUES (?, ?)", misses)
            self._conn.execute("DELETE FROM metadata_misses WHERE metadata_cid IN "
                               "(SELECT metadata_cid FROM public_metadata)")
            self._conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several queries that see one state of the index (e.g. a page and its total)."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, args: Mapping[str, Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self._conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def now(self) -> int:
        """The time validity is judged at: the newest indexed block or the clock, whichever is later."""
        row = self._conn.execute("SELECT max(timestamp) FROM blocks").fetchone()
        return max(int(time.time()), row[0] or 0)

    # ---- datasets ----

    def _dataset_filter(self, owner: str | None, standard: str | None, tier: str | None, data_use: str | None,
                        readable_by: str | None) -> tuple[str, dict[str, Any]]:
        where, args = ["1"], {}
        if owner is not None:
            where.append("d.owner = :owner")
            args["owner"] = to_checksum_address(owner)
        if standard is not None:
            if standard not in STANDARDS:
                raise InvalidInput(f"unknown standard '{standard}'", hint="use one of " + ", ".join(STANDARDS))
            where.append("d.standard = :standard")
            args["standard"] = standard
        if tier is not None:
            if tier not in TIERS:
                raise InvalidInput(f"unknown tier '{tier}'", hint="use one of " + ", ".join(TIERS))
            where.append("d.tier = :tier")
            args["tier"] = tier
        if data_use is not None:
            # Only public metadata is in the index: datasets whose latest metadata is private
            # never match a data-use filter here.
            where.append("EXISTS (SELECT 1 FROM public_metadata p, json_each(p.data_use) j "
                         f"WHERE p.metadata_cid = d.metadata_cid AND j.value = :data_use) AND {_LATEST_LIVE}")
            args["data_use"] = lookup(data_use).id
        if readable_by is not None:
            where.append("(d.owner = :reader OR EXISTS (SELECT 1 FROM key_bundles k WHERE k.dataset_id = d.id "
                         "AND k.recipient = :reader) OR EXISTS (SELECT 1 FROM licenses l WHERE l.dataset_id = d.id "
                         "AND l.requester = :reader AND l.status = 2))")
            args["reader"] = to_checksum_address(readable_by)
        return " AND ".join(where), args

    def datasets(self, *, limit: int | None = None, offset: int = 0, after_id: int | None = None,
                 owner: str | None = None, standard: str | None = None, tier: str | None = None,
                 data_use: str | None = None, readable_by: str | None = None) -> list[DatasetEntry]:
        """A page of datasets in id order. Filters combine (AND); `after_id` pages by key.
        `standard`/`tier`/`data_use` apply to the latest version."""
        where, args = self._dataset_filter(owner, standard, tier, data_use, readable_by)
        if after_id is not None:
            where += " AND d.id > :after_id"
            args["after_id"] = after_id
        args.update(limit=-1 if limit is None else limit, offset=offset)
        rows = self._rows(f"{_WITH_TITLE} WHERE {where} ORDER BY d.id LIMIT :limit OFFSET :offset",
                          args)
        latest = self._latest_versions([r["id"] for r in rows])
        return [self._entry(r, latest.get(r["id"])) for r in rows]

    def count_datasets(self, *, owner: str | None = None, standard: str | None = None, tier: str | None = None,
                       data_use: str | None = None, readable_by: str | None = None) -> int:
        where, args = self._dataset_filter(owner, standard, tier, data_use, readable_by)
        return self._conn.execute(f"SELECT count(*) FROM datasets d WHERE {where}", args).fetchone()[0]

    def dataset(self, dataset_id: int) -> DatasetEntry | None:
        rows = self._rows(f"{_WITH_TITLE} WHERE d.id = ?", (dataset_id,))
        if not rows:
            return None
        return self._entry(rows[0], self._latest_versions([dataset_id]).get(dataset_id))

    def versions(self, dataset_id: int) -> list[DatasetVersion]:
        rows = self._rows("SELECT * FROM versions WHERE dataset_id = ? ORDER BY version", (dataset_id,))
        return [_version(r) for r in rows]

    def key_bundle(self, dataset_id: int, version: int, recipient: str) -> bytes | None:
        """The digest of the key bundle of a version published for `recipient`, if any."""
        row = self._conn.execute("SELECT digest FROM key_bundles WHERE dataset_id = ? AND version = ? AND recipient = ?",
                                 (dataset_id, version, to_checksum_address(recipient))).fetchone()
        return bytes.fromhex(row[0].removeprefix("0x")) if row else None

    def delivered_versions(self, license_ids: list[int], version: int) -> set[int]:
        """Which of these licenses already hold a delivered key for `version`."""
        if not license_ids:
            return set()
        marks = ",".join("?" * len(license_ids))
        rows = self._conn.execute(f"SELECT license_id FROM license_keys WHERE version = ? AND license_id IN ({marks})",
                                  (version, *license_ids))
        return {r[0] for r in rows}

    def readable_bundle(self, dataset_id: int, version: int, reader: str, *, now: int | None = None) -> bytes | None:
        """The digest of a key bundle of the version `reader` can open: one published for it
        (the owner's), else one delivered under a license of it that is valid now."""
        own = self.key_bundle(dataset_id, version, reader)
        if own is not None:
            return own
        row = self._conn.execute(
            f"SELECT k.digest FROM licenses l JOIN license_keys k ON k.license_id = l.id "
            f"WHERE l.dataset_id = :dataset AND l.requester = :reader AND k.version = :version AND {_LICENSE_VALID} "
            f"ORDER BY l.id DESC LIMIT 1",
            {"dataset": dataset_id, "reader": to_checksum_address(reader), "version": version,
             "now": self.now() if now is None else now}).fetchone()
        return bytes.fromhex(row[0].removeprefix("0x")) if row else None

    def version_of_commitment(self, commitment: str) -> tuple[int, int] | None:
        """(dataset id, version) anchoring `commitment` (0x-hex), if indexed."""
        row = self._conn.execute("SELECT dataset_id, version FROM versions WHERE commitment = ?",
                                 (commitment.lower(),)).fetchone()
        return (row[0], row[1]) if row else None

    def version_spans(self, start: int, end: int) -> list[dict[str, Any]]:
        """Every version stored at some time in [start, end) (unix seconds): its dataset, owner,
        size and the times it was registered and erased (None while it is not), in id order."""
        return self._rows("SELECT v.dataset_id, v.version, d.owner, v.size, v.registered_at, v.erased_at "
                          "FROM versions v JOIN datasets d ON d.id = v.dataset_id "
                          "WHERE v.registered_at < ? AND (v.erased_at IS NULL OR v.erased_at > ?) "
                          "ORDER BY v.dataset_id, v.version", (end, start))

    def _latest_versions(self, ids: list[int]) -> dict[int, DatasetVersion]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(f"SELECT v.* FROM versions v JOIN datasets d ON d.id = v.dataset_id "
                          f"AND v.version = d.latest_version WHERE d.id IN ({marks})", tuple(ids))
        return {r["dataset_id"]: _version(r) for r in rows}

    @staticmethod
    def _entry(row: dict[str, Any], latest: DatasetVersion | None) -> DatasetEntry:
        info = DatasetInfo(dataset_id=row["id"], owner=row["owner"], created_at=_utc(row["created_at"]),
                           version_count=row["latest_version"], derived_from=json.loads(row["derived_from"]),
                           title=row.get("title"))
        return DatasetEntry(info=info, latest=latest, erased_versions=json.loads(row["erased_versions"]))

    # ---- licenses ----

    def _license_filter(self, dataset_id: int | None, status: str | None, licensee: str | None,
                        owner: str | None, now: int) -> tuple[str, dict[str, Any]]:
        where, args = ["1"], {"now": now}
        if dataset_id is not None:
            where.append("l.dataset_id = :dataset")
            args["dataset"] = dataset_id
        if status is not None:
            if status not in LICENSE_STATUSES:
                raise InvalidInput(f"unknown license status '{status}'", hint="use one of " + ", ".join(LICENSE_STATUSES))
            where.append(f"({_LICENSE_STATUS}) = :status")
            args["status"] = status
        if licensee is not None:
            where.append("l.requester = :licensee")
            args["licensee"] = to_checksum_address(licensee)
        if owner is not None:
            where.append("EXISTS (SELECT 1 FROM datasets d WHERE d.id = l.dataset_id AND d.owner = :owner)")
            args["owner"] = to_checksum_address(owner)
        return " AND ".join(where), args

    def licenses(self, *, limit: int | None = None, offset: int = 0, dataset_id: int | None = None,
                 status: str | None = None, licensee: str | None = None, owner: str | None = None,
                 now: int | None = None) -> list[License]:
        """A page of licenses and requests in id order; `owner` is the dataset's owner (incoming),
        `licensee` the requester; `status` as shown (an expired grant is "expired")."""
        when = self.now() if now is None else now
        where, args = self._license_filter(dataset_id, status, licensee, owner, when)
        args.update(limit=-1 if limit is None else limit, offset=offset)
        rows = self._rows(f"SELECT l.*, {_LICENSE_STATUS} AS label, {_LICENSE_VALID} AS valid FROM licenses l "
                          f"WHERE {where} ORDER BY l.id LIMIT :limit OFFSET :offset", args)
        return [_license(r) for r in rows]

    def count_licenses(self, *, dataset_id: int | None = None, status: str | None = None,
                       licensee: str | None = None, owner: str | None = None, now: int | None = None) -> int:
        when = self.now() if now is None else now
        where, args = self._license_filter(dataset_id, status, licensee, owner, when)
        return self._conn.execute(f"SELECT count(*) FROM licenses l WHERE {where}", args).fetchone()[0]

    def license(self, license_id: int, *, now: int | None = None) -> License | None:
        when = self.now() if now is None else now
        rows = self._rows(f"SELECT l.*, {_LICENSE_STATUS} AS label, {_LICENSE_VALID} AS valid FROM licenses l "
                          f"WHERE l.id = :id", {"id": license_id, "now": when})
        return _license(rows[0]) if rows else None

    def is_delegate(self, dataset_id: int, account: str) -> bool:
        """DataUseLicensing.isDelegate: named by the owner, and both still in the memberships
        they had when it was made (a removal ends a delegation for good)."""
        return self._conn.execute(
            "SELECT 1 FROM delegates g JOIN datasets d ON d.id = g.dataset_id "
            "JOIN members mo ON mo.account = d.owner AND mo.status = 1 AND mo.admission = g.owner_admission "
            "JOIN members md ON md.account = g.delegate AND md.status = 1 AND md.admission = g.delegate_admission "
            "WHERE g.dataset_id = ? AND g.delegate = ?",
            (dataset_id, to_checksum_address(account))).fetchone() is not None

    # ---- consortium ----

    def active_admission(self, account: str) -> int:
        """Consortium.activeAdmission: the member's admission number while it is active, else 0."""
        row = self._conn.execute("SELECT admission FROM members WHERE account = ? AND status = 1",
                                 (to_checksum_address(account),)).fetchone()
        return row[0] if row else 0

    def members(self, *, status: str | None = None) -> list[Member]:
        """Every account ever admitted, in admission order (like `Consortium.memberAccounts`)."""
        rows = self._rows("SELECT * FROM members ORDER BY position")
        members = [_member(r) for r in rows]
        return [m for m in members if status is None or m.status == status]

    def member(self, account: str) -> Member | None:
        rows = self._rows("SELECT * FROM members WHERE account = ?", (to_checksum_address(account),))
        return _member(rows[0]) if rows else None

    def proposals(self, *, status: str | None = None, now: int | None = None) -> list[Proposal]:
        """Every proposal in id order; a pending one past its deadline is "expired".
        `approvals` counts as the contract does: only approvals of governors still in the
        governor term they approved in (a demotion or removal voids an approval for good)."""
        when = self.now() if now is None else now
        out = [_proposal(r, when) for r in self._rows(f"SELECT p.*, {_APPROVALS} AS approvals FROM proposals p "
                                                      "ORDER BY p.id")]
        return [p for p in out if status is None or p.status == status]

    def approvals(self, proposal_id: int) -> list[str]:
        """Every governor that approved, in the order it first did, whether or not it still counts."""
        return [r[0] for r in self._conn.execute("SELECT governor FROM approvals WHERE proposal_id = ? ORDER BY rowid",
                                                 (proposal_id,))]

    def threshold(self) -> int | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key = 'threshold'").fetchone()
        return row[0] if row else None

    def governor_count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM members WHERE status = 1 AND roles & ? != 0",
                                  (int(Role.GOVERNOR),)).fetchone()[0]

    def allowed_accounts(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT account FROM allowed_accounts ORDER BY account")]

    # ---- contribution meter ----

    def meter_record(self, record_id: int) -> MeterRecord | None:
        rows = self._rows("SELECT * FROM meter_records WHERE id = ?", (record_id,))
        return self._meter_records(rows)[0] if rows else None

    def meter_records(self, *, epoch: int | None = None, member: str | None = None, status: str | None = None,
                      limit: int | None = None, offset: int = 0) -> list[MeterRecord]:
        """Contribution records in id order; filters combine."""
        from ..metering.meter import STATUSES

        where, args = ["1"], {}
        if epoch is not None:
            where.append("epoch = :epoch")
            args["epoch"] = epoch
        if member is not None:
            where.append("member = :member")
            args["member"] = to_checksum_address(member)
        if status is not None:
            if status not in STATUSES[1:]:
                raise InvalidInput(f"unknown record status '{status}'", hint="use one of " + ", ".join(STATUSES[1:]))
            where.append("status = :status")
            args["status"] = STATUSES.index(status)
        args.update(limit=-1 if limit is None else limit, offset=offset)
        rows = self._rows(f"SELECT * FROM meter_records WHERE {' AND '.join(where)} ORDER BY id "
                          "LIMIT :limit OFFSET :offset", args)
        return self._meter_records(rows)

    def _meter_records(self, rows: list[dict[str, Any]]) -> list[MeterRecord]:
        from ..metering.meter import DIMENSIONS, KINDS, STATUSES, describe_subject, evidence_cid

        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        attesters: dict[int, list[str]] = {}
        for record_id, attester in self._conn.execute(
                f"SELECT record_id, attester FROM meter_attestations WHERE record_id IN ({marks}) "
                "ORDER BY attested_at, rowid", ids):
            attesters.setdefault(record_id, []).append(attester)
        disputes = {r["record_id"]: r for r in self._rows(
            f"SELECT * FROM meter_disputes WHERE record_id IN ({marks})", tuple(ids))}
        out = []
        for r in rows:
            d = disputes.get(r["id"])
            out.append(MeterRecord(
                id=r["id"], epoch=r["epoch"], member=r["member"], kind=KINDS[r["kind"]],
                dimension=DIMENSIONS[r["dimension"]], subject=r["subject"],
                subject_label=describe_subject(bytes.fromhex(r["subject"][2:])), amount=int(r["amount"]),
                points=int(r["points"]), evidence_cid=evidence_cid(r["evidence_digest"]),
                status=STATUSES[r["status"]], attestations=r["attestations"], required=r["required"],  # type: ignore[arg-type]
                counted=bool(r["counted"]), attesters=attesters.get(r["id"], []),
                disputer=d["disputer"] if d else None,
                dispute_reason_cid=evidence_cid(d["reason_digest"]) if d else None,
                submitted_at=_utc(r["submitted_at"])))
        return out

    def _meter_segment(self, column: str, value: int) -> tuple[int, int, int] | None:
        row = self._conn.execute(f"SELECT first_epoch, start, length FROM meter_segments WHERE {column} <= ? "
                                 f"ORDER BY {column} DESC LIMIT 1", (value,)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def meter_current_epoch(self, now: int | None = None) -> int | None:
        """ContributionMeter.currentEpoch at `now` (default: the index's now); None before the
        meter's deployment is indexed."""
        when = self.now() if now is None else now
        segment = self._meter_segment("start", when)
        if segment is None:
            return None
        first, start, length = segment
        return first + (when - start) // length

    def meter_epoch_bounds(self, epoch: int) -> tuple[int, int, int] | None:
        """ContributionMeter.epochBounds: start, end (exclusive), and when the dispute window closes."""
        segment = self._meter_segment("first_epoch", epoch)
        row = self._conn.execute("SELECT value FROM meter_settings WHERE key = 'dispute_window'").fetchone()
        if segment is None or row is None:
            return None
        first, start, length = segment
        begin = start + (epoch - first) * length
        return begin, begin + length, begin + length + int(row[0])

    def meter_epoch(self, epoch: int, *, now: int | None = None) -> MeterEpoch:
        """An epoch's state, totals, and each member's points and shares (floor, basis points)."""
        from ..metering.meter import DIMENSIONS

        when = self.now() if now is None else now
        bounds = self.meter_epoch_bounds(epoch)
        if bounds is None:
            raise ConfigError("no ContributionMeter is indexed for this chain",
                              hint="deploy it with `fullchain chain deploy`")
        start, end, closes = bounds
        open_disputes = self._conn.execute("SELECT count(*) FROM meter_records WHERE epoch = ? AND status = 2",
                                           (epoch,)).fetchone()[0]
        finalized = self._conn.execute("SELECT 1 FROM meter_epochs WHERE epoch = ?", (epoch,)).fetchone() is not None
        state = ("finalized" if finalized else "open" if when < end else
                 "in dispute window" if when < closes else "awaiting finalization")
        by_member: dict[str, dict[str, int]] = {}
        totals = dict.fromkeys(DIMENSIONS, 0)
        for member, dimension, points in self._conn.execute(
                "SELECT p.member, p.dimension, p.points FROM meter_points p LEFT JOIN members m ON m.account = p.member "
                "WHERE p.epoch = ? ORDER BY coalesce(m.position, 1e9), p.member", (epoch,)):
            name = DIMENSIONS[dimension]
            by_member.setdefault(member, dict.fromkeys(DIMENSIONS, 0))[name] = int(points)
            totals[name] += int(points)
        members = [MemberPoints(member=m, points=p,
                                shares_bps={d: p[d] * 10_000 // totals[d] if totals[d] else 0 for d in DIMENSIONS})
                   for m, p in by_member.items() if any(p.values())]
        records = self._conn.execute("SELECT count(*) FROM meter_records WHERE epoch = ?", (epoch,)).fetchone()[0]
        return MeterEpoch(epoch=epoch, start=_utc(start), end=_utc(end), window_closes_at=_utc(closes),
                          state=state, open_disputes=open_disputes, totals=totals,  # type: ignore[arg-type]
                          members=members, records=records)

    # ---- benefit distribution ----

    def pool_figures(self, epoch: int, token: str) -> PoolFigures:
        """What BenefitDistributor's shares of (`epoch`, `token`) are computed from, as indexed:
        deposits, claims, sweep, the epoch's split, and the epoch's points (members by
        dimension, patients). Not judged here: fullchain.distribution applies the contract's rule."""
        from ..metering.meter import DIMENSIONS

        token = to_checksum_address(token)
        funds = [(r[0], int(r[1])) for r in self._conn.execute(
            "SELECT funder, amount FROM pool_funds WHERE epoch = ? AND token = ? ORDER BY first_at, funder",
            (epoch, token))]
        claims = {r[0]: int(r[1]) for r in self._conn.execute(
            "SELECT account, amount FROM pool_claims WHERE epoch = ? AND token = ? ORDER BY account", (epoch, token))}
        sweep = self._conn.execute("SELECT to_epoch, amount, swept_at FROM pool_sweeps WHERE epoch = ? AND token = ?",
                                   (epoch, token)).fetchone()
        fixed = self._conn.execute("SELECT split FROM pool_splits WHERE epoch = ?", (epoch,)).fetchone()
        settings = dict(self._conn.execute("SELECT key, value FROM pool_settings").fetchall())
        final = self._conn.execute("SELECT finalized_at FROM meter_epochs WHERE epoch = ?", (epoch,)).fetchone()
        points: dict[str, dict[str, int]] = {}
        totals = dict.fromkeys(DIMENSIONS, 0)
        for member, dimension, value in self._conn.execute(
                "SELECT p.member, p.dimension, p.points FROM meter_points p LEFT JOIN members m ON m.account = p.member "
                "WHERE p.epoch = ? ORDER BY coalesce(m.position, 1e9), p.member", (epoch,)):
            if int(value):
                points.setdefault(member, dict.fromkeys(DIMENSIONS, 0))[DIMENSIONS[dimension]] = int(value)
                totals[DIMENSIONS[dimension]] += int(value)
        patients = {r[0]: int(r[1]) for r in self._conn.execute(
            "SELECT patient, points FROM meter_patient_points WHERE epoch = ? ORDER BY patient", (epoch,)) if int(r[1])}
        return PoolFigures(
            epoch=epoch, token=token, funds=funds, claims=claims,
            sweep=(sweep[0], int(sweep[1]), sweep[2]) if sweep else None,
            fixed=fixed is not None, split=json.loads(fixed[0]) if fixed and fixed[0] else None,
            current_split=json.loads(settings["split"]) if "split" in settings else None,
            claim_window=int(settings["claim_window"]) if "claim_window" in settings else None,
            finalized_at=final[0] if final else None, points=points, totals=totals, patient_points=patients)

    def pool_tokens(self, epoch: int | None = None) -> list[str]:
        """The tokens an epoch's pool (or any pool) was ever funded with."""
        where, args = ("WHERE epoch = ?", (epoch,)) if epoch is not None else ("", ())
        return [r[0] for r in self._conn.execute(f"SELECT DISTINCT token FROM pool_funds {where} ORDER BY token", args)]

    def meter_final_epochs(self) -> list[tuple[int, int]]:
        """Every finalized epoch and the block time it was finalized at, in epoch order."""
        return [(r[0], r[1]) for r in self._conn.execute("SELECT epoch, finalized_at FROM meter_epochs ORDER BY epoch")]

    # ---- events ----

    def events(self, *, dataset_id: int | None = None, license_id: int | None = None, name: str | None = None,
               account: str | None = None, limit: int | None = None, offset: int = 0) -> list[IndexedEvent]:
        """Decoded events in chain order; `dataset_id` gives a dataset's whole history (its
        licenses' events included)."""
        where, args = ["1"], {}
        for column, value in (("dataset_id", dataset_id), ("license_id", license_id), ("name", name)):
            if value is not None:
                where.append(f"{column} = :{column}")
                args[column] = value
        if account is not None:
            where.append("account = :account")
            args["account"] = to_checksum_address(account)
        args.update(limit=-1 if limit is None else limit, offset=offset)
        rows = self._rows(f"SELECT * FROM events WHERE {' AND '.join(where)} "
                          "ORDER BY block, tx_index, log_index LIMIT :limit OFFSET :offset", args)
        return [IndexedEvent(block=r["block"], tx_index=r["tx_index"], log_index=r["log_index"], tx_hash=r["tx_hash"],
                             timestamp=_utc(r["timestamp"]), contract=r["contract"], address=r["address"],
                             name=r["name"], args=json.loads(r["args"]), dataset_id=r["dataset_id"],
                             license_id=r["license_id"]) for r in rows]

    def count_events(self) -> int:
        return self._conn.execute("SELECT count(*) FROM events").fetchone()[0]


def open_index(fc: Fullchain, *, lock_timeout: float = 120.0) -> EventIndex:
    """The index of `fc`'s chain under its FULLCHAIN_HOME, for the contracts `fc` uses. Call
    `.sync()` before reading. The embedded chain indexes up to its head; a node's chain up to
    the block the profile's `confirmations` call confirmed (head - confirmations + 1)."""
    from ..deployments import chain_identity

    chain_id, genesis = chain_identity(fc.w3)
    depth = 0 if fc.connection.kind == "embedded" else max(0, fc.profile.confirmations - 1)
    return EventIndex(_schema.index_path(fc.home, chain_id, genesis), w3=fc.w3, contracts=fc.contracts(),
                      depth=depth, store=lambda: fc.store, lock_timeout=lock_timeout)


def _unusable(path: Path, exc: Exception) -> ConfigError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return ConfigError(f"the event index {path} cannot be used ({reason})",
                       hint=f"check the permissions and free space of {path.parent}; deleting the file is safe, "
                            "it is rebuilt from the chain")


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _version(r: dict[str, Any]) -> DatasetVersion:
    return DatasetVersion(dataset_id=r["dataset_id"], version=r["version"], commitment=r["commitment"],
                          payload_cid=r["payload_cid"], metadata_cid=r["metadata_cid"], size=r["size"],
                          standard=r["standard"], tier=r["tier"], erased=bool(r["erased"]),
                          registered_at=_utc(r["registered_at"]))


def _license(r: dict[str, Any]) -> License:
    p = Purpose.from_chain(r["purpose"], bytes.fromhex(r["disease"][2:]))
    status = r["status"]
    return License(
        id=r["id"], dataset_id=r["dataset_id"], requester=r["requester"], status=r["label"], valid=bool(r["valid"]),
        purpose=p.code, purpose_label=p.label(), disease=p.disease, modifiers=modifier_codes(r["modifiers"]),
        term_seconds=r["term"], requested_at=_utc(r["requested_at"]),
        expires_at=_utc(r["expires_at"]) if r["expires_at"] else None,
        from_version=r["from_version"] if status in (GRANTED, 4, 5) else None,
        future_versions=bool(r["future_versions"]), justification_hash=r["justification_hash"],
        batched_access=bool(r["batched_access"]))


def _member(r: dict[str, Any]) -> Member:
    return Member(account=r["account"], roles=Role(r["roles"]).names(),
                  status=MemberStatus(r["status"]).name.lower(),  # type: ignore[arg-type]
                  joined_at=_utc(r["joined_at"]) if r["joined_at"] else None, metadata_hash=r["metadata_hash"],
                  hpke_public_key=r["hpke_public_key"] or "")


def _proposal(r: dict[str, Any], now: int) -> Proposal:
    from ..consortium import _decode_payload

    kind = ProposalKind(r["kind"])
    label = {PENDING: "pending", EXECUTED: "executed", CANCELLED: "cancelled"}[r["status"]]
    if r["status"] == PENDING and now > r["deadline"]:
        label = "expired"
    details = _decode_payload(kind, bytes.fromhex(r["payload"][2:])) if r["payload"] else {}
    return Proposal(id=r["id"], kind=kind.name.lower(), status=label, proposer=r["proposer"],  # type: ignore[arg-type]
                    created_at=_utc(r["created_at"]), deadline=_utc(r["deadline"]), approvals=r["approvals"],
                    details=details)
