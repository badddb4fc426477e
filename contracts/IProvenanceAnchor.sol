// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IProvenanceAnchor
/// @notice Merkle roots of batches of off-chain records (bulk access logs, compute job records,
/// metering evidence), one root per batch, anchored by active members of the Consortium. Access
/// batches (kind ACCESS_BATCH) are anchored only by a licensee whose license allows batched
/// access records, through `anchorAccesses`, under the same rules as DataUseLicensing.recordAccess.
/// @dev Trees are OpenZeppelin StandardMerkleTree-compatible: leaf =
/// keccak256(bytes.concat(keccak256(abi.encode(values...)))), sorted-pair inner nodes, so a record
/// is proven with OpenZeppelin `MerkleProof` here and with `fullchain.audit.merkle` off chain.
/// Anchoring costs the same gas whatever the number of records: only the root and the count are
/// stored. Sorted pairs do not bind a leaf's position, so a batch's records carry their own
/// sequence numbers or times and `count` commits to how many there are.
interface IProvenanceAnchor {
    /// @dev `kind` says what the records are (the SDK's BatchKind; 0 is reserved as "unset", 1 is
    /// an access batch). `anchoredAt` and `blockNumber` are those of the anchoring transaction's block.
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

    /// @notice Batch `batchId` (also announced by BatchAnchored) records uses of `kind`
    /// (DataUseLicensing's access kinds) of `version` of dataset `datasetId` by `licensee`, under
    /// license `licenseId`, which allowed it when the batch was anchored.
    event AccessBatchAnchored(
        uint256 indexed batchId,
        uint256 indexed licenseId,
        uint256 indexed datasetId,
        address licensee,
        uint32 version,
        uint8 kind
    );

    // ---- errors ----

    error ProvenanceAnchorNotMember(address account);
    error ProvenanceAnchorInvalidRoot(bytes32 root);
    error ProvenanceAnchorInvalidCount(uint64 count);
    error ProvenanceAnchorInvalidKind(uint8 kind);
    error ProvenanceAnchorUnknownBatch(uint256 batchId, uint256 batchCount);
    /// @notice License `licenseId` does not allow its uses to be recorded in batches (its grant
    /// did not set `batchedAccess`).
    error ProvenanceAnchorBatchedAccessNotAllowed(uint256 licenseId);

    // ---- members ----

    /// @notice Anchors the Merkle `root` of `count` off-chain records of `kind`, with the digest of
    /// the batch's metadata document (zero when there is none). Only active members of the
    /// Consortium. Batch ids run from 1 upwards. Kind ACCESS_BATCH is refused here
    /// (ProvenanceAnchorInvalidKind): access batches go through `anchorAccesses`.
    function anchor(bytes32 root, uint64 count, uint8 kind, bytes32 metadataDigest)
        external
        returns (uint256 batchId);

    /// @notice Anchors an access batch: the Merkle `root` of `count` records of uses of `kind`
    /// (DataUseLicensing's access kinds: 0 fetch, 1 compute, 2 other) of `version` under license
    /// `licenseId` by the caller, with `metadataDigest` the digest of the records' document. The
    /// caller must pass DataUseLicensing.checkAccess now (its errors come through unchanged) and
    /// the license must allow batched access records, else
    /// ProvenanceAnchorBatchedAccessNotAllowed. Emits BatchAnchored (kind ACCESS_BATCH) and
    /// AccessBatchAnchored.
    function anchorAccesses(
        uint256 licenseId,
        uint32 version,
        uint8 kind,
        bytes32 root,
        uint64 count,
        bytes32 metadataDigest
    ) external returns (uint256 batchId);

    // ---- views ----

    /// @notice The batch `batchId`; reverts with ProvenanceAnchorUnknownBatch if there is none.
    function batch(uint256 batchId) external view returns (Batch memory);

    /// @notice Whether `leaf` (an OpenZeppelin standard leaf hash) is under the root of batch
    /// `batchId`, by the sorted-pair `proof` from the leaf to the root.
    function verify(uint256 batchId, bytes32[] calldata proof, bytes32 leaf) external view returns (bool);

    /// @notice Number of batches anchored so far (ids run from 1 to this number).
    function batchCount() external view returns (uint256);
}
