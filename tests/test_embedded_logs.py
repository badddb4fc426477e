"""The embedded chain answers eth_getLogs from its indexed log table: the same answers as
eth-tester's own (which walks every receipt), for every kind of filter, on a chain with real
fullchain events; backfilled for chains made before the table; following reverted snapshots."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import event_abi_to_log_topic
from web3 import Web3

from fullchain.backends.embedded import open_embedded
from fullchain.contracts import artifact

from .test_index import shared_world

from web3.providers.eth_tester.defaults import get_logs as ETH_TESTER_GET_LOGS  # noqa: E402,N812


def topic(contract: str, event: str) -> str:
    entry = next(e for e in artifact(contract)["abi"] if e["type"] == "event" and e["name"] == event)
    return "0x" + bytes(event_abi_to_log_topic(entry)).hex()


def word(value: int | str) -> str:
    if isinstance(value, str):  # an address
        return "0x" + bytes.fromhex(value[2:]).rjust(32, b"\0").hex()
    return "0x" + value.to_bytes(32, "big").hex()


def eth_tester_answer(w3: Web3, query: dict[str, Any]) -> list[dict[str, Any]]:
    """What eth-tester itself answers, bypassing the log table (under the chain's lock)."""
    provider = w3.provider
    with provider._locked():
        provider._backend.reload()
        return list(ETH_TESTER_GET_LOGS(provider.ethereum_tester, [query]))


def table_answer(w3: Web3, query: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's answer, without the one field eth-tester lacks (checked here against the block)."""
    response = w3.provider.make_request("eth_getLogs", [query])
    assert "error" not in response, response
    out = []
    for entry in response["result"]:
        entry = dict(entry)
        stamp = entry.pop("blockTimestamp")
        if entry["block_hash"] not in TIMESTAMPS:
            TIMESTAMPS[entry["block_hash"]] = w3.eth.get_block(entry["block_hash"])["timestamp"]
        assert int(stamp, 16) == TIMESTAMPS[entry["block_hash"]]
        out.append(entry)
    return out


TIMESTAMPS: dict[str, int] = {}  # block hash -> timestamp


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return shared_world(tmp_path_factory)


def filters(world: dict[str, Any]) -> list[dict[str, Any]]:
    c = world["contracts"]
    registry, licensing, consortium = c["DatasetRegistry"], c["DataUseLicensing"], c["Consortium"]
    version = topic("DatasetRegistry", "VersionRegistered")
    dataset = topic("DatasetRegistry", "DatasetRegistered")
    requested = topic("DataUseLicensing", "LicenseRequested")
    cro = world["cro"].address
    return [
        {},  # the latest block only
        {"from_block": 0, "to_block": "latest"},
        {"from_block": 5, "to_block": 12},
        {"from_block": 12, "to_block": 5},  # empty range
        {"from_block": 0, "to_block": "latest", "address": registry},
        {"from_block": 0, "to_block": "latest", "address": registry.lower()},
        {"from_block": 0, "to_block": "latest", "address": [registry, licensing]},
        {"from_block": 0, "to_block": "latest", "address": "0x" + "11" * 20},
        {"from_block": 0, "to_block": "latest", "topics": [version]},
        {"from_block": 0, "to_block": "latest", "topics": [[version, dataset]]},
        {"from_block": 0, "to_block": "latest", "topics": [None, word(1)]},
        {"from_block": 0, "to_block": "latest", "topics": [version, word(1), None, None]},
        {"from_block": 0, "to_block": "latest", "topics": [version, [word(1), word(3)]]},
        {"from_block": 0, "to_block": "latest", "topics": [requested, None, None, word(cro)]},
        {"from_block": 0, "to_block": "latest", "topics": [dataset, None, None, None]},  # more topics than it has
        {"from_block": 0, "to_block": "latest", "topics": [None, None, None, None]},
        {"from_block": 0, "to_block": "latest", "address": consortium, "topics": [None]},
        {"from_block": 3, "to_block": "latest", "address": [registry, consortium], "topics": [[version, dataset]]},
    ]


def test_answers_equal_eth_testers(world: dict[str, Any]) -> None:
    w3 = world["hospital"].w3
    for query in filters(world):
        expected = eth_tester_answer(w3, query)
        assert table_answer(w3, query) == expected, query
    everything = table_answer(w3, {"from_block": 0, "to_block": "latest"})
    assert len(everything) > 50  # the comparison covered real traffic
    # Block tags mean what they mean on a node. (eth-tester's own answers for them are wrong:
    # "earliest" matches nothing, "safe"/"finalized" raise, "pending" looks for an unmined block.)
    # The pending block of an auto-mining chain holds no logs.
    for low in (0, "earliest"):
        for high in ("latest", "safe", "finalized", "pending", w3.eth.block_number):
            assert table_answer(w3, {"from_block": low, "to_block": high}) == everything, (low, high)
    # What web3 makes of it (its formatters run on the table's answer too).
    registry = world["hospital"].datasets.contract
    events = registry.events.VersionRegistered().get_logs(from_block=0, argument_filters={"datasetId": 1})
    assert [e["args"]["version"] for e in events] == [1, 2]


def test_block_hash_filter(world: dict[str, Any]) -> None:
    w3 = world["hospital"].w3
    log = table_answer(w3, {"from_block": 0, "to_block": "latest"})[-1]
    number = log["block_number"]
    assert table_answer(w3, {"blockHash": log["block_hash"]}) == \
        eth_tester_answer(w3, {"from_block": number, "to_block": number})
    assert w3.eth.get_logs({"blockHash": log["block_hash"]})[-1]["logIndex"] == log["log_index"]
    response = w3.provider.make_request("eth_getLogs", [{"blockHash": "0x" + "00" * 32}])
    assert response["error"]["message"].startswith("unknown block")
    response = w3.provider.make_request("eth_getLogs", [{"blockHash": log["block_hash"], "from_block": 1}])
    assert "cannot be combined" in response["error"]["message"]


def test_filtered_queries_use_an_index(world: dict[str, Any]) -> None:
    """A filtered query reads its matches through an index, never the whole table."""
    w3 = world["hospital"].w3
    provider = w3.provider
    conn = provider._logs._conn
    for query in filters(world)[5:]:
        sql, args = provider._logs.query(provider._backend.chain, [query])
        plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert "USING" in plan and "SCAN logs" not in plan.replace("SCAN logs USING", ""), (query, plan)


def test_existing_chain_is_backfilled(world: dict[str, Any], tmp_path: Path) -> None:
    """A chain made before the table existed: the first query fills it from the receipts."""
    source = sqlite3.connect(world["home"] / "chain" / "chain.sqlite")
    copy = sqlite3.connect(tmp_path / "chain.sqlite")
    source.backup(copy)  # a consistent copy of the world's chain, without its log table
    source.close()
    copy.execute("DROP TABLE logs")
    copy.execute("DROP TABLE log_blocks")
    copy.commit()
    copy.close()
    w3, _ = open_embedded(tmp_path)
    for query in filters(world):
        assert table_answer(w3, query) == eth_tester_answer(w3, query), query


def test_reverted_snapshot_drops_its_logs(tmp_path: Path) -> None:
    w3, keys = open_embedded(tmp_path)
    acct = Account.from_key(keys[0])

    def send(**fields: Any) -> Any:
        tx = {"gas": 200_000, "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id,
              "nonce": w3.eth.get_transaction_count(acct.address), **fields}
        return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction))

    # A contract that emits Ping(n), n being its calldata: LOG2(0, 0, topic0, calldataload(0)).
    ping = bytes(event_abi_to_log_topic({"type": "event", "name": "Ping", "anonymous": False,
                                         "inputs": [{"name": "n", "type": "uint256", "indexed": True}]}))
    runtime = bytes.fromhex("600035") + b"\x7f" + ping + bytes.fromhex("60006000a200")
    init = bytes([0x60, len(runtime)]) + bytes.fromhex("80600b6000396000f3") + runtime
    address = send(data=init)["contractAddress"]

    def emit(n: int) -> None:
        send(to=address, data=n.to_bytes(32, "big"))

    def pings() -> list[int]:
        query = {"from_block": 0, "to_block": "latest", "address": address}
        logs = table_answer(w3, query)
        assert logs == eth_tester_answer(w3, query)
        return [int(log["topics"][1], 16) for log in logs]

    emit(1)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    emit(2)
    emit(3)
    assert pings() == [1, 2, 3]
    w3.provider.make_request("evm_revert", [snapshot])
    assert pings() == [1]
    emit(4)  # a new block where the reverted ones were
    assert pings() == [1, 4]
