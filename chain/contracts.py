"""The compiled contracts shipped with the SDK, and the decoding of their custom errors.

Artifacts are built by `scripts/compile.py` and committed, so SDK users never need a compiler.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from eth_abi import decode as abi_decode
from eth_utils import (
    abi_to_signature,
    function_signature_to_4byte_selector,
    get_abi_input_names,
    get_abi_input_types,
    to_checksum_address,
)
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from .abi_check import check_constructor, checked

if TYPE_CHECKING:
    from .transactions import Transactor

CONSORTIUM = "Consortium"
DATASET_REGISTRY = "DatasetRegistry"
DATA_USE_LICENSING = "DataUseLicensing"
CONTRIBUTION_METER = "ContributionMeter"
BENEFIT_DISTRIBUTOR = "BenefitDistributor"
SETTLEMENT_TOKEN = "SettlementToken"

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


@cache
def artifact(name: str) -> dict[str, Any]:
    """The artifact (abi, bytecode, compiler, sourceHash) of contract `name`."""
    text = resources.files("fullchain").joinpath("artifacts", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _error_table(name: str) -> dict[bytes, dict[str, Any]]:
    entries = [e for e in artifact(name)["abi"] if e["type"] == "error"]
    return {function_signature_to_4byte_selector(abi_to_signature(e)): e for e in entries}


def decode_revert(contract: str, data: bytes) -> tuple[str, dict[str, Any]]:
    """Name and arguments of the error encoded in `data`, against `contract`'s ABI.

    Both backends deliver the same revert bytes (the embedded provider answers like a node), so
    one decoder serves them all. Unknown selectors come back as `UnknownError(data=...)`.
    """
    selector, body = data[:4], data[4:]
    if selector == _ERROR_STRING:
        return "Error", {"reason": abi_decode(["string"], body)[0]}
    if selector == _PANIC:
        return "Panic", {"code": abi_decode(["uint256"], body)[0]}
    entry = _error_table(contract).get(selector)
    if entry is None:
        return ("Reverted", {}) if not data else ("UnknownError", {"data": data})
    types = get_abi_input_types(entry)
    values = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, abi_decode(types, body))]
    names = get_abi_input_names(entry)
    return entry["name"], {n or f"arg{i}": v for i, (n, v) in enumerate(zip(names, values))}


def revert_bytes(exc: ContractLogicError) -> bytes:
    """The raw revert data carried by a web3 contract exception (empty when the node gave none)."""
    data = exc.data
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."} or {"message":..., "data":...}
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def bind(w3: Web3, name: str, address: str) -> Contract:
    """Contract `name` from the shipped artifacts at `address` (arguments range-checked)."""
    return checked(w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name)["abi"]), name)


def deploy_contract(tx: Transactor, w3: Web3, name: str, *args: Any) -> tuple[str, int]:
    """Deploy contract `name` with constructor `args`; returns its address and block."""
    art = artifact(name)
    check_constructor(w3, art["abi"], args, contract=name)
    ctor = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args)
    receipt = tx.call_function(ctor, contract=name)
    return receipt["contractAddress"], receipt["blockNumber"]
