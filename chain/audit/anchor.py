"""The ProvenanceAnchor contract from the SDK: deploy it, anchor a batch's Merkle root, read it back."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from web3 import Web3
from web3.logs import DISCARD

from ..contracts import bind, deploy_contract
from ..errors import NotAuthorized
from .merkle import StandardMerkleTree

if TYPE_CHECKING:
    from ..transactions import Transactor

PROVENANCE_ANCHOR = "ProvenanceAnchor"


class BatchKind(IntEnum):
    """What a batch's records are (the contract's `kind`; 0 is reserved)."""

    ACCESS = 1  # bulk access logs a license allows to be recorded in batches
    COMPUTE = 2  # compute job records
    METERING = 3  # measurement evidence behind metering records


@dataclass(frozen=True)
class Batch:
    batch_id: int
    member: str
    kind: int
    count: int
    anchored_at: int
    block_number: int
    root: bytes
    metadata_digest: bytes


def deploy_anchor(tx: Transactor, w3: Web3, consortium: str) -> tuple[str, int]:
    """Deploy a ProvenanceAnchor for the members of `consortium`; returns its address and block."""
    return deploy_contract(tx, w3, PROVENANCE_ANCHOR, Web3.to_checksum_address(consortium))


class AnchorClient:
    """One deployed ProvenanceAnchor; writes are signed by the transactor's account."""

    def __init__(self, w3: Web3, address: str, transactor: Transactor | None = None) -> None:
        self.contract = bind(w3, PROVENANCE_ANCHOR, address)
        self.address = self.contract.address
        self._tx = transactor

    def anchor_batch(self, tree: StandardMerkleTree, kind: BatchKind | int, *,
                     metadata_digest: bytes = b"\0" * 32) -> tuple[int, dict]:
        """Anchor the root of `tree` (its size as the count); returns the batch id and the receipt."""
        return self.anchor_root(tree.root, len(tree), kind, metadata_digest=metadata_digest)

    def anchor_root(self, root: bytes, count: int, kind: BatchKind | int, *,
                    metadata_digest: bytes = b"\0" * 32) -> tuple[int, dict]:
        if self._tx is None:
            raise NotAuthorized("this AnchorClient has no signing account", hint="open it with a transactor to anchor")
        receipt = self._tx.call_function(self.contract.functions.anchor(root, count, int(kind), metadata_digest),
                                         contract=PROVENANCE_ANCHOR)
        event = self.contract.events.BatchAnchored().process_receipt(receipt, errors=DISCARD)[0]
        return event["args"]["batchId"], receipt

    def batch(self, batch_id: int) -> Batch:
        member, kind, count, anchored_at, block_number, root, digest = self.contract.functions.batch(batch_id).call()
        return Batch(batch_id, member, kind, count, anchored_at, block_number, bytes(root), bytes(digest))

    def batch_count(self) -> int:
        return self.contract.functions.batchCount().call()

    def verify_on_chain(self, batch_id: int, proof: Sequence[bytes], leaf: bytes) -> bool:
        """The contract's own answer (OpenZeppelin MerkleProof) for `leaf` under batch `batch_id`."""
        return self.contract.functions.verify(batch_id, list(proof), leaf).call()
