"""ProvenanceAnchor on the embedded chain and on anvil: only active members anchor, a root built
by fullchain.audit.merkle is checked by OpenZeppelin MerkleProof on chain for every record (and
altered records are not), and anchoring costs the same gas whatever the number of records."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from eth_abi import encode as abi_encode

from fullchain.audit.anchor import PROVENANCE_ANCHOR, AnchorClient, BatchKind, deploy_anchor
from fullchain.audit.merkle import StandardMerkleTree
from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.contracts import DATA_USE_LICENSING, DATASET_REGISTRY, deploy_contract
from fullchain.errors import NotAuthorized, TransactionReverted
from fullchain.models import Role

# The access record of ANCHORS.md 6: one leaf per read, salted so a proof reveals no sibling.
RECORD = ["uint256", "uint256", "address", "bytes32", "uint64", "bytes32"]
DIGEST = b"\x5a" * 32


@dataclass
class World:
    chain: object
    anchor: AnchorClient  # alice's
    gov: ConsortiumClient
    alice: str
    bob: AnchorClient  # a member, removed by the module's last test
    bob_address: str
    stranger: AnchorClient
    stranger_address: str


_WORLDS: dict[str, World] = {}


@pytest.fixture
def world(chain) -> World:  # noqa: ANN001
    if chain.kind not in _WORLDS:
        accounts = {n: chain.account() for n in ("gov", "alice", "bob", "stranger")}
        roles = {"gov": Role.GOVERNOR, "alice": Role.HOSPITAL, "bob": Role.HOSPITAL}
        founders = [Founder(accounts[n][0].address, r, secrets.token_bytes(32)) for n, r in roles.items()]
        consortium, _ = deploy_consortium(accounts["gov"][1], chain.w3, founders, threshold=1, voting_period=3600)
        gov = accounts["gov"][1]
        registry, _ = deploy_contract(gov, chain.w3, DATASET_REGISTRY, consortium)
        licensing, _ = deploy_contract(gov, chain.w3, DATA_USE_LICENSING, consortium, registry)
        address, _ = deploy_anchor(accounts["alice"][1], chain.w3, consortium, licensing)
        _WORLDS[chain.kind] = World(
            chain=chain, anchor=AnchorClient(chain.w3, address, accounts["alice"][1]),
            gov=ConsortiumClient(chain.w3, consortium, accounts["gov"][1]), alice=accounts["alice"][0].address,
            bob=AnchorClient(chain.w3, address, accounts["bob"][1]), bob_address=accounts["bob"][0].address,
            stranger=AnchorClient(chain.w3, address, accounts["stranger"][1]),
            stranger_address=accounts["stranger"][0].address)
    return _WORLDS[chain.kind]


def records(n: int) -> list[list]:
    grantee = "0x" + "ab" * 20
    return [[i, 7, grantee, b"\x01" * 32, 1_700_000_000 + i, secrets.token_bytes(32)] for i in range(n)]


def reverts(error: str, call, *args, **kwargs) -> TransactionReverted:  # noqa: ANN001
    with pytest.raises(TransactionReverted) as info:
        call(*args, **kwargs)
    assert info.value.error_name == error, info.value
    return info.value


def test_a_member_anchors_and_every_record_verifies_on_chain(world: World) -> None:
    batch = records(7)  # not a power of two: the OpenZeppelin layout, not level-by-level pairing
    tree = StandardMerkleTree.of(batch, RECORD)
    before = world.anchor.batch_count()
    batch_id, receipt = world.anchor.anchor_batch(tree, BatchKind.METERING, metadata_digest=DIGEST)
    assert batch_id == before + 1 == world.anchor.batch_count()
    event = world.anchor.contract.events.BatchAnchored().process_receipt(receipt)[0]["args"]
    assert dict(event) == {"batchId": batch_id, "member": world.alice, "kind": 3, "root": tree.root, "count": 7,
                           "metadataDigest": DIGEST}
    stored = world.anchor.batch(batch_id)
    block = world.chain.w3.eth.get_block(receipt["blockNumber"])
    assert (stored.member, stored.kind, stored.count, stored.root, stored.metadata_digest) == \
        (world.alice, 3, 7, tree.root, DIGEST)
    assert (stored.block_number, stored.anchored_at) == (receipt["blockNumber"], block["timestamp"])

    for i, record in enumerate(batch):
        leaf, proof = tree.leaf_hash(record), tree.proof(i)
        assert world.anchor.verify_on_chain(batch_id, proof, leaf)
        altered = list(record)
        altered[4] += 1  # another timestamp
        assert not world.anchor.verify_on_chain(batch_id, proof, tree.leaf_hash(altered))
        assert not world.anchor.verify_on_chain(batch_id, proof[:-1], leaf)
    # The one-hash leaf (no double hashing) is not a record: second-preimage protection holds on chain.
    from eth_utils import keccak
    assert not world.anchor.verify_on_chain(batch_id, tree.proof(0), keccak(abi_encode(RECORD, batch[0])))
    # A proof from another batch does not carry over.
    other = StandardMerkleTree.of(records(3), RECORD)
    other_id, _ = world.anchor.anchor_batch(other, BatchKind.COMPUTE)
    assert not world.anchor.verify_on_chain(batch_id, other.proof(0), other.leaf_hash(other.values[0][0]))
    assert world.anchor.verify_on_chain(other_id, other.proof(0), other.leaf_hash(other.values[0][0]))


def test_a_single_record_batch_has_the_leaf_as_root(world: World) -> None:
    tree = StandardMerkleTree.of(records(1), RECORD)
    assert tree.root == tree.leaf_hash(tree.values[0][0]) and tree.proof(0) == []
    batch_id, _ = world.anchor.anchor_batch(tree, BatchKind.METERING)
    assert world.anchor.verify_on_chain(batch_id, [], tree.root)


def test_refusals_name_the_problem(world: World) -> None:
    root = secrets.token_bytes(32)
    err = reverts("ProvenanceAnchorNotMember", world.stranger.anchor_root, root, 1, 2)
    assert err.error_args == {"account": world.stranger_address}
    err = reverts("ProvenanceAnchorInvalidRoot", world.anchor.anchor_root, b"\0" * 32, 1, 2)
    assert err.error_args == {"root": b"\0" * 32}
    reverts("ProvenanceAnchorInvalidCount", world.anchor.anchor_root, root, 0, 2)
    reverts("ProvenanceAnchorInvalidKind", world.anchor.anchor_root, root, 1, 0)
    # Access batches pass the license check of anchorAccesses: never through plain anchor.
    err = reverts("ProvenanceAnchorInvalidKind", world.anchor.anchor_root, root, 1, BatchKind.ACCESS)
    assert err.error_args == {"kind": 1}
    with pytest.raises(NotAuthorized, match="no signing account"):
        AnchorClient(world.chain.w3, world.anchor.address).anchor_root(root, 1, 2)
    count = world.anchor.batch_count()
    for read in (lambda: world.anchor.batch(count + 1), lambda: world.anchor.verify_on_chain(0, [], root)):
        with pytest.raises(Exception) as info:
            read()
        assert "ProvenanceAnchorUnknownBatch" in _revert_name(info.value)


def _revert_name(exc: Exception) -> str:
    from fullchain.contracts import decode_revert, revert_bytes

    return decode_revert(PROVENANCE_ANCHOR, revert_bytes(exc))[0]


def test_gas_per_anchor_does_not_depend_on_the_number_of_records(world: World) -> None:
    """10, 1k and 100k records: the same execution gas; the receipts differ only by the calldata
    cost of the count's bytes (4 gas per zero byte, 16 per other byte, EIP-2028)."""
    root = secrets.token_bytes(32)
    world.anchor.anchor_root(root, 1, 2)  # warm: batchCount is no longer zero
    used = {}
    for count in (10, 1_000, 100_000):
        _, receipt = world.anchor.anchor_root(root, count, BatchKind.COMPUTE, metadata_digest=DIGEST)
        tx = world.chain.w3.eth.get_transaction(receipt["transactionHash"])
        data = bytes(tx["input"])
        calldata_gas = sum(4 if b == 0 else 16 for b in data)
        used[count] = receipt["gasUsed"] - calldata_gas
    assert used[10] == used[1_000] == used[100_000], used


def test_a_removed_member_can_no_longer_anchor(world: World) -> None:
    root = secrets.token_bytes(32)
    world.bob.anchor_root(root, 3, 2)
    world.gov.execute(world.gov.propose_remove(world.bob_address))
    err = reverts("ProvenanceAnchorNotMember", world.bob.anchor_root, root, 3, 2)
    assert err.error_args == {"account": world.bob_address}
