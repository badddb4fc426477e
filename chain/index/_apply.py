"""From events to current state: one handler per event, applied in chain order.

Everything here is derived from the events alone; no handler reads the chain. A handler also
returns the dataset, license and account the event is about, so that a dataset's history is one
indexed query (license events that do not name their dataset inherit it from the license).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from ..metadata import STANDARD_CODES, TIER_CODES
from ..storage import cid as cids

_STANDARDS = {v: k for k, v in STANDARD_CODES.items()}
_TIERS = {v: k for k, v in TIER_CODES.items()}

# License status codes, as in IDataUseLicensing.Status.
REQUESTED, GRANTED, REJECTED, REVOKED, SUPERSEDED = 1, 2, 3, 4, 5
# Member status (IConsortium.MemberStatus) and proposal status (IConsortium.ProposalStatus).
ACTIVE, REMOVED = 1, 2
ROLE_GOVERNOR = 1 << 6
PENDING, EXECUTED, CANCELLED = 1, 2, 3

Subject = tuple[int | None, int | None, str | None]  # dataset id, license id, account
Handler = Callable[[sqlite3.Connection, dict[str, Any], int, int], Subject]
HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


def apply_event(conn: sqlite3.Connection, name: str, args: dict[str, Any], block: int, timestamp: int) -> Subject:
    handler = HANDLERS.get(name)
    if handler is None:  # an event the views do not need: kept in `events` only
        return args.get("datasetId"), args.get("licenseId"), args.get("account")
    return handler(conn, args, block, timestamp)


def _cid(codec: int, digest_hex: str) -> str:
    return cids.to_str(cids.make_cid(codec, bytes.fromhex(digest_hex[2:])))


# ---- DatasetRegistry ----

@handles("DatasetRegistered")
def _dataset_registered(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO datasets (id, owner, derived_from, created_block, created_at) "
                 "VALUES (?, ?, ?, ?, ?)", (a["datasetId"], a["owner"], json.dumps(a["derivedFrom"]), block, ts))
    # As DatasetRegistry._lineage: the parents and their (already closed) ancestors.
    for parent in a["derivedFrom"]:
        conn.execute("INSERT OR IGNORE INTO ancestors SELECT ?, ? UNION ALL "
                     "SELECT ?, ancestor_id FROM ancestors WHERE dataset_id = ?",
                     (a["datasetId"], parent, a["datasetId"], parent))
    return a["datasetId"], None, a["owner"]


@handles("VersionRegistered")
def _version_registered(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    standard = _STANDARDS.get(a["standard"], "other")
    tier = _TIERS.get(a["tier"], "restricted")
    metadata_cid = _cid(a["metadataCodec"], a["metadataDigest"])
    conn.execute(
        "INSERT OR REPLACE INTO versions (dataset_id, version, commitment, payload_cid, metadata_cid, size, "
        "standard, tier, registered_block, registered_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (a["datasetId"], a["version"], a["commitment"], _cid(a["payloadCodec"], a["payloadDigest"]),
         metadata_cid, a["size"], standard, tier, block, ts))
    conn.execute("UPDATE datasets SET latest_version = ?, standard = ?, tier = ?, metadata_cid = ? "
                 "WHERE id = ? AND latest_version < ?",
                 (a["version"], standard, tier, metadata_cid, a["datasetId"], a["version"]))
    return a["datasetId"], None, None


@handles("VersionErased")
def _version_erased(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE versions SET erased = 1, erased_at = ? WHERE dataset_id = ? AND version = ?",
                 (ts, a["datasetId"], a["version"]))
    erased = [r[0] for r in conn.execute("SELECT version FROM versions WHERE dataset_id = ? AND erased = 1 "
                                         "ORDER BY version", (a["datasetId"],))]
    conn.execute("UPDATE datasets SET erased_versions = ? WHERE id = ?", (json.dumps(erased), a["datasetId"]))
    return a["datasetId"], None, None


@handles("KeyBundlePublished")
def _key_bundle(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO key_bundles VALUES (?, ?, ?, ?)",
                 (a["datasetId"], a["version"], a["recipient"], a["bundleDigest"]))
    return a["datasetId"], None, a["recipient"]


# ---- DataUseLicensing ----

def _license_dataset(conn: sqlite3.Connection, license_id: int) -> int | None:
    row = conn.execute("SELECT dataset_id FROM licenses WHERE id = ?", (license_id,)).fetchone()
    return row[0] if row else None


@handles("LicenseRequested")
def _license_requested(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    # The contract records the requester's admission at request (only an active member may ask);
    # the events before this one, applied in chain order, give the same number.
    row = conn.execute("SELECT admission FROM members WHERE account = ? AND status = ?",
                       (a["requester"], ACTIVE)).fetchone()
    conn.execute(
        "INSERT OR REPLACE INTO licenses (id, dataset_id, requester, status, purpose, disease, modifiers, term, "
        "requested_at, justification_hash, admission) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (a["licenseId"], a["datasetId"], a["requester"], REQUESTED, a["purpose"], a["disease"], a["modifiers"],
         a["term"], ts, a["justificationHash"], row[0] if row else 0))
    return a["datasetId"], a["licenseId"], a["requester"]


@handles("LicenseGranted")
def _license_granted(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE licenses SET status = ?, purpose = ?, disease = ?, modifiers = ?, expires_at = ?, "
                 "from_version = ?, future_versions = ?, batched_access = ? WHERE id = ?",
                 (GRANTED, a["purpose"], a["disease"], a["modifiers"], a["expiresAt"], a["fromVersion"],
                  int(a["futureVersions"]), int(a["batchedAccess"]), a["licenseId"]))
    return a["datasetId"], a["licenseId"], a["licensee"]


def _set_status(status: int) -> Handler:
    def handler(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
        conn.execute("UPDATE licenses SET status = ? WHERE id = ?", (status, a["licenseId"]))
        by = a.get("by")
        return _license_dataset(conn, a["licenseId"]), a["licenseId"], by if isinstance(by, str) else None
    return handler


handles("LicenseRejected")(_set_status(REJECTED))
handles("LicenseRevoked")(_set_status(REVOKED))
handles("LicenseSuperseded")(_set_status(SUPERSEDED))


@handles("LicenseRenewed")
def _license_renewed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE licenses SET expires_at = ? WHERE id = ?", (a["expiresAt"], a["licenseId"]))
    return _license_dataset(conn, a["licenseId"]), a["licenseId"], None


@handles("KeyDelivered")
def _key_delivered(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO license_keys VALUES (?, ?, ?)", (a["licenseId"], a["version"], a["bundleDigest"]))
    return _license_dataset(conn, a["licenseId"]), a["licenseId"], None


@handles("AccessRecorded")
def _access_recorded(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    return a["datasetId"], a["licenseId"], a["licensee"]


# ---- ProvenanceAnchor ----

@handles("BatchAnchored")
def _batch_anchored(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    return None, None, a["member"]


@handles("AccessBatchAnchored")
def _access_batch_anchored(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    # Filed like an AccessRecorded: in the dataset's and the license's trail, and the licensee's.
    return a["datasetId"], a["licenseId"], a["licensee"]


@handles("DelegateSet")
def _delegate_set(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    if a["allowed"]:
        # Both must be active members for setDelegate to succeed; a new delegation replaces the old.
        conn.execute("INSERT OR REPLACE INTO delegates SELECT d.id, ?, mo.admission, md.admission "
                     "FROM datasets d JOIN members mo ON mo.account = d.owner JOIN members md ON md.account = ? "
                     "WHERE d.id = ?", (a["delegate"], a["delegate"], a["datasetId"]))
    else:
        conn.execute("DELETE FROM delegates WHERE dataset_id = ? AND delegate = ?", (a["datasetId"], a["delegate"]))
    return a["datasetId"], None, a["delegate"]


@handles("ConsentRequired")
def _consent_required(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO consents VALUES (?, ?, 1)", (a["datasetId"], a["patient"]))
    return a["datasetId"], None, a["patient"]


@handles("ConsentChanged")
def _consent_changed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO consents VALUES (?, ?, ?)", (a["datasetId"], a["patient"], int(a["given"])))
    return a["datasetId"], None, a["patient"]


# ---- Consortium ----

@handles("MemberAdmitted")
def _member_admitted(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    key = a.get("hpkePublicKey")
    term = 1 if a["roles"] & ROLE_GOVERNOR else 0
    row = conn.execute("SELECT position FROM members WHERE account = ?", (a["account"],)).fetchone()
    if row is None:
        position = conn.execute("SELECT count(*) FROM members").fetchone()[0]
        conn.execute("INSERT INTO members (account, position, roles, status, joined_at, metadata_hash, "
                     "hpke_public_key, admission, governor_term) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
                     (a["account"], position, a["roles"], ACTIVE, ts, a["metadataHash"], key, term))
    else:
        conn.execute("UPDATE members SET roles = ?, status = ?, joined_at = ?, metadata_hash = ?, "
                     "hpke_public_key = ?, admission = admission + 1, governor_term = governor_term + ? "
                     "WHERE account = ?",
                     (a["roles"], ACTIVE, ts, a["metadataHash"], key, term, a["account"]))
    return None, None, a["account"]


@handles("MemberRemoved")
def _member_removed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE members SET status = ?, roles = 0 WHERE account = ?", (REMOVED, a["account"]))
    return None, None, a["account"]


@handles("MemberRolesChanged")
def _member_roles(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    promoted = not a["oldRoles"] & ROLE_GOVERNOR and a["newRoles"] & ROLE_GOVERNOR
    conn.execute("UPDATE members SET roles = ?, governor_term = governor_term + ? WHERE account = ?",
                 (a["newRoles"], 1 if promoted else 0, a["account"]))
    return None, None, a["account"]


@handles("MemberKeyRotated")
def _member_key(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE members SET hpke_public_key = ? WHERE account = ?", (a["hpkePublicKey"], a["account"]))
    return None, None, a["account"]


@handles("MemberMetadataUpdated")
def _member_metadata(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE members SET metadata_hash = ? WHERE account = ?", (a["metadataHash"], a["account"]))
    return None, None, a["account"]


@handles("ThresholdChanged")
def _threshold(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO settings VALUES ('threshold', ?)", (a["newThreshold"],))
    return None, None, None


@handles("AccountAllowlisted")
def _account_allowed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR IGNORE INTO allowed_accounts VALUES (?)", (a["account"],))
    return None, None, a["account"]


@handles("AccountDisallowed")
def _account_disallowed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("DELETE FROM allowed_accounts WHERE account = ?", (a["account"],))
    return None, None, a["account"]


@handles("NodeAllowlisted")
def _node_allowed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO allowed_nodes VALUES (?, ?, ?, ?)",
                 (a["nodeId"], a["publicKey"], a["host"], a["port"]))
    return None, None, None


@handles("NodeDisallowed")
def _node_disallowed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("DELETE FROM allowed_nodes WHERE node_id = ?", (a["nodeId"],))
    return None, None, None


@handles("ProposalCreated")
def _proposal_created(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO proposals (id, kind, status, proposer, created_at, deadline, payload) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (a["proposalId"], a["kind"], PENDING, a["proposer"], ts, a["deadline"], a.get("payload")))
    return None, None, a["proposer"]


@handles("ProposalApproved")
def _proposal_approved(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    # An approval again in a later term replaces the stale one, in place (the contract lists
    # each approver once).
    conn.execute("INSERT INTO approvals (proposal_id, governor, term) "
                 "SELECT ?, account, governor_term FROM members WHERE account = ? "
                 "ON CONFLICT (proposal_id, governor) DO UPDATE SET term = excluded.term",
                 (a["proposalId"], a["governor"]))
    return None, None, a["governor"]


@handles("ProposalExecuted")
def _proposal_executed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE proposals SET status = ? WHERE id = ?", (EXECUTED, a["proposalId"]))
    return None, None, a["executor"]


@handles("ProposalCancelled")
def _proposal_cancelled(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE proposals SET status = ? WHERE id = ?", (CANCELLED, a["proposalId"]))
    return None, None, None


# ---- ContributionMeter ----

# IContributionMeter.Status
SUBMITTED, DISPUTED, UPHELD, REJECTED = 1, 2, 3, 4
_DATASET_SUBJECT = "0x01" + "00" * 15


def _dataset_of_subject(subject: str) -> int | None:
    # A dataset version subject (see fullchain.metering.meter): its record is part of the
    # dataset's history.
    return int(subject[34:50], 16) if subject.startswith(_DATASET_SUBJECT) else None


def _add_points(conn: sqlite3.Connection, a: dict[str, Any], sign: int) -> None:
    row = conn.execute("SELECT points FROM meter_points WHERE epoch = ? AND member = ? AND dimension = ?",
                       (a["epoch"], a["member"], a["dimension"])).fetchone()
    total = (int(row[0]) if row else 0) + sign * int(a["points"])
    conn.execute("INSERT OR REPLACE INTO meter_points VALUES (?, ?, ?, ?)",
                 (a["epoch"], a["member"], a["dimension"], str(total)))
    conn.execute("UPDATE meter_records SET counted = ? WHERE id = ?", (1 if sign > 0 else 0, a["recordId"]))


def _record_dataset(conn: sqlite3.Connection, record_id: int) -> int | None:
    row = conn.execute("SELECT subject FROM meter_records WHERE id = ?", (record_id,)).fetchone()
    return _dataset_of_subject(row[0]) if row else None


@handles("RecordSubmitted")
def _record_submitted(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_records (id, epoch, member, kind, dimension, subject, amount, points, "
                 "evidence_digest, required, status, submitted_block, submitted_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (a["recordId"], a["epoch"], a["member"], a["kind"], a["dimension"], a["subject"], str(a["amount"]),
                  str(a["points"]), a["evidenceDigest"], a["required"], SUBMITTED, block, ts))
    return _dataset_of_subject(a["subject"]), None, a["member"]


@handles("RecordAttested")
def _record_attested(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_attestations VALUES (?, ?, ?)", (a["recordId"], a["attester"], ts))
    conn.execute("UPDATE meter_records SET attestations = ? WHERE id = ?", (a["attestations"], a["recordId"]))
    return _record_dataset(conn, a["recordId"]), None, a["attester"]


@handles("RecordDisputed")
def _record_disputed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_disputes VALUES (?, ?, ?, ?, NULL)",
                 (a["recordId"], a["disputer"], a["reasonDigest"], ts))
    conn.execute("UPDATE meter_records SET status = ? WHERE id = ?", (DISPUTED, a["recordId"]))
    return _record_dataset(conn, a["recordId"]), None, a["disputer"]


@handles("DisputeResolved")
def _dispute_resolved(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("UPDATE meter_disputes SET upheld = ? WHERE record_id = ?", (int(a["upheld"]), a["recordId"]))
    conn.execute("UPDATE meter_records SET status = ? WHERE id = ?", (UPHELD if a["upheld"] else REJECTED, a["recordId"]))
    return _record_dataset(conn, a["recordId"]), None, None


@handles("PointsCounted")
def _points_counted(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    _add_points(conn, a, +1)
    return _record_dataset(conn, a["recordId"]), None, a["member"]


@handles("PointsWithdrawn")
def _points_withdrawn(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    _add_points(conn, a, -1)
    return _record_dataset(conn, a["recordId"]), None, a["member"]


@handles("EpochFinalized")
def _epoch_finalized(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_epochs VALUES (?, ?)", (a["epoch"], ts))
    return None, None, None


@handles("EpochLengthChanged")
def _epoch_length(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    # A second change before the next epoch replaces the first, as in the contract.
    conn.execute("INSERT OR REPLACE INTO meter_segments VALUES (?, ?, ?)", (a["fromEpoch"], a["startsAt"], a["newLength"]))
    return None, None, None


@handles("DisputeWindowChanged")
def _dispute_window(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_settings VALUES ('dispute_window', ?)", (str(a["newWindow"]),))
    return None, None, None


@handles("AttestationsRequiredChanged")
def _attestations_required(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_settings VALUES ('attestations_required', ?)", (str(a["newRequired"]),))
    return None, None, None


@handles("WeightChanged")
def _weight(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO meter_settings VALUES (?, ?)", (f"weight:{a['kind']}", str(a["newWeight"])))
    return None, None, None


def _add_text(conn: sqlite3.Connection, sql_get: str, sql_put: str, key: tuple[Any, ...], delta: int,
              *extra: Any) -> None:
    # uint256 sums kept as decimal text (SQLite integers stop at 2**63).
    row = conn.execute(sql_get, key).fetchone()
    conn.execute(sql_put, (*key, str((int(row[0]) if row else 0) + delta), *extra))


def _patient_points(conn: sqlite3.Connection, a: dict[str, Any], sign: int) -> None:
    _add_text(conn, "SELECT points FROM meter_patient_points WHERE epoch = ? AND patient = ?",
              "INSERT OR REPLACE INTO meter_patient_points VALUES (?, ?, ?)", (a["epoch"], a["patient"]),
              sign * int(a["points"]))


@handles("PatientPointsCounted")
def _patient_points_counted(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    _patient_points(conn, a, +1)
    return _record_dataset(conn, a["recordId"]), None, a["patient"]


@handles("PatientPointsWithdrawn")
def _patient_points_withdrawn(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    _patient_points(conn, a, -1)
    return _record_dataset(conn, a["recordId"]), None, a["patient"]


# ---- BenefitDistributor ----

# IBenefitDistributor.Split, in declaration order.
SPLIT_FIELDS = ("operations", "operationsBps", "patientsBps", "dataBps", "algorithmBps", "computeBps")


@handles("SplitChanged")
def _split_changed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO pool_settings VALUES ('split', ?)",
                 (json.dumps({k: a[k] for k in SPLIT_FIELDS}),))
    return None, None, a["operations"]


@handles("SplitFixed")
def _split_fixed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    row = conn.execute("SELECT value FROM pool_settings WHERE key = 'split'").fetchone()
    conn.execute("INSERT OR REPLACE INTO pool_splits VALUES (?, ?, ?)", (a["epoch"], row[0] if row else None, ts))
    return None, None, None


@handles("ClaimWindowChanged")
def _claim_window(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO pool_settings VALUES ('claim_window', ?)", (str(a["window"]),))
    return None, None, None


@handles("Funded")
def _funded(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    _add_text(conn, "SELECT amount FROM pool_funds WHERE epoch = ? AND token = ? AND funder = ?",
              "INSERT INTO pool_funds VALUES (?, ?, ?, ?, ?) ON CONFLICT (epoch, token, funder) "
              "DO UPDATE SET amount = excluded.amount",
              (a["epoch"], a["token"], a["funder"]), int(a["amount"]), ts)
    return None, None, a["funder"]


@handles("Claimed")
def _claimed(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    _add_text(conn, "SELECT amount FROM pool_claims WHERE epoch = ? AND token = ? AND account = ?",
              "INSERT OR REPLACE INTO pool_claims VALUES (?, ?, ?, ?)",
              (a["epoch"], a["token"], a["account"]), int(a["amount"]))
    return None, None, a["account"]


@handles("Swept")
def _swept(conn: sqlite3.Connection, a: dict[str, Any], block: int, ts: int) -> Subject:
    conn.execute("INSERT OR REPLACE INTO pool_sweeps VALUES (?, ?, ?, ?, ?)",
                 (a["epoch"], a["token"], a["toEpoch"], str(a["amount"]), ts))
    return None, None, None
