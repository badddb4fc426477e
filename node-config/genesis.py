"""genesis.json for a Besu QBFT network.

QBFT headers must carry difficulty 1 and the mixHash "ctical byzantine fault tolerance"
(Besu's `BftHelpers.EXPECTED_MIX_HASH`, enforced by its QBFT header rules). Gas is free:
`zeroBaseFee` in genesis and `min-gas-price=0` on every node. Cancun is on from block 0
because the contracts are compiled for it (OpenZeppelin 5 uses `mcopy`).
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fullchain.errors import InvalidInput

from .extradata import encode_genesis_extra_data

QBFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
GAS_LIMIT = 0x1FFFFFFFFFFFFF
# What each funded account starts with (1 million ether); gas is free, so this is only for
# contracts that move value.
DEFAULT_BALANCE_WEI = 10**24
DEFAULT_EPOCH_LENGTH = 30000
_PRE_LONDON_FORKS = ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
                     "constantinopleBlock", "petersburgBlock", "istanbulBlock", "berlinBlock", "londonBlock")


def request_timeout_for(block_period: int) -> int:
    """Besu's docs suggest twice the block period (the timeout then doubles per round change)."""
    return max(2 * block_period, 2)


def build_genesis(*, chain_id: int, validators: Sequence[str], block_period: int = 2,
                  epoch_length: int = DEFAULT_EPOCH_LENGTH, request_timeout: int | None = None,
                  alloc: Mapping[str, int] | None = None, timestamp: int | None = None) -> dict[str, Any]:
    """The genesis document: QBFT config, validators in the extraData, `alloc` address -> wei."""
    if chain_id <= 0:
        raise InvalidInput(f"chain id {chain_id} is not positive", hint="give --chain-id a positive integer")
    if block_period < 1:
        raise InvalidInput(f"block period {block_period} s is below 1 s", hint="give --block-period 1 or more")
    if epoch_length < 1:
        raise InvalidInput("epoch length must be positive", hint="keep the default 30000")
    timeout = request_timeout if request_timeout is not None else request_timeout_for(block_period)
    if timeout < 1:
        raise InvalidInput("request timeout must be positive", hint="give 2x the block period")
    extra = encode_genesis_extra_data(validators)
    config: dict[str, Any] = {"chainId": chain_id}
    config.update({fork: 0 for fork in _PRE_LONDON_FORKS})
    config.update({
        "shanghaiTime": 0,
        "cancunTime": 0,
        "zeroBaseFee": True,
        "contractSizeLimit": 2147483647,
        "qbft": {"blockperiodseconds": block_period, "epochlength": epoch_length,
                 "requesttimeoutseconds": timeout},
    })
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": hex(int(time.time()) if timestamp is None else timestamp),
        "gasLimit": hex(GAS_LIMIT),
        "difficulty": "0x1",
        "mixHash": QBFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "extraData": "0x" + extra.hex(),
        "alloc": {address.lower().removeprefix("0x"): {"balance": hex(wei)} for address, wei in (alloc or {}).items()},
    }


def dumps(genesis: Mapping[str, Any]) -> str:
    return json.dumps(genesis, indent=2) + "\n"
