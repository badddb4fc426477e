"""A dataset's provenance as a W3C PROV-JSON document (https://www.w3.org/submissions/prov-json/).

    from fullchain.audit.prov import prov_document, prov_json
    doc = prov_document(view.index, 3, names=view.local_names())
    text = prov_json(doc)                      # same index and names -> same bytes

What goes in, all from the event index:

- entities: the dataset, its versions (`specializationOf` the dataset, with commitment, size,
  payload and metadata CIDs, standard, tier; an erased version `wasInvalidatedBy` its erasure),
  the datasets of its lineage (ancestors and descendants, `wasDerivedFrom` along each declared
  parent link, `wasAttributedTo` their owners), and its licenses (`prov:Plan`s, with the terms
  as granted; a revoked, rejected or superseded license `wasInvalidatedBy` that event);
- activities: every event of the dataset's trail, one activity each, at its block time
  (start = end), with block, transaction and log index; registrations `wasGeneratedBy` links,
  license requests generate their license, accesses `used` the version read and were
  `wasAssociatedWith` the licensee under the license as plan;
- agents: the accounts named by those events (address as id; the local profile name, where
  this machine has one, as `prov:label`).

Identifiers live in a namespace of the deployment, `urn:fullchain:eip155:<chain id>:<genesis
hash prefix>:<DatasetRegistry address>:`, so that ids from two chains or two deployments never
meet; the vocabulary (types, attribute names) in `urn:fullchain:terms:`, the same everywhere.
Integers that can exceed 2**53 go out as `xsd:integer` strings when they do. Written by hand (the
format is small); tests read it back with the `prov` package.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, UnknownDataset
from .trail import JSON_SAFE_BITS, TrailEvent, dataset_trail, trail_events

if TYPE_CHECKING:
    from ..index import EventIndex

TERMS = "urn:fullchain:terms:"
XSD = "http://www.w3.org/2001/XMLSchema#"
ACCESS_KINDS = {0: "fetch", 1: "compute", 2: "export"}


@dataclass(frozen=True)
class Deployment:
    """Which chain and deployment an index holds: what makes an id global."""

    chain_id: int | None
    genesis: str  # the genesis hash's first 16 hex digits, as the index file is named
    contracts: dict[str, str]

    @property
    def namespace(self) -> str:
        registry = self.contracts.get("DatasetRegistry", "0x").lower()
        chain = "unknown" if self.chain_id is None else str(self.chain_id)
        return f"urn:fullchain:eip155:{chain}:{self.genesis}:{registry}:"


@dataclass(frozen=True)
class LineageNode:
    dataset_id: int
    owner: str
    parents: tuple[int, ...]
    created_at: datetime
    relation: str  # "ancestor", "self" or "descendant"


@dataclass
class Lineage:
    """The dataset, its ancestors and its descendants (closed as DatasetRegistry closes them),
    and the declared parent -> child links among them."""

    dataset_id: int
    nodes: dict[int, LineageNode] = field(default_factory=dict)

    @property
    def edges(self) -> list[tuple[int, int]]:
        return sorted((p, n.dataset_id) for n in self.nodes.values() for p in n.parents if p in self.nodes)


def deployment_of(index: EventIndex) -> Deployment:
    """The chain id and genesis prefix are in the index file's name (fullchain.index.index_path:
    `<chain id>-<genesis>.sqlite`), the contracts in its metadata."""
    head, _, genesis = Path(index.path).stem.partition("-")
    row = _conn(index).execute("SELECT value FROM meta WHERE key = 'contracts'").fetchone()
    contracts = json.loads(row[0]) if row else {}
    return Deployment(chain_id=int(head) if head.isdigit() else None, genesis=genesis or "unknown",
                      contracts=dict(sorted(contracts.items())))


def lineage_of(index: EventIndex, dataset_id: int) -> Lineage:
    """UnknownDataset if the index holds no such dataset."""
    conn = _conn(index)
    if conn.execute("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)).fetchone() is None:
        raise UnknownDataset(f"there is no dataset {dataset_id}", hint="list them with `fullchain dataset list`")
    ancestors = {r[0] for r in conn.execute("SELECT ancestor_id FROM ancestors WHERE dataset_id = ?", (dataset_id,))}
    descendants = {r[0] for r in conn.execute("SELECT dataset_id FROM ancestors WHERE ancestor_id = ?", (dataset_id,))}
    ids = sorted(ancestors | descendants | {dataset_id})
    out = Lineage(dataset_id)
    marks = ",".join("?" * len(ids))
    for id_, owner, derived, created in conn.execute(
            f"SELECT id, owner, derived_from, created_at FROM datasets WHERE id IN ({marks}) ORDER BY id", ids):
        relation = "self" if id_ == dataset_id else "ancestor" if id_ in ancestors else "descendant"
        out.nodes[id_] = LineageNode(id_, owner, tuple(json.loads(derived)), _utc(created), relation)
    return out


def prov_document(index: EventIndex, dataset_id: int, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The PROV-JSON document (as JSON-ready data) of `dataset_id`; see the module's docstring."""
    names = names or {}
    lineage = lineage_of(index, dataset_id)
    doc = _Doc(deployment_of(index), names)
    conn = _conn(index)
    owner = lineage.nodes[dataset_id].owner

    for node in lineage.nodes.values():
        attrs: dict[str, Any] = {"prov:type": doc.qname(f"{TERMS}Dataset"), "prov:label": f"dataset {node.dataset_id}",
                                 "fct:datasetId": _int(node.dataset_id), "fct:relation": node.relation}
        doc.entity(_dataset(node.dataset_id), attrs)
        doc.agent(node.owner)
        doc.relation("wasAttributedTo", {"prov:entity": _dataset(node.dataset_id), "prov:agent": _account(node.owner)})
    for parent, child in lineage.edges:
        doc.relation("wasDerivedFrom", {"prov:generatedEntity": _dataset(child), "prov:usedEntity": _dataset(parent)})
    title = index.dataset(dataset_id)
    if title is not None and title.info.title:
        doc.entities[_dataset(dataset_id)]["fct:title"] = title.info.title

    for v in index.versions(dataset_id):
        doc.entity(_version(dataset_id, v.version), {
            "prov:type": doc.qname(f"{TERMS}DatasetVersion"), "prov:label": f"dataset {dataset_id} version {v.version}",
            "fct:version": v.version, "fct:commitment": v.commitment, "fct:size": _int(v.size),
            "fct:payloadCid": v.payload_cid, "fct:metadataCid": v.metadata_cid, "fct:standard": v.standard,
            "fct:tier": v.tier, "fct:erased": v.erased})
        doc.relation("specializationOf", {"prov:specificEntity": _version(dataset_id, v.version),
                                          "prov:generalEntity": _dataset(dataset_id)})

    for row in conn.execute("SELECT id, requester, status, purpose, disease, modifiers, term, expires_at, from_version, "
                            "future_versions FROM licenses WHERE dataset_id = ? ORDER BY id", (dataset_id,)):
        lid, requester, status, purpose, disease, modifiers, term, expires, from_version, future = row
        attrs = {"prov:type": [doc.qname("prov:Plan"), doc.qname(f"{TERMS}License")], "prov:label": f"license {lid}",
                 "fct:licenseId": _int(lid), "fct:dataset": doc.qname(_dataset(dataset_id)),
                 "fct:requester": doc.qname(_account(requester)),
                 "fct:status": {1: "requested", 2: "granted", 3: "rejected", 4: "revoked", 5: "superseded"}[status],
                 "fct:purpose": purpose, "fct:disease": disease, "fct:modifiers": _int(modifiers),
                 "fct:termSeconds": _int(term)}
        if expires:
            attrs["fct:expiresAt"] = _xsd_time(expires)
        if from_version is not None and status != 1:
            attrs["fct:fromVersion"] = from_version
            attrs["fct:futureVersions"] = bool(future)
        doc.entity(_license(lid), attrs)
        doc.agent(requester)

    registrations = trail_events(index, "name = 'DatasetRegistered' AND dataset_id IN (SELECT value FROM json_each(:ids))",
                                 {"ids": json.dumps(sorted(lineage.nodes))}, names)
    own = dataset_trail(index, dataset_id, limit=None, names=names).events
    for e in sorted({e.position: e for e in (*registrations, *own)}.values(), key=lambda x: x.position):
        _event(doc, e, dataset_id, owner)
    return doc.finish()


def prov_json(doc: dict[str, Any]) -> str:
    """The document as text: keys sorted, so the same index gives the same bytes."""
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def counts(doc: dict[str, Any]) -> dict[str, int]:
    """How many entities, activities, agents and relations a document holds."""
    kinds = ("entity", "activity", "agent")
    out = {k: len(doc.get(k, {})) for k in kinds}
    out["relations"] = sum(len(v) for k, v in doc.items() if k not in (*kinds, "prefix"))
    return out


def write_export(path: Path, text: str) -> None:
    """Write an export whole or not at all (0600: it names members and what they read)."""
    from ..home import write_atomic

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a directory", hint="give a file name with -o, e.g. -o report.html")
    if not path.parent.is_dir():
        raise ConfigError(f"the directory {path.parent} does not exist", hint="create it first or choose another -o path")
    try:
        write_atomic(path, text, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror})", hint="check the permissions and free space") from None


# ---- internals ----

def _conn(index: EventIndex) -> sqlite3.Connection:
    # The lineage tables (ancestors, closed at registration) have no query method on EventIndex:
    # read them directly, read only, as the trail does.
    return index._conn  # noqa: SLF001


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _time(ts: datetime | int) -> str:
    moment = ts if isinstance(ts, datetime) else _utc(ts)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xsd_time(ts: datetime | int) -> dict[str, str]:
    return {"$": _time(ts), "type": "xsd:dateTime"}


def _int(value: int) -> int | dict[str, str]:
    """A JSON number while every reader keeps its digits, else a typed string."""
    return value if abs(value) < 2 ** JSON_SAFE_BITS else {"$": str(value), "type": "xsd:integer"}


def _dataset(dataset_id: int) -> str:
    return f"fullchain:dataset/{dataset_id}"


def _version(dataset_id: int, version: int) -> str:
    return f"fullchain:dataset/{dataset_id}/version/{version}"


def _license(license_id: int) -> str:
    return f"fullchain:license/{license_id}"


def _account(address: str) -> str:
    return f"fullchain:account/{address}"


_ACTIVITY_NAMES = {
    "DatasetRegistered": "registration", "VersionRegistered": "version-registration", "VersionErased": "erasure",
    "LicenseRequested": "license-request", "LicenseGranted": "license-grant", "LicenseRejected": "license-rejection",
    "LicenseRevoked": "license-revocation", "LicenseSuperseded": "license-supersession",
    "LicenseRenewed": "license-renewal", "KeyDelivered": "key-delivery", "AccessRecorded": "access",
    "KeyBundlePublished": "key-bundle", "ConsentRequired": "consent-required", "ConsentChanged": "consent-change",
}


class _Doc:
    """The document under construction; relation ids are numbered in chain order."""

    def __init__(self, deployment: Deployment, names: dict[str, str]) -> None:
        self.deployment = deployment
        self.names = names
        self.entities: dict[str, dict[str, Any]] = {}
        self.activities: dict[str, dict[str, Any]] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.relations: dict[str, dict[str, dict[str, Any]]] = {}
        self._count = 0

    @staticmethod
    def qname(value: str) -> dict[str, str]:
        if value.startswith(TERMS):
            value = "fct:" + value.removeprefix(TERMS)
        return {"$": value, "type": "xsd:QName"}

    def entity(self, id_: str, attrs: dict[str, Any]) -> None:
        self.entities.setdefault(id_, {}).update(attrs)

    def agent(self, address: str | None) -> str | None:
        if not isinstance(address, str) or not address.startswith("0x"):
            return None
        id_ = _account(address)
        if id_ not in self.agents:
            attrs: dict[str, Any] = {"prov:type": self.qname(f"{TERMS}Member"), "fct:address": address}
            name = self.names.get(address)
            attrs["prov:label"] = name if name else address
            self.agents[id_] = attrs
        return id_

    def relation(self, kind: str, attrs: dict[str, Any]) -> None:
        self._count += 1
        self.relations.setdefault(kind, {})[f"_:{kind}{self._count}"] = attrs

    def finish(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prefix": {"fullchain": self.deployment.namespace, "fct": TERMS, "xsd": XSD}}
        for key, value in (("entity", self.entities), ("activity", self.activities), ("agent", self.agents),
                           *self.relations.items()):
            if value:
                out[key] = value
        return out


def _event(doc: _Doc, e: TrailEvent, dataset_id: int, owner: str) -> None:
    """The event as an activity, and what it says as relations."""
    a = e.args
    act = f"fullchain:{_ACTIVITY_NAMES.get(e.name, 'event')}/{e.block}-{e.tx_index}-{e.log_index}"
    when = _time(e.timestamp)
    doc.activities[act] = {"prov:startTime": when, "prov:endTime": when, "prov:type": doc.qname(f"{TERMS}{e.name}"),
                           "prov:label": e.summary, "fct:block": _int(e.block), "fct:transaction": e.tx_hash,
                           "fct:logIndex": e.log_index, "fct:contract": e.contract}

    def associated(account: str | None, role: str, plan: str | None = None) -> None:
        agent = doc.agent(account)
        if agent is not None:
            attrs = {"prov:activity": act, "prov:agent": agent, "prov:role": role}
            if plan is not None:
                attrs["prov:plan"] = plan
            doc.relation("wasAssociatedWith", attrs)

    def used(entity: str) -> None:
        doc.relation("used", {"prov:activity": act, "prov:entity": entity, "prov:time": when})

    def generated(entity: str) -> None:
        doc.relation("wasGeneratedBy", {"prov:entity": entity, "prov:activity": act, "prov:time": when})

    def invalidated(entity: str) -> None:
        doc.relation("wasInvalidatedBy", {"prov:entity": entity, "prov:activity": act, "prov:time": when})

    license_ref = _license(a["licenseId"]) if "licenseId" in a and _license(a["licenseId"]) in doc.entities else None
    match e.name:
        case "DatasetRegistered":
            generated(_dataset(a["datasetId"]))
            associated(a["owner"], "owner")
        case "VersionRegistered":
            generated(_version(a["datasetId"], a["version"]))
            associated(owner, "owner")
        case "VersionErased":
            invalidated(_version(a["datasetId"], a["version"]))
            associated(owner, "owner")
        case "KeyBundlePublished":
            used(_version(a["datasetId"], a["version"]))
        case "LicenseRequested":
            used(_dataset(dataset_id))
            if license_ref:
                generated(license_ref)
            associated(a["requester"], "requester")
        case "LicenseGranted":
            if license_ref:
                used(license_ref)
            associated(a["licensee"], "licensee")
            doc.activities[act]["fct:expiresAt"] = _xsd_time(int(a["expiresAt"]))
        case "LicenseRenewed":
            if license_ref:
                used(license_ref)
            doc.activities[act]["fct:expiresAt"] = _xsd_time(int(a["expiresAt"]))
        case "LicenseRejected" | "LicenseRevoked":
            if license_ref:
                invalidated(license_ref)
            associated(a["by"], "decider")
        case "LicenseSuperseded":
            if license_ref:
                invalidated(license_ref)
            doc.activities[act]["fct:supersededBy"] = doc.qname(_license(a["by"]))
        case "KeyDelivered":
            if license_ref:
                used(license_ref)
            used(_version(dataset_id, a["version"]))
        case "AccessRecorded":
            used(_version(a["datasetId"], a["version"]))
            associated(a["licensee"], "licensee", license_ref)
            doc.activities[act]["fct:accessKind"] = ACCESS_KINDS.get(a["kind"], f"kind {a['kind']}")
        case "ConsentRequired" | "ConsentChanged":
            used(_dataset(a["datasetId"]))
            associated(a["patient"], "patient")
            if e.name == "ConsentChanged":
                doc.activities[act]["fct:consentGiven"] = bool(a["given"])
        case _:
            if e.dataset_id == dataset_id:
                used(_dataset(dataset_id))
            associated(e.account, "account")
