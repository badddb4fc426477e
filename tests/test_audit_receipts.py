"""Receipts-trie proofs on the embedded chain and on anvil: the trie rebuilt from the node's
receipts has the header's receiptsRoot, a proof of one receipt verifies with nothing but the root,
the proven log decodes to the event the contract emitted, and altered or misplaced proofs are
refused. On anvil one block also mixes legacy, EIP-2930 and EIP-1559 transactions and a failed one."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

import pytest
from eth_account import Account

from fullchain.audit.anchor import AnchorClient, BatchKind, deploy_anchor
from fullchain.audit.headers import fetch_header
from fullchain.audit.receipts import (
    Log,
    Receipt,
    ReceiptProof,
    decode_log,
    fetch_block_receipts,
    prove_receipt,
    receipts_root,
    verify_log,
    verify_receipt_proof,
    verify_receipts_root,
)
from fullchain.consortium import Founder, deploy_consortium
from fullchain.contracts import DATA_USE_LICENSING, DATASET_REGISTRY, artifact, deploy_contract
from fullchain.errors import AuditError, VerificationFailed
from fullchain.models import Role

BATCH_ANCHORED = next(e for e in artifact("ProvenanceAnchor")["abi"] if e.get("name") == "BatchAnchored")
ROOT = b"\x42" * 32
DIGEST = b"\x17" * 32


def deploy_with_licensing(tx, w3, consortium: str) -> tuple[str, int]:  # noqa: ANN001
    """A ProvenanceAnchor with the DataUseLicensing it checks access batches against."""
    registry, _ = deploy_contract(tx, w3, DATASET_REGISTRY, consortium)
    licensing, _ = deploy_contract(tx, w3, DATA_USE_LICENSING, consortium, registry)
    return deploy_anchor(tx, w3, consortium, licensing)


@dataclass
class Anchored:
    chain: object
    anchor: AnchorClient
    member: str
    batch_id: int
    block: int
    index: int
    other_block: int  # another block with a transaction in it


_ANCHORED: dict[str, Anchored] = {}


@pytest.fixture
def anchored(chain) -> Anchored:  # noqa: ANN001
    if chain.kind not in _ANCHORED:
        acct, tx = chain.account()
        consortium, other = deploy_consortium(tx, chain.w3, [Founder(acct.address, Role.GOVERNOR,
                                                                     secrets.token_bytes(32))], threshold=1)
        address, _ = deploy_with_licensing(tx, chain.w3, consortium)
        anchor = AnchorClient(chain.w3, address, tx)
        batch_id, receipt = anchor.anchor_root(ROOT, 12, BatchKind.COMPUTE, metadata_digest=DIGEST)
        _ANCHORED[chain.kind] = Anchored(chain, anchor, acct.address, batch_id, receipt["blockNumber"],
                                         receipt["transactionIndex"], other)
    return _ANCHORED[chain.kind]


def test_the_rebuilt_trie_has_the_headers_receipts_root(anchored: Anchored) -> None:
    for number in (anchored.other_block, anchored.block):
        header = fetch_header(anchored.chain.w3, number)
        receipts = fetch_block_receipts(anchored.chain.w3, number)
        verify_receipts_root(receipts, header.receiptsRoot, block=number)
    # a receipt altered in any consensus field changes the root
    altered = [replace(receipts[anchored.index], cumulative_gas_used=receipts[anchored.index].cumulative_gas_used + 1)]
    with pytest.raises(VerificationFailed, match=f"receipts of block {number} build root"):
        verify_receipts_root(receipts[:anchored.index] + altered + receipts[anchored.index + 1:],
                             header.receiptsRoot, block=number)


def test_a_proven_receipt_yields_the_emitted_event(anchored: Anchored) -> None:
    w3 = anchored.chain.w3
    root = fetch_header(w3, anchored.block).receiptsRoot
    proof = prove_receipt(fetch_block_receipts(w3, anchored.block), anchored.index)
    proof = ReceiptProof.from_json(proof.to_json())  # what a bundle carries
    receipt = verify_receipt_proof(root, proof)
    assert receipt.status == 1 and len(receipt.logs) == 1
    log = verify_log(root, proof, 0)
    assert log.checksum_address == anchored.anchor.address
    assert decode_log(BATCH_ANCHORED, log) == {"batchId": anchored.batch_id, "member": anchored.member, "kind": 2,
                                               "root": ROOT, "count": 12, "metadataDigest": DIGEST}
    # the same event as web3 decodes it from the node's receipt
    node_receipt = w3.eth.get_transaction_receipt(w3.eth.get_block(anchored.block)["transactions"][anchored.index])
    web3_args = anchored.anchor.contract.events.BatchAnchored().process_receipt(node_receipt)[0]["args"]
    assert decode_log(BATCH_ANCHORED, log) == dict(web3_args)


def test_altered_or_misplaced_proofs_are_refused(anchored: Anchored) -> None:
    w3 = anchored.chain.w3
    root = fetch_header(w3, anchored.block).receiptsRoot
    other_root = fetch_header(w3, anchored.other_block).receiptsRoot
    proof = prove_receipt(fetch_block_receipts(w3, anchored.block), anchored.index)

    with pytest.raises(VerificationFailed, match="does not verify under receiptsRoot|holds no receipt"):
        verify_receipt_proof(other_root, proof)  # a proof for a different block
    for position in range(len(proof.nodes)):
        for offset in (0, len(proof.nodes[position]) // 2, len(proof.nodes[position]) - 1):
            node = bytearray(proof.nodes[position])
            node[offset] ^= 0x01
            nodes = list(proof.nodes)
            nodes[position] = bytes(node)
            with pytest.raises(VerificationFailed):
                verify_receipt_proof(root, ReceiptProof(proof.index, tuple(nodes)))
    with pytest.raises(VerificationFailed):
        verify_receipt_proof(root, ReceiptProof(proof.index, ()))
    with pytest.raises(VerificationFailed, match="holds no receipt 7|does not verify"):
        verify_receipt_proof(root, ReceiptProof(7, proof.nodes))  # no such transaction

    log = verify_log(root, proof, 0)
    with pytest.raises(VerificationFailed, match="no log 1"):
        verify_log(root, proof, 1)
    with pytest.raises(VerificationFailed, match="field 'data' differs"):
        verify_log(root, proof, 0, expected=Log(log.address, log.topics, log.data[:-1] + b"\x00"))
    with pytest.raises(VerificationFailed, match="field 'topics' differs"):
        verify_log(root, proof, 0, expected=Log(log.address, (log.topics[0], (99).to_bytes(32, "big"),
                                                               *log.topics[2:]), log.data))
    transfer = {"type": "event", "name": "Transfer", "anonymous": False, "inputs": [
        {"name": "from", "type": "address", "indexed": True}, {"name": "to", "type": "address", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False}]}
    with pytest.raises(VerificationFailed, match="not a Transfer event"):
        decode_log(transfer, log)


def test_receipt_encoding_round_trips_and_a_failed_status_encodes_as_empty() -> None:
    log = Log(b"\x11" * 20, (b"\x22" * 32,), b"data")
    from fullchain.audit.receipts import logs_bloom

    for type_ in (0, 1, 2, 3, 4):
        for status in (0, 1):
            receipt = Receipt(type_, status, 21_000, logs_bloom([log]), (log,))
            encoded = receipt.encode()
            assert Receipt.decode(encoded) == receipt
            assert (encoded[0] == type_) == (type_ != 0)
    body = Receipt(2, 0, 1, bytes(256), ()).encode()[1:]
    assert body[:1] == b"\xf9" and body[3] == 0x80  # after the 3-byte list header: status 0 is 0x80, not 0x00
    with pytest.raises(VerificationFailed, match="not an EIP-2718 type"):
        Receipt.decode(b"\x90" + body)
    with pytest.raises(VerificationFailed, match="not rlp"):
        Receipt.decode(b"\x02\xc0")


def test_a_served_bloom_that_disagrees_with_the_logs_is_refused() -> None:
    served = {"type": "0x2", "status": "0x1", "cumulativeGasUsed": "0x5208", "transactionIndex": "0x0",
              "logs": [{"address": "0x" + "11" * 20, "topics": ["0x" + "22" * 32], "data": "0x"}],
              "logsBloom": "0x" + "00" * 256}
    with pytest.raises(AuditError, match="logsBloom does not match its logs"):
        Receipt.from_rpc(served)


def test_one_block_of_mixed_transaction_types_and_a_failure(anvil_chain) -> None:  # noqa: ANN001
    """Anvil mines several transactions into one block when automine is off: legacy (type 0),
    EIP-2930 (1) and EIP-1559 (2) receipts, one of them failed, all under anvil's receiptsRoot."""
    w3 = anvil_chain.w3
    acct, tx = anvil_chain.account()
    consortium, _ = deploy_consortium(tx, w3, [Founder(acct.address, Role.GOVERNOR, secrets.token_bytes(32))],
                                      threshold=1)
    address, _ = deploy_with_licensing(tx, w3, consortium)
    anchor = AnchorClient(w3, address, tx)
    good = anchor.contract.functions.anchor(ROOT, 5, 2, DIGEST)._encode_transaction_data()
    bad = anchor.contract.functions.anchor(b"\0" * 32, 5, 2, DIGEST)._encode_transaction_data()  # reverts
    nonce, chain_id, price = w3.eth.get_transaction_count(acct.address), w3.eth.chain_id, 2 * w3.eth.gas_price
    base = {"to": address, "gas": 300_000, "chainId": chain_id, "value": 0}
    txs = [{**base, "data": good, "gasPrice": price},
           {**base, "data": good, "gasPrice": price, "accessList": [{"address": address, "storageKeys": []}],
            "type": 1},
           {**base, "data": bad, "maxFeePerGas": price, "maxPriorityFeePerGas": 1},
           {**base, "data": good, "maxFeePerGas": price, "maxPriorityFeePerGas": 1},
           {"to": Account.create().address, "value": 1, "gas": 21_000, "chainId": chain_id, "gasPrice": price}]
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        hashes = [w3.eth.send_raw_transaction(acct.sign_transaction({**t, "nonce": nonce + i}).raw_transaction)
                  for i, t in enumerate(txs)]
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    receipts_by_hash = [w3.eth.get_transaction_receipt(h) for h in hashes]
    number = receipts_by_hash[0]["blockNumber"]
    assert {r["blockNumber"] for r in receipts_by_hash} == {number}
    header = fetch_header(w3, number)
    receipts = fetch_block_receipts(w3, number)
    assert [r.type for r in receipts] == [0, 1, 2, 2, 0] and [r.status for r in receipts] == [1, 1, 0, 1, 1]
    assert receipts == [Receipt.from_rpc(r) for r in receipts_by_hash]  # eth_getBlockReceipts = one by one
    assert receipts_root(receipts) == header.receiptsRoot
    for index in range(len(receipts)):
        proven = verify_receipt_proof(header.receiptsRoot, prove_receipt(receipts, index))
        assert proven == receipts[index]
    assert decode_log(BATCH_ANCHORED, verify_log(header.receiptsRoot, prove_receipt(receipts, 3), 0))["batchId"] == 3
    with pytest.raises(VerificationFailed, match="lead|does not verify|holds no receipt"):
        verify_receipt_proof(header.receiptsRoot, ReceiptProof(2, prove_receipt(receipts, 3).nodes))
