"""License at time of use: each recorded access re-checked against the state its license was in
when the access was recorded, derived from the events alone.

    from fullchain.audit.check import check_dataset, check_events
    report = check_dataset(view.index, 3)          # gathers the events from the index
    report = check_events(events, 3)               # any event list: a bundle's, an edited one
    report.ok, [(v.access.block, v.violations) for v in report.uncovered]

The events are replayed in chain order (block, transaction, log), so an access is judged on
exactly the events before it, those of its own block included. The rules are those of
DataUseLicensing.recordAccess, which refuses an access unless:

- `unknown-license`: the license was requested (the trail holds its LicenseRequested);
- `wrong-dataset` / `not-licensee`: the access names the license's dataset and its requester;
- `invalid-kind`: the access kind is one the contract knows (0..2);
- `consent-withdrawn`: no required consent is withdrawn, on the dataset or any ancestor of its
  lineage (DatasetRegistered.derivedFrom, closed as DatasetRegistry.ancestors closes it);
- `not-granted` / `rejected` / `revoked` / `superseded`: the license is granted;
- `expired`: the block time is not past its expiry (the grant's, or the last renewal's);
- `not-member` / `membership-ended`: the licensee is an active member, in the same admission it
  asked in (a removal ends a license for good, re-admission revives nothing);
- `version-not-covered`: the version is the granted one, or a later registered one when the
  grant covers future versions;
- `version-erased`: the version was not erased.

An AccessBatchAnchored (a batch of accesses the ProvenanceAnchor took through
DataUseLicensing.checkAccess) is judged by the same rules at its block, plus
`batch-not-allowed`: the grant in effect set `batchedAccess`.

For every access the contract accepted, the trail from the index covers it; an access reported
here means the events given are not the chain's (edited, reordered, some left out) or the
contract rules changed.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ..errors import UnknownDataset
from .trail import TrailEvent, event_json, trail_events

if TYPE_CHECKING:
    from ..index import EventIndex

MAX_ACCESS_KIND = 2  # DataUseLicensing._MAX_ACCESS_KIND
RULES = ("unknown-license", "wrong-dataset", "not-licensee", "invalid-kind", "consent-withdrawn", "not-granted",
         "rejected", "revoked", "superseded", "expired", "not-member", "membership-ended", "version-not-covered",
         "version-erased", "batch-not-allowed")
_STATUS = {1: "requested", 2: "granted", 3: "rejected", 4: "revoked", 5: "superseded"}
_MEMBERSHIP = ("MemberAdmitted", "MemberRemoved")
_STATE_EVENTS = ("DatasetRegistered", "VersionRegistered", "VersionErased", "LicenseRequested", "LicenseGranted",
                 "LicenseRejected", "LicenseRevoked", "LicenseSuperseded", "LicenseRenewed", "ConsentRequired",
                 "ConsentChanged", "AccessRecorded", "AccessBatchAnchored")
_ACCESSES = ("AccessRecorded", "AccessBatchAnchored")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Violation(_Model):
    rule: str
    detail: str


class AccessVerdict(_Model):
    """One recorded access and what the trail says of its license at that point."""

    access: TrailEvent
    license_id: int
    licensee: str
    version: int
    license_status: str  # as derived at the access: requested, granted, ..., or "unknown"
    expires_at: datetime | None
    violations: list[Violation]

    @property
    def covered(self) -> bool:
        return not self.violations


class CheckReport(_Model):
    dataset_id: int
    accesses: int
    verdicts: list[AccessVerdict]

    @property
    def uncovered(self) -> list[AccessVerdict]:
        return [v for v in self.verdicts if not v.covered]

    @property
    def ok(self) -> bool:
        return not self.uncovered


@dataclass
class _License:
    dataset_id: int
    requester: str
    admission: int
    status: int = 1
    expires_at: int = 0
    from_version: int = 0
    future_versions: bool = False
    batched_access: bool = False


@dataclass
class _State:
    lineage: dict[int, list[int]] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)
    erased: set[tuple[int, int]] = field(default_factory=set)
    licenses: dict[int, _License] = field(default_factory=dict)
    consents: dict[int, bool] = field(default_factory=dict)  # dataset -> given (only where required)
    admissions: dict[str, int] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)

    def apply(self, e: TrailEvent) -> None:
        a = e.args
        match e.name:
            case "DatasetRegistered":
                # DatasetRegistry._lineage: the parents, then each parent's ancestors, each once.
                lineage: list[int] = []
                for parent in a["derivedFrom"]:
                    for d in (parent, *self.lineage.get(parent, [])):
                        if d not in lineage:
                            lineage.append(d)
                self.lineage[a["datasetId"]] = lineage
            case "VersionRegistered":
                self.versions[a["datasetId"]] = max(self.versions.get(a["datasetId"], 0), a["version"])
            case "VersionErased":
                self.erased.add((a["datasetId"], a["version"]))
            case "LicenseRequested":
                requester = a["requester"]
                admission = self.admissions.get(requester, 0) if requester in self.active else 0
                self.licenses[a["licenseId"]] = _License(a["datasetId"], requester, admission)
            case "LicenseGranted":
                lic = self.licenses.get(a["licenseId"])
                if lic is not None:
                    lic.status, lic.expires_at = 2, int(a["expiresAt"])
                    lic.from_version, lic.future_versions = a["fromVersion"], bool(a["futureVersions"])
                    lic.batched_access = bool(a.get("batchedAccess", False))
            case "LicenseRejected" | "LicenseRevoked" | "LicenseSuperseded":
                lic = self.licenses.get(a["licenseId"])
                if lic is not None:
                    lic.status = {"LicenseRejected": 3, "LicenseRevoked": 4, "LicenseSuperseded": 5}[e.name]
            case "LicenseRenewed":
                lic = self.licenses.get(a["licenseId"])
                if lic is not None:
                    lic.expires_at = int(a["expiresAt"])
            case "ConsentRequired":
                self.consents[a["datasetId"]] = True
            case "ConsentChanged":
                self.consents[a["datasetId"]] = bool(a["given"])
            case "MemberAdmitted":
                self.admissions[a["account"]] = self.admissions.get(a["account"], 0) + 1
                self.active.add(a["account"])
            case "MemberRemoved":
                self.active.discard(a["account"])

    def judge(self, e: TrailEvent) -> AccessVerdict:
        a = e.args
        license_id, dataset_id, licensee, version = a["licenseId"], a["datasetId"], a["licensee"], a["version"]
        out: list[Violation] = []

        def broken(rule: str, detail: str) -> None:
            out.append(Violation(rule=rule, detail=detail))

        lic = self.licenses.get(license_id)
        if lic is None:
            broken("unknown-license", f"no request for license {license_id} precedes the access")
            return AccessVerdict(access=e, license_id=license_id, licensee=licensee, version=version,
                                 license_status="unknown", expires_at=None, violations=out)
        if lic.dataset_id != dataset_id:
            broken("wrong-dataset", f"license {license_id} is for dataset {lic.dataset_id}, not {dataset_id}")
        if lic.requester != licensee:
            broken("not-licensee", f"license {license_id} was requested by {lic.requester}, not {licensee}")
        if a.get("kind", 0) > MAX_ACCESS_KIND:
            broken("invalid-kind", f"access kind {a['kind']} is not one of 0..{MAX_ACCESS_KIND}")
        for d in (lic.dataset_id, *self.lineage.get(lic.dataset_id, [])):
            if self.consents.get(d) is False:
                which = "" if d == lic.dataset_id else f" (an ancestor of dataset {lic.dataset_id})"
                broken("consent-withdrawn", f"the patient had withdrawn consent for dataset {d}{which}")
                break
        if lic.status != 2:
            rule = {1: "not-granted", 3: "rejected", 4: "revoked", 5: "superseded"}[lic.status]
            broken(rule, f"license {license_id} was {_STATUS[lic.status]}, not granted")
        elif int(e.timestamp.timestamp()) > lic.expires_at:
            broken("expired", f"license {license_id} expired at {_utc(lic.expires_at):%Y-%m-%d %H:%M:%S} UTC, "
                              f"before the access at {e.timestamp:%Y-%m-%d %H:%M:%S} UTC")
        current = self.admissions.get(lic.requester, 0) if lic.requester in self.active else 0
        if current == 0:
            broken("not-member", f"{lic.requester} was not an active member")
        elif current != lic.admission:
            broken("membership-ended", f"{lic.requester} was re-admitted (admission {current}) after the "
                                       f"membership it asked in (admission {lic.admission}) ended")
        if lic.status == 2 and not (version == lic.from_version or (
                lic.future_versions and lic.from_version < version <= self.versions.get(lic.dataset_id, 0))):
            scope = " and later registered versions" if lic.future_versions else " only"
            broken("version-not-covered", f"license {license_id} covers version {lic.from_version}{scope}, "
                                          f"not version {version}")
        if (lic.dataset_id, version) in self.erased:
            broken("version-erased", f"version {version} of dataset {lic.dataset_id} was erased")
        if e.name == "AccessBatchAnchored" and not lic.batched_access:
            broken("batch-not-allowed", f"license {license_id} was not granted with batched access records, "
                                        f"yet batch {a['batchId']} recorded accesses under it")
        return AccessVerdict(access=e, license_id=license_id, licensee=licensee, version=version,
                             license_status=_STATUS[lic.status],
                             expires_at=_utc(lic.expires_at) if lic.expires_at else None, violations=out)


def check_events(events: Iterable[TrailEvent], dataset_id: int) -> CheckReport:
    """Judge every AccessRecorded and AccessBatchAnchored of `dataset_id` in `events` (replayed in chain order). The
    list must hold what the rules read: the dataset's trail, the registrations and consent
    events of its ancestors, and the membership events of its licensees; what it lacks counts
    as never having happened."""
    state = _State()
    verdicts = []
    for e in sorted(events, key=lambda x: x.position):
        if e.name in _ACCESSES and e.args.get("datasetId") == dataset_id:
            verdicts.append(state.judge(e))
        state.apply(e)
    return CheckReport(dataset_id=dataset_id, accesses=len(verdicts), verdicts=verdicts)


def evidence(index: EventIndex, dataset_id: int, names: dict[str, str] | None = None) -> list[TrailEvent]:
    """The events `check_events` needs for `dataset_id`, from the index."""
    if index.dataset(dataset_id) is None:
        raise UnknownDataset(f"there is no dataset {dataset_id}", hint="list them with `fullchain dataset list`")
    names = names or {}
    marks = ", ".join(f"'{n}'" for n in _STATE_EVENTS)
    own = trail_events(index, f"(dataset_id = :d OR license_id IN (SELECT id FROM licenses WHERE dataset_id = :d)) "
                              f"AND name IN ({marks})", {"d": dataset_id}, names)
    # The lineage, walked up from the dataset's own registration through each parent's.
    seen: set[int] = {dataset_id}
    todo = [p for e in own if e.name == "DatasetRegistered" for p in e.args["derivedFrom"]]
    ancestors: list[TrailEvent] = []
    while todo:
        parent = todo.pop()
        if parent in seen:
            continue
        seen.add(parent)
        found = trail_events(index, "dataset_id = :d AND name IN ('DatasetRegistered', 'ConsentRequired', "
                                    "'ConsentChanged')", {"d": parent}, names)
        ancestors += found
        todo += [p for e in found if e.name == "DatasetRegistered" for p in e.args["derivedFrom"]]
    holders = sorted({e.args["requester"] for e in own if e.name == "LicenseRequested"})
    members: list[TrailEvent] = []
    if holders:
        marks = ", ".join(f":a{i}" for i in range(len(holders)))
        members = trail_events(index, f"name IN ('MemberAdmitted', 'MemberRemoved') AND account IN ({marks})",
                               {f"a{i}": h for i, h in enumerate(holders)}, names)
    return own + ancestors + members


def check_dataset(index: EventIndex, dataset_id: int, names: dict[str, str] | None = None) -> CheckReport:
    """check_events over what the index holds for `dataset_id`."""
    return check_events(evidence(index, dataset_id, names), dataset_id)


def report_json(report: CheckReport, *, every: bool = False) -> dict[str, Any]:
    """JSON-ready: ids as decimal strings (they can exceed 2**53), times in ISO 8601 UTC. The
    verdicts listed are the uncovered accesses', or with `every` all of them (`listed` says which)."""
    listed = report.verdicts if every else report.uncovered
    return {"dataset_id": str(report.dataset_id), "ok": report.ok, "accesses": report.accesses,
            "uncovered": len(report.uncovered), "listed": "all" if every else "uncovered",
            "verdicts": [{"covered": v.covered, "license_id": str(v.license_id), "licensee": v.licensee,
                          "version": v.version, "license_status": v.license_status,
                          "expires_at": v.expires_at.isoformat() if v.expires_at else None,
                          "violations": [{"rule": x.rule, "detail": x.detail} for x in v.violations],
                          "access": event_json(v.access)} for v in listed]}


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
