"""Decoding the logs of the fullchain contracts against their shipped ABIs."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from ..contracts import (
    BENEFIT_DISTRIBUTOR,
    CONSORTIUM,
    CONTRIBUTION_METER,
    DATA_USE_LICENSING,
    DATASET_REGISTRY,
    SETTLEMENT_TOKEN,
    artifact,
)

# ProvenanceAnchor's name as fullchain.audit.anchor.PROVENANCE_ANCHOR (that module loads web3).
PROVENANCE_ANCHOR = "ProvenanceAnchor"
CONTRACT_NAMES = (CONSORTIUM, DATASET_REGISTRY, DATA_USE_LICENSING, CONTRIBUTION_METER, BENEFIT_DISTRIBUTOR,
                  SETTLEMENT_TOKEN, PROVENANCE_ANCHOR)


@dataclass(frozen=True)
class EventType:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) in topic order
    plain: tuple[tuple[str, str], ...]  # (name, type) in data order
    order: tuple[str, ...]  # argument names in declaration order


@cache
def event_types(contract: str) -> dict[bytes, EventType]:
    """topic0 -> event, for contract `contract`."""
    table = {}
    for entry in artifact(contract)["abi"]:
        if entry["type"] != "event":
            continue
        inputs = entry["inputs"]
        table[bytes(event_abi_to_log_topic(entry))] = EventType(
            contract=contract, name=entry["name"],
            indexed=tuple((i["name"], _abi_type(i)) for i in inputs if i["indexed"]),
            plain=tuple((i["name"], _abi_type(i)) for i in inputs if not i["indexed"]),
            order=tuple(i["name"] for i in inputs))
    return table


def _abi_type(param: dict[str, Any]) -> str:
    # Enums arrive as uint8 in the ABI already; tuples do not occur in fullchain events.
    return str(param["type"])


def decode_log(contract: str, topics: list[bytes], data: bytes) -> tuple[str, dict[str, Any]] | None:
    """Name and JSON-ready arguments of a log of `contract`; None for a log it does not declare."""
    if not topics:
        return None
    event = event_types(contract).get(topics[0])
    if event is None or len(topics) - 1 != len(event.indexed):
        return None
    values: dict[str, Any] = {}
    for (name, typ), topic in zip(event.indexed, topics[1:]):
        if typ in ("string", "bytes") or typ.endswith("]"):
            values[name] = "0x" + topic.hex()  # only the hash of a dynamic value is in a topic
        else:
            values[name] = _jsonable(typ, abi_decode([typ], topic)[0])
    plain = abi_decode([t for _, t in event.plain], data) if event.plain else ()
    for (name, typ), value in zip(event.plain, plain):
        values[name] = _jsonable(typ, value)
    return event.name, {name: values[name] for name in event.order}


@lru_cache(maxsize=4096)
def checksum(address: str) -> str:
    """EIP-55 form of `address`; cached: a chain's events name the same few accounts again and again."""
    return to_checksum_address(address)


def _jsonable(typ: str, value: Any) -> Any:
    if typ.endswith("]"):
        inner = typ[:typ.rindex("[")]
        return [_jsonable(inner, v) for v in value]
    if typ == "address":
        return checksum(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value
