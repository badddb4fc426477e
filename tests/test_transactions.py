"""Sending over JSON-RPC to real anvil nodes configured like the networks users run."""
from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from eth_account import Account

from fullchain.backends.rpc import open_rpc
from fullchain.errors import TransactionTimeout
from fullchain.transactions import Transactor

from .conftest import ANVIL_MNEMONIC, AnvilNode

SINK = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture
def node(request: pytest.FixtureRequest) -> Iterator[AnvilNode]:
    n = AnvilNode(*request.param)
    yield n
    n.stop()


def funder():  # noqa: ANN201
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(ANVIL_MNEMONIC)


@pytest.mark.parametrize("node", [("--hardfork", "berlin", "--gas-price", "0")], indirect=True)
def test_legacy_zero_gas_price_network(node: AnvilNode) -> None:
    """No base fee (pre-London, like many QBFT/Clique networks) and free gas: legacy pricing."""
    w3 = open_rpc(node.url)
    assert "baseFeePerGas" not in w3.eth.get_block("latest")
    payer = funder()
    fresh = Account.from_key(secrets.token_bytes(32))  # zero balance: can only send on a free-gas chain
    Transactor(w3, lambda: payer, payer.address).transfer(fresh.address, 5)
    receipt = Transactor(w3, lambda: fresh, fresh.address).transfer(SINK, 0)
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 0 and tx["gasPrice"] == 0
    assert receipt["status"] == 1


@pytest.mark.parametrize("node", [()], indirect=True)
def test_eip1559_network_and_one_sdk_instance_sends_many(node: AnvilNode) -> None:
    w3 = open_rpc(node.url)
    payer = funder()
    tx = Transactor(w3, lambda: payer, payer.address)
    receipts = [tx.transfer(SINK, 1) for _ in range(25)]
    assert all(r["status"] == 1 for r in receipts)
    assert w3.eth.get_transaction(receipts[0]["transactionHash"])["type"] == 2
    assert w3.eth.get_balance(SINK) == 25
    # A second instance of the same account (another process) moves the nonce under the first.
    other = Transactor(w3, lambda: payer, payer.address)
    other.transfer(SINK, 1)
    tx.transfer(SINK, 1)  # stale local nonce: resynchronised and retried
    assert w3.eth.get_balance(SINK) == 27


@pytest.mark.parametrize("node", [("--block-time", "1")], indirect=True)
def test_waits_for_confirmations(node: AnvilNode) -> None:
    w3 = open_rpc(node.url)
    payer = funder()
    receipt = Transactor(w3, lambda: payer, payer.address, confirmations=2, receipt_timeout=30).transfer(SINK, 1)
    assert w3.eth.block_number >= receipt["blockNumber"] + 1


@pytest.mark.parametrize("node", [("--no-mining",)], indirect=True)
def test_receipt_timeout_is_reported(node: AnvilNode) -> None:
    w3 = open_rpc(node.url)
    payer = funder()
    with pytest.raises(TransactionTimeout, match="not mined within 1 s"):
        Transactor(w3, lambda: payer, payer.address, receipt_timeout=1).transfer(SINK, 1)
