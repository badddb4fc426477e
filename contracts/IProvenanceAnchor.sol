// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IProvenanceAnchor
/// @notice Merkle roots of batches of off-chain records (bulk access logs, compute job records,
/// metering evidence), one root per batch, anchored by active members of the Consortium.
/// @dev Trees are OpenZeppelin StandardMerkleTree-compatible: leaf =
/// keccak256(bytes.concat(keccak256(abi.encode(values...)))), sorted-pair inner nodes, so a record
/// is proven with OpenZeppelin `MerkleProof` here and with `fullchain.audit.merkle` off chain.
/// Anchoring costs the same gas whatever the number of records: only the root and the count are
/// stored. Sorted pairs do not bind a leaf's position, so a batch's records carry their own
/// sequence numbers and `count` commits to how many there are.
interface IProvenanceAnchor {
    /// @dev `kind` says what the records are (the SDK's BatchKind; 0 is reserved as "unset").
    /// `anchoredAt` and `blockNumber` are those of the anchoring transaction's block.
    struct Batch {
        address member;
        uint8 kind;
        uint64 count;
        uint64 anchoredAt;
        uint64 blockNumber;
        bytes32 root;
        bytes32 metadataDigest;
    }

    // ---- events ----

    /// @notice `member` anchored batch `batchId`: `count` records of `kind` under `root`, described
    /// by the off-chain document whose digest is `metadataDigest`.
    event BatchAnchored(
        uint256 indexed batchId,
        address indexed member,
        uint8 indexed kind,
        bytes32 root,
        uint64 count,
        bytes32 metadataDigest
    );

    // ---- errors ----

    error ProvenanceAnchorNotMember(address account);
    error ProvenanceAnchorInvalidRoot(bytes32 root);
    error ProvenanceAnchorInvalidCount(uint64 count);
    error ProvenanceAnchorInvalidKind(uint8 kind);
    error ProvenanceAnchorUnknownBatch(uint256 batchId, uint256 batchCount);

    // ---- members ----

    /// @notice Anchors the Merkle `root` of `count` off-chain records of `kind`, with the digest of
    /// the batch's metadata document (zero when there is none). Only active members of the
    /// Consortium. Batch ids run from 1 upwards.
    function anchor(bytes32 root, uint64 count, uint8 kind, bytes32 metadataDigest)
        external
        returns (uint256 batchId);

    // ---- views ----

    /// @notice The batch `batchId`; reverts with ProvenanceAnchorUnknownBatch if there is none.
    function batch(uint256 batchId) external view returns (Batch memory);

    /// @notice Whether `leaf` (an OpenZeppelin standard leaf hash) is under the root of batch
    /// `batchId`, by the sorted-pair `proof` from the leaf to the root.
    function verify(uint256 batchId, bytes32[] calldata proof, bytes32 leaf) external view returns (bool);

    /// @notice Number of batches anchored so far (ids run from 1 to this number).
    function batchCount() external view returns (uint256);
}
