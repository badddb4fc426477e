"""The data that enters or leaves fullchain: profiles, members, proposals, chain status."""
from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from .errors import InvalidInput


class Role(enum.IntFlag):
    """Member roles, the same bits as `Consortium.ROLE_*`."""

    HOSPITAL = 1 << 0
    PHARMA = 1 << 1
    CRO = 1 << 2
    REGULATOR = 1 << 3
    AUDITOR = 1 << 4
    PATIENT = 1 << 5
    GOVERNOR = 1 << 6
    ATTESTER = 1 << 7

    @classmethod
    def parse(cls, text: str | list[str] | tuple[str, ...]) -> Role:
        """`"hospital,governor"` (or a list of names) to role bits."""
        names = text.split(",") if isinstance(text, str) else list(text)
        roles = cls(0)
        for raw in names:
            name = raw.strip().upper()
            if not name:
                continue
            if name not in cls.__members__:
                raise InvalidInput(f"unknown role '{raw.strip()}'",
                                   hint="use one or more of " + ", ".join(r.lower() for r in cls.__members__))
            roles |= cls[name]
        if not roles:
            raise InvalidInput("no role given", hint="name at least one role, e.g. --roles hospital")
        return roles

    def names(self) -> list[str]:
        return [r.name.lower() for r in Role if r & self and r.name]


class MemberStatus(enum.IntEnum):
    NONE = 0
    ACTIVE = 1
    REMOVED = 2


class ProposalKind(enum.IntEnum):
    ADMIT_MEMBER = 0
    REMOVE_MEMBER = 1
    CHANGE_ROLES = 2
    SET_THRESHOLD = 3
    ALLOW_ACCOUNT = 4
    DISALLOW_ACCOUNT = 5
    ALLOW_NODE = 6
    DISALLOW_NODE = 7
    SET_VOTING_PERIOD = 8
    CALL = 9


class ProposalStatus(enum.IntEnum):
    NONE = 0
    PENDING = 1
    EXECUTED = 2
    CANCELLED = 3


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileConfig(_Model):
    """One identity on one chain, as stored in `profiles/<name>/profile.json`."""

    name: str
    address: str
    hpke_public_key: str = Field(description="hex, X25519 raw public key")
    chain: str = Field(default="embedded", description="'embedded' or a JSON-RPC URL")
    contracts: dict[str, str] = Field(default_factory=dict,
                                      description="contract name -> address, overriding the recorded deployment")
    storage: str = Field(default="embedded", description="'embedded' or the URL of an IPFS node's RPC API")
    confirmations: int = Field(default=1, ge=1)
    receipt_timeout: float = Field(default=120.0, gt=0)
    created_at: datetime

    @field_validator("chain", "storage")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("http://", "https://")):
            raise ValueError("must be 'embedded' or an http(s):// URL")
        return value


class Member(_Model):
    account: str
    roles: list[str]
    status: Literal["none", "active", "removed"]
    joined_at: datetime | None
    metadata_hash: str
    hpke_public_key: str

    @classmethod
    def from_chain(cls, account: str, raw: Any) -> Member:
        roles, status, joined_at, _admission, _governor_term, metadata_hash, key = raw
        return cls(
            account=account,
            roles=Role(roles).names(),
            status=MemberStatus(status).name.lower(),  # type: ignore[arg-type]
            joined_at=_utc(joined_at) if joined_at else None,
            metadata_hash="0x" + bytes(metadata_hash).hex(),
            hpke_public_key="0x" + bytes(key).hex(),
        )


class Proposal(_Model):
    id: int
    kind: str
    status: Literal["pending", "executed", "cancelled", "expired"]
    proposer: str
    created_at: datetime
    deadline: datetime
    approvals: int
    details: dict[str, Any]


class AllowedNode(_Model):
    enode: str
    public_key: str
    host: str
    port: int


class Deployment(_Model):
    """Where the contracts live on one chain, as recorded by `fullchain chain deploy`."""

    chain_id: int
    genesis_hash: str
    contracts: dict[str, str]
    deployed_at: datetime
    deployer: str
    block_number: int


class ChainStatus(_Model):
    backend: Literal["embedded", "rpc"]
    endpoint: str
    chain_id: int
    block_number: int
    genesis_hash: str
    contracts: dict[str, str]
    account: str
    balance_wei: int
    member: Member | None
    threshold: int | None
    governors: int | None
    members: int | None


class DatasetVersion(_Model):
    dataset_id: int
    version: int
    commitment: str
    payload_cid: str
    metadata_cid: str
    size: int
    standard: str
    tier: str
    erased: bool
    registered_at: datetime


class DatasetInfo(_Model):
    dataset_id: int
    owner: str
    created_at: datetime
    version_count: int
    derived_from: list[int]
    title: str | None = Field(default=None, description="None when the metadata is not readable by this profile")


class SkippedDelivery(_Model):
    """A licensee the key of a new version could not be delivered to, and why."""

    license_id: int
    account: str
    reason: str


class KeyDelivery(_Model):
    """The outcome of delivering a version's key to the licensees entitled to it."""

    dataset_id: int
    version: int
    delivered: list[int] = Field(default_factory=list, description="license ids that got the key now")
    skipped: list[SkippedDelivery] = Field(default_factory=list,
                                           description="entitled licensees that did not get it (see reason)")


class Registration(_Model):
    """The outcome of `dataset register` / `dataset version`."""

    dataset_id: int
    version: int
    cid: str
    commitment: str
    metadata_cid: str
    size: int
    resumed: bool = Field(description="True when an interrupted earlier run was completed")
    uploaded: bool = Field(description="False when the ciphertext was already stored")
    deliveries: KeyDelivery | None = Field(default=None, description="new versions: keys delivered to licensees")
    priority_closes_at: datetime | None = Field(default=None, description="registered with a priority window: "
                                                "when it closes")


class FetchResult(_Model):
    dataset_id: int
    version: int
    path: str
    size: int
    sha256: str
    commitment: str


class VerifyResult(_Model):
    dataset_id: int
    version: int
    matches: bool
    sha256: str
    commitment: str


class License(_Model):
    """A license request and, once granted, the license itself (they share one id)."""

    id: int
    dataset_id: int
    requester: str
    status: Literal["requested", "granted", "rejected", "revoked", "superseded", "expired"]
    valid: bool
    purpose: str
    purpose_label: str
    disease: str | None
    modifiers: list[str]
    term_seconds: int
    requested_at: datetime
    expires_at: datetime | None
    from_version: int | None
    future_versions: bool
    justification_hash: str
    # Whether the licensee may record its uses in Merkle batches (ProvenanceAnchor.anchorAccesses).
    batched_access: bool = False


# ---- contribution metering ----

# Amounts and points are uint256 on chain: JSON carries them as decimal strings, since most JSON
# readers lose precision above 2**53.
BigInt = Annotated[int, PlainSerializer(str, return_type=str, when_used="json")]

MeterKind = Literal["data", "algorithm", "gpu", "storage"]
MeterDimension = Literal["data", "algorithm", "compute"]


class MeterParameters(_Model):
    """What a ContributionMeter is deployed with (governance changes them later)."""

    epoch_length: int = 30 * 24 * 3600
    dispute_window: int = 7 * 24 * 3600
    attestations: int = 1


class MeterSettings(_Model):
    """ContributionMeter's governance-set parameters."""

    epoch_length: int = Field(description="seconds per epoch (the newest segment)")
    dispute_window: int = Field(description="seconds after an epoch's end during which its records stay open")
    attestations_required: int
    weights: dict[str, BigInt] = Field(description="kind -> weight; points = amount * weight / 1e18")


class MeterRecord(_Model):
    """One contribution record, as the event index knows it."""

    id: int
    epoch: int
    member: str
    kind: MeterKind
    dimension: MeterDimension
    subject: str = Field(description="the bytes32 subject, 0x-hex")
    subject_label: str = Field(description="'dataset D version V', or the digest for a model or job batch")
    amount: BigInt
    points: BigInt
    evidence_cid: str
    status: Literal["submitted", "disputed", "upheld", "rejected"]
    attestations: int
    required: int
    counted: bool = Field(description="its points are in the totals now")
    attesters: list[str]
    disputer: str | None = None
    dispute_reason_cid: str | None = None
    submitted_at: datetime


class MemberPoints(_Model):
    member: str
    points: dict[str, BigInt] = Field(description="dimension -> points")
    shares_bps: dict[str, int] = Field(description="dimension -> share of the dimension's total, basis points (floor)")


class MeterEpoch(_Model):
    """An epoch's status, totals and each member's points."""

    epoch: int
    start: datetime
    end: datetime
    window_closes_at: datetime
    state: Literal["open", "in dispute window", "awaiting finalization", "finalized"]
    open_disputes: int
    totals: dict[str, BigInt]
    members: list[MemberPoints]
    records: int


class FigureDifference(_Model):
    figure: str
    recorded: Any
    measured: Any


class Remeasurement(_Model):
    """An attester's check of a record: measured again (data records) or checked against its
    evidence report (other kinds, until their measurement is re-run here)."""

    record_id: int
    kind: str
    recomputed: bool = Field(description="True when the figures were measured again from the data")
    matches: bool
    differences: list[FigureDifference]
