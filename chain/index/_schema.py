"""The index file: where it lives, its tables, and opening it privately (0600 in a 0700 dir)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from ..home import private_dir

# Bump when a table changes: an index of another version is simply rebuilt (it is a cache).
SCHEMA_VERSION = 8

# Tables derived from the events ("state"); emptied and replayed from `events` on a rewind.
STATE_TABLES = ("datasets", "ancestors", "versions", "key_bundles", "licenses", "license_keys", "consents", "delegates",
                "members", "proposals", "approvals", "allowed_accounts", "allowed_nodes", "settings",
                "meter_records", "meter_attestations", "meter_disputes", "meter_points", "meter_epochs",
                "meter_segments", "meter_settings", "meter_patient_points", "pool_funds", "pool_claims",
                "pool_sweeps", "pool_splits", "pool_settings")

DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Blocks whose hash the index relies on: every block holding an indexed event, and the last
-- block of every synced range. A rewind looks for the newest one still on the chain.
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, tx_index INTEGER NOT NULL, log_index INTEGER NOT NULL,
    tx_hash TEXT NOT NULL, timestamp INTEGER NOT NULL,
    contract TEXT NOT NULL, address TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL,
    dataset_id INTEGER, license_id INTEGER, account TEXT,
    PRIMARY KEY (block, tx_index, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_dataset ON events (dataset_id, block, tx_index, log_index);
CREATE INDEX IF NOT EXISTS events_license ON events (license_id, block, tx_index, log_index);
CREATE INDEX IF NOT EXISTS events_name ON events (name, block);
-- A member's trail (fullchain audit member) is one indexed range per account.
CREATE INDEX IF NOT EXISTS events_account ON events (account, block, tx_index, log_index);

CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY, owner TEXT NOT NULL, derived_from TEXT NOT NULL,
    created_block INTEGER NOT NULL, created_at INTEGER NOT NULL,
    latest_version INTEGER NOT NULL DEFAULT 0, standard TEXT, tier TEXT, metadata_cid TEXT,
    erased_versions TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS datasets_owner ON datasets (owner, id);
CREATE INDEX IF NOT EXISTS datasets_standard ON datasets (standard, id);
CREATE INDEX IF NOT EXISTS datasets_tier ON datasets (tier, id);
-- Each dataset's lineage as DatasetRegistry.ancestors resolves it at registration: its parents
-- and their ancestors, each once. A license is bound by the consent of every one of them.
CREATE TABLE IF NOT EXISTS ancestors (dataset_id INTEGER NOT NULL, ancestor_id INTEGER NOT NULL,
                                      PRIMARY KEY (dataset_id, ancestor_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    dataset_id INTEGER NOT NULL, version INTEGER NOT NULL, commitment TEXT NOT NULL,
    payload_cid TEXT NOT NULL, metadata_cid TEXT NOT NULL, size INTEGER NOT NULL,
    standard TEXT NOT NULL, tier TEXT NOT NULL, erased INTEGER NOT NULL DEFAULT 0,
    registered_block INTEGER NOT NULL, registered_at INTEGER NOT NULL,
    -- The erasure's block time: storage is metered from registration to erasure.
    erased_at INTEGER,
    PRIMARY KEY (dataset_id, version)
);
CREATE INDEX IF NOT EXISTS versions_commitment ON versions (commitment);
CREATE TABLE IF NOT EXISTS key_bundles (
    dataset_id INTEGER NOT NULL, version INTEGER NOT NULL, recipient TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (dataset_id, version, recipient)
);
CREATE INDEX IF NOT EXISTS key_bundles_recipient ON key_bundles (recipient, dataset_id);
-- Metadata documents of public versions, read from the content store (never private ones).
CREATE TABLE IF NOT EXISTS public_metadata (
    metadata_cid TEXT PRIMARY KEY, title TEXT, standard TEXT, data_use TEXT NOT NULL, document TEXT NOT NULL
);
-- Public metadata the store did not have when asked: asked again only after a while, so that a
-- sync never waits on the same missing content (an IPFS node's timeout) twice in a row.
CREATE TABLE IF NOT EXISTS metadata_misses (metadata_cid TEXT PRIMARY KEY, tried_at INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS licenses (
    id INTEGER PRIMARY KEY, dataset_id INTEGER NOT NULL, requester TEXT NOT NULL, status INTEGER NOT NULL,
    purpose INTEGER NOT NULL, disease TEXT NOT NULL, modifiers INTEGER NOT NULL, term INTEGER NOT NULL,
    requested_at INTEGER NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0, from_version INTEGER,
    future_versions INTEGER NOT NULL DEFAULT 0, justification_hash TEXT NOT NULL,
    -- Whether the grant allows access records in Merkle batches (ProvenanceAnchor.anchorAccesses).
    batched_access INTEGER NOT NULL DEFAULT 0,
    -- The requester's admission number when it asked (as the contract records it): the license
    -- is valid only while that membership lasts.
    admission INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS licenses_dataset ON licenses (dataset_id, id);
CREATE INDEX IF NOT EXISTS licenses_requester ON licenses (requester, id);
CREATE TABLE IF NOT EXISTS license_keys (
    license_id INTEGER NOT NULL, version INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (license_id, version)
);
CREATE TABLE IF NOT EXISTS consents (
    dataset_id INTEGER PRIMARY KEY, patient TEXT NOT NULL, given INTEGER NOT NULL
);
-- The owner's and the delegate's admission numbers when the delegation was made: it is in
-- force only while both are still those active memberships (DataUseLicensing.isDelegate).
CREATE TABLE IF NOT EXISTS delegates (dataset_id INTEGER NOT NULL, delegate TEXT NOT NULL,
                                      owner_admission INTEGER NOT NULL, delegate_admission INTEGER NOT NULL,
                                      PRIMARY KEY (dataset_id, delegate));

CREATE TABLE IF NOT EXISTS members (
    account TEXT PRIMARY KEY, position INTEGER NOT NULL, roles INTEGER NOT NULL, status INTEGER NOT NULL,
    joined_at INTEGER, metadata_hash TEXT NOT NULL, hpke_public_key TEXT,
    -- Counted as the contract counts them: admissions (each MemberAdmitted) and governor terms
    -- (each admission or role change that makes the member a governor).
    admission INTEGER NOT NULL, governor_term INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals (
    id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, status INTEGER NOT NULL, proposer TEXT NOT NULL,
    created_at INTEGER NOT NULL, deadline INTEGER NOT NULL, payload TEXT
);
-- `term`: the approver's governor term when it approved. The approval counts only while the
-- approver is a governor in that same term.
CREATE TABLE IF NOT EXISTS approvals (proposal_id INTEGER NOT NULL, governor TEXT NOT NULL, term INTEGER NOT NULL,
                                      PRIMARY KEY (proposal_id, governor));
CREATE TABLE IF NOT EXISTS allowed_accounts (account TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS allowed_nodes (node_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, host TEXT NOT NULL,
                                          port INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL);

-- ContributionMeter. Amounts, points and weights are uint256: kept as decimal TEXT (SQLite
-- integers stop at 2**63) and added up in Python.
CREATE TABLE IF NOT EXISTS meter_records (
    id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, member TEXT NOT NULL, kind INTEGER NOT NULL,
    dimension INTEGER NOT NULL, subject TEXT NOT NULL, amount TEXT NOT NULL, points TEXT NOT NULL,
    evidence_digest TEXT NOT NULL, required INTEGER NOT NULL, attestations INTEGER NOT NULL DEFAULT 0,
    -- IContributionMeter.Status. `counted`: its points are in meter_points now.
    status INTEGER NOT NULL, counted INTEGER NOT NULL DEFAULT 0,
    submitted_block INTEGER NOT NULL, submitted_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS meter_records_epoch ON meter_records (epoch, id);
CREATE INDEX IF NOT EXISTS meter_records_member ON meter_records (member, id);
CREATE TABLE IF NOT EXISTS meter_attestations (record_id INTEGER NOT NULL, attester TEXT NOT NULL,
                                               attested_at INTEGER NOT NULL, PRIMARY KEY (record_id, attester));
-- A record is disputed at most once (an upheld record cannot be disputed again).
CREATE TABLE IF NOT EXISTS meter_disputes (record_id INTEGER PRIMARY KEY, disputer TEXT NOT NULL,
                                           reason_digest TEXT NOT NULL, disputed_at INTEGER NOT NULL,
                                           upheld INTEGER);
CREATE TABLE IF NOT EXISTS meter_points (epoch INTEGER NOT NULL, member TEXT NOT NULL, dimension INTEGER NOT NULL,
                                         points TEXT NOT NULL, PRIMARY KEY (epoch, member, dimension));
CREATE TABLE IF NOT EXISTS meter_epochs (epoch INTEGER PRIMARY KEY, finalized_at INTEGER NOT NULL);
-- Epoch lengths as the contract keeps them: from `first_epoch` on, epochs of `length` s from `start`.
CREATE TABLE IF NOT EXISTS meter_segments (first_epoch INTEGER PRIMARY KEY, start INTEGER NOT NULL,
                                           length INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meter_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Data points that also accrued to a dataset's consenting patient (PatientPointsCounted less
-- PatientPointsWithdrawn), as ContributionMeter.patientPoints.
CREATE TABLE IF NOT EXISTS meter_patient_points (epoch INTEGER NOT NULL, patient TEXT NOT NULL, points TEXT NOT NULL,
                                                 PRIMARY KEY (epoch, patient));

-- BenefitDistributor: what each funder put into an epoch's pool of a token (sweeps into an
-- epoch are fundings by the distributor itself), what each account claimed, and the sweeps.
CREATE TABLE IF NOT EXISTS pool_funds (epoch INTEGER NOT NULL, token TEXT NOT NULL, funder TEXT NOT NULL,
                                       amount TEXT NOT NULL, first_at INTEGER NOT NULL,
                                       PRIMARY KEY (epoch, token, funder));
CREATE TABLE IF NOT EXISTS pool_claims (epoch INTEGER NOT NULL, token TEXT NOT NULL, account TEXT NOT NULL,
                                        amount TEXT NOT NULL, PRIMARY KEY (epoch, token, account));
CREATE TABLE IF NOT EXISTS pool_sweeps (epoch INTEGER NOT NULL, token TEXT NOT NULL, to_epoch INTEGER NOT NULL,
                                        amount TEXT NOT NULL, swept_at INTEGER NOT NULL, PRIMARY KEY (epoch, token));
-- The split an epoch's pool was fixed with at its first funding (SplitFixed): the split in
-- force then, as JSON (NULL if no SplitChanged came before it).
CREATE TABLE IF NOT EXISTS pool_splits (epoch INTEGER PRIMARY KEY, split TEXT, fixed_at INTEGER NOT NULL);
-- 'split' (JSON of the current split) and 'claim_window' (seconds).
CREATE TABLE IF NOT EXISTS pool_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def index_dir(home: Path) -> Path:
    return home / "index"


def index_path(home: Path, chain_id: int, genesis_hash: str) -> Path:
    """One index per chain, named like the deployment records (chain id, genesis hash prefix)."""
    return index_dir(home) / f"{chain_id}-{genesis_hash.removeprefix('0x')[:16]}.sqlite"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the index at `path`: only its owner can read it; WAL so that
    readers in other processes never block a sync, nor see a half-applied range."""
    private_dir(path.parent)
    # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
    # Only when it does not exist yet: closing any descriptor of a file drops every POSIX lock
    # this process holds on it, so reopening an open database would silently release the locks
    # of its other connections (SQLite's documented pitfall): stale reads, then corruption.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    conn = sqlite3.connect(path, isolation_level=None, timeout=60.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def statements() -> list[str]:
    """The DDL as single statements, to run inside one transaction."""
    return [s.strip() for s in DDL.split(";") if s.strip()]


def drop_all(conn: sqlite3.Connection) -> None:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def get_meta(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else default


def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))
