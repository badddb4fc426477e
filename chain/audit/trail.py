"""The trail: every event about one dataset (or one account), from the event index, in chain order.

    from fullchain.audit.trail import dataset_trail, parse_bound
    trail = dataset_trail(view.index, 3, start=parse_bound("2026-11-01"), limit=100, names=view.local_names())
    for e in trail.events: e.block, e.timestamp, e.tx_hash, e.name, e.summary

A dataset's trail holds its registration, versions, erasures and key bundles, every license
request on it and what became of each (grants with their terms, rejections, revocations,
renewals, supersessions, key deliveries, recorded accesses), consent changes, delegations and the
contribution-meter records whose subject is one of its versions (the index files those under the
dataset already, from the subject's bytes) and the pool claims those records earned. A page is one indexed SQL query with LIMIT/OFFSET:
the first page of a trail of any length costs the same. Nothing here imports web3.
"""
from __future__ import annotations

import json
import re
import sqlite3
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ..errors import FullchainError, InvalidInput, UnknownDataset
from ..index import IndexedEvent

if TYPE_CHECKING:
    from ..index import EventIndex

# JSON numbers above 2**53 lose digits in most JSON readers: such integers go out as strings.
JSON_SAFE_BITS = 53
DEFAULT_PAGE = 100
_COLUMNS = ("block", "tx_index", "log_index", "tx_hash", "timestamp", "contract", "address", "name", "args",
            "dataset_id", "license_id", "account")
_ORDER = "ORDER BY block, tx_index, log_index"
_ACCESS_KINDS = {0: "fetch", 1: "compute", 2: "export"}
# Pool claims that cite a dataset: its contributor's (or its consenting patient's) claim of an
# epoch in which a meter record about the dataset counted points for them.
# What the owner of a dataset (or its delegate) did that the index files under the other party:
# grants, renewals and key deliveries under the licensee, a required consent under the patient.
_OWNER_ACTS = ("(name IN ('LicenseGranted', 'LicenseRenewed', 'KeyDelivered', 'LicenseSuperseded', "
               "'ConsentRequired') AND dataset_id IN (SELECT id FROM datasets WHERE owner = :subject))")
_CLAIMS = ("(name = 'Claimed' AND EXISTS (SELECT 1 FROM events p WHERE p.dataset_id = :subject "
           "AND p.name IN ('PointsCounted', 'PatientPointsCounted') AND p.account = events.account "
           "AND json_extract(p.args, '$.epoch') = json_extract(events.args, '$.epoch')))")
_LICENSE_STATUS = {1: "requested", 2: "granted", 3: "rejected", 4: "revoked", 5: "superseded"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bound(_Model):
    """One end of a trail's range: a block number or a moment (unix seconds, inclusive)."""

    block: int | None = None
    time: int | None = None


class TrailEvent(IndexedEvent):
    """One event of a trail: where (block, transaction, log) and when it happened, what it says
    (`args` as decoded from the log), whom it is about (`account`, named when a local profile
    holds it) and a one-line `summary` for people."""

    account: str | None
    account_name: str | None = None
    summary: str = ""

    @property
    def position(self) -> tuple[int, int, int]:
        return self.block, self.tx_index, self.log_index


class Trail(_Model):
    """A page of a trail: `events` are the `offset`-th and following of `total` in range."""

    subject: str
    dataset_id: int | None = None
    account: str | None = None
    total: int
    offset: int
    limit: int | None
    events: list[TrailEvent]


def parse_bound(text: str, *, end: bool = False) -> Bound:
    """`--from`/`--to` as people write them: a block number (`1234`), a date (`2026-11-01`: from
    its first second, or with `end` up to its last) or an ISO time (`2026-11-01T12:00`, UTC unless
    it says otherwise)."""
    value = text.strip()
    if re.fullmatch(r"[0-9]+", value):
        return Bound(block=int(value))
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=timezone.utc)
            return Bound(time=int(moment.timestamp()) - (1 if end else 0))
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidInput(f"'{text}' is neither a block number nor an ISO date",
                           hint="give a block number (1234), a date (2026-11-01) or a UTC time (2026-11-01T12:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return Bound(time=int(moment.timestamp()))


def dataset_trail(index: EventIndex, dataset_id: int, *, start: Bound | None = None, end: Bound | None = None,
                  limit: int | None = DEFAULT_PAGE, offset: int = 0, names: dict[str, str] | None = None) -> Trail:
    """A page of the trail of `dataset_id` (UnknownDataset if the index holds no such dataset).
    Events of its licenses belong to it even where the event itself does not name the dataset."""
    if index.dataset(dataset_id) is None:
        raise UnknownDataset(f"there is no dataset {dataset_id}", hint="list them with `fullchain dataset list`")
    where = f"(dataset_id = :subject OR license_id IN (SELECT id FROM licenses WHERE dataset_id = :subject) OR {_CLAIMS})"
    total, events = _page(index, where, {"subject": dataset_id}, start, end, limit, offset, names or {})
    return Trail(subject=f"dataset {dataset_id}", dataset_id=dataset_id, total=total, offset=offset, limit=limit,
                 events=events)


def member_trail(index: EventIndex, account: str, *, start: Bound | None = None, end: Bound | None = None,
                 limit: int | None = DEFAULT_PAGE, offset: int = 0, names: dict[str, str] | None = None) -> Trail:
    """A page of what `account` (checksummed) did or was the subject of: admissions, roles,
    proposals and votes, registrations, license requests, grants to it, revocations and
    rejections it made, accesses it recorded, consent it gave, meter records and attestations;
    and, on the datasets it owns, the grants, renewals, key deliveries and supersessions made
    (by it or a delegate) and the patients' consent it required."""
    names = names or {}
    total, events = _page(index, f"(account = :subject OR {_OWNER_ACTS})", {"subject": account}, start, end, limit,
                          offset, names)
    label = names.get(account)
    return Trail(subject=f"account {account}" + (f" ({label})" if label else ""), account=account, total=total,
                 offset=offset, limit=limit, events=events)


def trail_events(index: EventIndex, where: str, args: dict[str, Any],
                 names: dict[str, str] | None = None) -> list[TrailEvent]:
    """Every event matching an SQL condition on the `events` table, in chain order (for the
    checks, which need all of a few kinds; a trail for people is paged instead)."""
    rows = _conn(index).execute(f"SELECT {', '.join(_COLUMNS)} FROM events WHERE {where} {_ORDER}", args)
    return [_event(row, names or {}) for row in rows]


def trail_json(trail: Trail) -> dict[str, Any]:
    """The trail as JSON-ready data: integers that can exceed 2**53 (uint64 and wider in the
    contracts' ABIs, dataset and license ids) as decimal strings, times in ISO 8601 UTC."""
    return {"subject": trail.subject,
            "dataset_id": None if trail.dataset_id is None else str(trail.dataset_id),
            "account": trail.account, "total": trail.total, "offset": trail.offset, "limit": trail.limit,
            "events": [event_json(e) for e in trail.events]}


def event_json(e: TrailEvent) -> dict[str, Any]:
    wide = _wide_args().get((e.contract, e.name), frozenset())
    return {"block": e.block, "tx_index": e.tx_index, "log_index": e.log_index, "tx_hash": e.tx_hash,
            "timestamp": e.timestamp.isoformat(), "contract": e.contract, "address": e.address, "name": e.name,
            "args": {k: _stringify(v) if k in wide else v for k, v in e.args.items()},
            "dataset_id": None if e.dataset_id is None else str(e.dataset_id),
            "license_id": None if e.license_id is None else str(e.license_id),
            "account": e.account, "account_name": e.account_name, "summary": e.summary}


# ---- internals ----

def _conn(index: EventIndex) -> sqlite3.Connection:
    # EventIndex.events() has no range filter nor a count: the trail queries the same `events`
    # table (and its indexes) directly, read only.
    return index._conn  # noqa: SLF001


def _range(start: Bound | None, end: Bound | None, args: dict[str, Any]) -> str:
    where = []
    for bound, op, key in ((start, ">=", "from"), (end, "<=", "to")):
        if bound is None:
            continue
        if bound.block is not None:
            where.append(f"block {op} :{key}_block")
            args[f"{key}_block"] = bound.block
        if bound.time is not None:
            where.append(f"timestamp {op} :{key}_time")
            args[f"{key}_time"] = bound.time
    return "".join(f" AND {w}" for w in where)


def _page(index: EventIndex, where: str, args: dict[str, Any], start: Bound | None, end: Bound | None,
          limit: int | None, offset: int, names: dict[str, str]) -> tuple[int, list[TrailEvent]]:
    args = dict(args)
    where += _range(start, end, args)
    conn = _conn(index)
    total = conn.execute(f"SELECT count(*) FROM events WHERE {where}", args).fetchone()[0]
    rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM events WHERE {where} {_ORDER} "
                        "LIMIT :limit OFFSET :offset", {**args, "limit": -1 if limit is None else limit,
                                                         "offset": offset})
    return total, [_event(row, names) for row in rows]


def _event(row: tuple[Any, ...], names: dict[str, str]) -> TrailEvent:
    r = dict(zip(_COLUMNS, row))
    args = json.loads(r["args"])
    account = r["account"]
    return TrailEvent(block=r["block"], tx_index=r["tx_index"], log_index=r["log_index"], tx_hash=r["tx_hash"],
                      timestamp=datetime.fromtimestamp(r["timestamp"], tz=timezone.utc), contract=r["contract"],
                      address=r["address"], name=r["name"], args=args, dataset_id=r["dataset_id"],
                      license_id=r["license_id"], account=account,
                      account_name=names.get(account) if account else None,
                      summary=describe(r["name"], args, names))


def _stringify(value: Any) -> Any:
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@cache
def _wide_args() -> dict[tuple[str, str], frozenset[str]]:
    """(contract, event) -> the arguments whose ABI integer type is wider than JSON_SAFE_BITS;
    read from the shipped artifacts as JSON (fullchain.contracts would load web3)."""
    out: dict[tuple[str, str], frozenset[str]] = {}
    for entry in resources.files("fullchain").joinpath("artifacts").iterdir():
        if not entry.name.endswith(".json"):
            continue
        contract = entry.name.removesuffix(".json")
        for item in json.loads(entry.read_text(encoding="utf-8"))["abi"]:
            if item["type"] != "event":
                continue
            wide = set()
            for param in item["inputs"]:
                found = re.fullmatch(r"u?int([0-9]*)(\[[0-9]*\])*", param["type"])
                if found and int(found.group(1) or 256) > JSON_SAFE_BITS:
                    wide.add(param["name"])
            out[(contract, item["name"])] = frozenset(wide)
    return out


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def describe(name: str, a: dict[str, Any], names: dict[str, str]) -> str:
    """One line for people; local accounts by their profile names."""
    def who(key: str) -> str:
        value = a.get(key)
        return names.get(value, value) if isinstance(value, str) else "?"

    def purpose() -> str:
        from ..duo import Purpose

        try:
            return Purpose.from_chain(int(a["purpose"]), bytes.fromhex(str(a["disease"])[2:])).label()
        except (FullchainError, ValueError):  # not a purpose the SDK knows: the number as on chain
            return f"purpose {a['purpose']}"

    match name:
        case "DatasetRegistered":
            parents = a.get("derivedFrom") or []
            lineage = f", derived from {', '.join(str(p) for p in parents)}" if parents else ""
            return f"dataset {a['datasetId']} registered by {who('owner')}{lineage}"
        case "VersionRegistered":
            return f"version {a['version']} registered ({a['size']} bytes, commitment {a['commitment'][:18]}…)"
        case "VersionErased":
            return f"version {a['version']} erased"
        case "KeyBundlePublished":
            return f"key bundle of version {a['version']} published for {who('recipient')}"
        case "LicenseRequested":
            term = int(a["term"])
            length = f"{term // 86400} d" if term % 86400 == 0 else f"{term} s"
            return f"license {a['licenseId']} requested by {who('requester')}: {purpose()}, term {length}"
        case "LicenseGranted":
            future = " and later versions" if a["futureVersions"] else ""
            return (f"license {a['licenseId']} granted to {who('licensee')}: {purpose()}, version "
                    f"{a['fromVersion']}{future}, until {_when(int(a['expiresAt']))}")
        case "LicenseRejected":
            return f"license {a['licenseId']} rejected by {who('by')}"
        case "LicenseRevoked":
            return f"license {a['licenseId']} revoked by {who('by')}"
        case "LicenseSuperseded":
            return f"license {a['licenseId']} superseded by license {a['by']}"
        case "LicenseRenewed":
            return f"license {a['licenseId']} renewed until {_when(int(a['expiresAt']))}"
        case "KeyDelivered":
            return f"key of version {a['version']} delivered under license {a['licenseId']}"
        case "AccessRecorded":
            kind = _ACCESS_KINDS.get(a["kind"], f"kind {a['kind']}")
            return f"{who('licensee')} accessed version {a['version']} ({kind}) under license {a['licenseId']}"
        case "AccessBatchAnchored":
            kind = _ACCESS_KINDS.get(a["kind"], f"kind {a['kind']}")
            return (f"{who('licensee')} recorded a batch of accesses to version {a['version']} ({kind}) under license "
                    f"{a['licenseId']} (batch {a['batchId']})")
        case "BatchAnchored":
            what = {1: "access", 2: "compute job", 3: "metering evidence"}.get(a["kind"], f"kind {a['kind']}")
            return f"batch {a['batchId']} of {a['count']} {what} records anchored by {who('member')}"
        case "DelegateSet":
            return f"{who('delegate')} {'named' if a['allowed'] else 'removed as'} delegate"
        case "ConsentRequired":
            return f"consent of patient {who('patient')} required (given)"
        case "ConsentChanged":
            return f"patient {who('patient')} {'gave' if a['given'] else 'withdrew'} consent"
        case "MemberAdmitted":
            return f"{who('account')} admitted"
        case "MemberRemoved":
            return f"{who('account')} removed"
        case "MemberRolesChanged":
            return f"roles of {who('account')} changed"
        case "AccountAllowlisted" | "AccountDisallowed":
            return f"{who('account')} {'allowed on' if name == 'AccountAllowlisted' else 'removed from'} the account allowlist"
        case "ProposalCreated":
            return f"proposal {a['proposalId']} created by {who('proposer')}"
        case "ProposalApproved":
            return f"proposal {a['proposalId']} approved by {who('governor')}"
        case "ProposalExecuted":
            return f"proposal {a['proposalId']} executed by {who('executor')}"
        case "RecordSubmitted":
            return f"meter record {a['recordId']} submitted by {who('member')} (epoch {a['epoch']})"
        case "RecordAttested":
            return f"meter record {a['recordId']} attested by {who('attester')}"
        case "RecordDisputed":
            return f"meter record {a['recordId']} disputed by {who('disputer')}"
        case "DisputeResolved":
            return f"dispute on meter record {a['recordId']} {'upheld' if a['upheld'] else 'rejected'}"
        case "PointsCounted" | "PointsWithdrawn":
            verb = "counted" if name == "PointsCounted" else "withdrawn"
            return f"points of meter record {a['recordId']} {verb} for {who('member')}"
        case "PatientPointsCounted" | "PatientPointsWithdrawn":
            verb = "counted" if name == "PatientPointsCounted" else "withdrawn"
            return f"patient points of meter record {a['recordId']} {verb} for {who('patient')}"
        case "EpochFinalized":
            return f"epoch {a['epoch']} finalized"
        case "Funded":
            return f"pool of epoch {a['epoch']} funded with {a['amount']} base units by {who('funder')}"
        case "Claimed":
            return f"{who('account')} claimed {a['amount']} base units from the pool of epoch {a['epoch']}"
        case "Swept":
            return f"{a['amount']} base units swept from epoch {a['epoch']} to epoch {a['toEpoch']}"
        case "SplitChanged":
            return f"benefit split changed (operations share to {who('operations')})"
    return name
