"""The metadata document of a dataset version: what it is, in which standard, under which terms.

It is stored next to the payload (encrypted with the same data key unless the tier is public)
and anchored on chain by the digest of what was stored.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .duo import lookup
from .errors import InvalidInput
from .metering.data import DataMeasurement
from .metering.redline import Finding

Standard = Literal["sdtm", "adam", "send", "omop", "fhir", "other"]
Tier = Literal["public", "consortium", "restricted"]

# On-chain codes; append only, never renumber.
STANDARD_CODES: dict[str, int] = {"other": 0, "sdtm": 1, "adam": 2, "send": 3, "omop": 4, "fhir": 5}
TIER_CODES: dict[str, int] = {"public": 0, "consortium": 1, "restricted": 2}
STANDARD_LABELS = {"sdtm": "CDISC SDTM", "adam": "CDISC ADaM", "send": "CDISC SEND", "omop": "OMOP CDM",
                   "fhir": "HL7 FHIR", "other": "other"}


class RedlineCheck(BaseModel):
    """What the red-line check did with the file of this version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["passed", "overridden", "skipped"]
    reason: str | None = Field(default=None, description="skipped: why the file was not checked")
    findings: list[Finding] = Field(default_factory=list, description="overridden: what was found")


# Fields set by the SDK at registration, from the file itself (never inherited by a new version).
# Left out of the canonical bytes when empty, so that documents from before them keep their digest.
MEASURED_FIELDS = ("measurement", "measurement_skipped", "redline", "allow_identifiers")


class DatasetMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    standard: Standard = "other"
    domain: str | None = Field(default=None, max_length=200, description="e.g. oncology, cardiology")
    subject_count: int | None = Field(default=None, ge=0)
    data_use: list[str] = Field(default_factory=list, description="default conditions, GA4GH DUO ids")
    tier: Tier = "consortium"
    extensions: dict[str, Any] = Field(default_factory=dict)
    measurement: DataMeasurement | None = Field(
        default=None, description="the file measured at registration (fullchain.metering.data), kept without "
        "as_of/timeliness (count those to the version's registration time on chain: with_as_of) and, in "
        "public metadata, without the file's SHA-256 (it would undo the salted commitment)")
    measurement_skipped: str | None = Field(default=None, description="why the file was not measured")
    redline: RedlineCheck | None = None
    allow_identifiers: str | None = Field(default=None, max_length=2000,
                                          description="the owner's reason for sharing direct identifiers")

    @field_validator("data_use")
    @classmethod
    def _duo(cls, codes: list[str]) -> list[str]:
        out = []
        for code in codes:
            try:
                out.append(lookup(code).id)
            except InvalidInput as exc:
                raise ValueError(exc.diagnostics()) from None
        return out

    def to_bytes(self) -> bytes:
        """Canonical JSON: the same document always gives the same bytes (and digest)."""
        doc = self.model_dump(mode="json")
        for name in MEASURED_FIELDS:
            if doc.get(name) is None:
                del doc[name]
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> DatasetMetadata:
        return cls.model_validate_json(raw)


def build_metadata(base: dict[str, Any] | None = None, **overrides: Any) -> DatasetMetadata:
    """Validate a metadata document (a --meta file's content plus command-line fields); errors
    name the field and the reason, before anything is uploaded."""
    data = {**(base or {}), **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return DatasetMetadata.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "document"
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise InvalidInput(f"invalid metadata: {field}: {first['msg']}{more}",
                           hint="fix the field in --meta or on the command line; nothing was uploaded") from None
