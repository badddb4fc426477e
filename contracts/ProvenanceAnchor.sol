// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IConsortium} from "./IConsortium.sol";
import {IDataUseLicensing} from "./IDataUseLicensing.sol";
import {IProvenanceAnchor} from "./IProvenanceAnchor.sol";

/// @title ProvenanceAnchor
/// @notice One Merkle root per batch of off-chain records; see IProvenanceAnchor.
/// @dev Nothing here loops over records or batches: anchoring writes one fixed-size Batch, so its
/// gas does not depend on how many records the root covers. Access batches are judged by
/// DataUseLicensing.checkAccess, the very rules of recordAccess, so a batch proves no more than
/// the same uses recorded one by one would.
contract ProvenanceAnchor is IProvenanceAnchor {
    /// @notice The kind of an access batch, anchored only through `anchorAccesses`.
    uint8 public constant ACCESS_BATCH = 1;

    /// @notice The Consortium whose active members may anchor batches.
    IConsortium public immutable consortium;
    /// @notice The licensing contract whose licenses say who may anchor access batches.
    IDataUseLicensing public immutable licensing;
    /// @inheritdoc IProvenanceAnchor
    uint256 public batchCount;

    mapping(uint256 batchId => Batch) private _batches;

    /// @notice Deploys an anchor for the members of `consortium_` and the licenses of `licensing_`.
    /// @param consortium_ Whose active members may anchor batches.
    /// @param licensing_ Whose licenses allow (or not) access batches.
    constructor(IConsortium consortium_, IDataUseLicensing licensing_) {
        consortium = consortium_;
        licensing = licensing_;
    }

    /// @inheritdoc IProvenanceAnchor
    function anchor(bytes32 root, uint64 count, uint8 kind, bytes32 metadataDigest)
        external
        returns (uint256 batchId)
    {
        if (consortium.activeAdmission(msg.sender) == 0) revert ProvenanceAnchorNotMember(msg.sender);
        if (kind == 0 || kind == ACCESS_BATCH) revert ProvenanceAnchorInvalidKind(kind);
        batchId = _store(root, count, kind, metadataDigest);
    }

    /// @inheritdoc IProvenanceAnchor
    function anchorAccesses(
        uint256 licenseId,
        uint32 version,
        uint8 kind,
        bytes32 root,
        uint64 count,
        bytes32 metadataDigest
    ) external returns (uint256 batchId) {
        // checkAccess requires the caller to be the licensee, still in the membership it asked
        // in: no separate membership check is needed.
        (uint256 datasetId, bool batched) = licensing.checkAccess(licenseId, msg.sender, version, kind);
        if (!batched) revert ProvenanceAnchorBatchedAccessNotAllowed(licenseId);
        batchId = _store(root, count, ACCESS_BATCH, metadataDigest);
        emit AccessBatchAnchored(batchId, licenseId, datasetId, msg.sender, version, kind);
    }

    /// @inheritdoc IProvenanceAnchor
    function batch(uint256 batchId) external view returns (Batch memory) {
        return _batch(batchId);
    }

    /// @inheritdoc IProvenanceAnchor
    function verify(uint256 batchId, bytes32[] calldata proof, bytes32 leaf) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, _batch(batchId).root, leaf);
    }

    function _store(bytes32 root, uint64 count, uint8 kind, bytes32 metadataDigest) private returns (uint256 batchId) {
        if (root == bytes32(0)) revert ProvenanceAnchorInvalidRoot(root);
        if (count == 0) revert ProvenanceAnchorInvalidCount(count);
        batchId = ++batchCount;
        _batches[batchId] = Batch({
            member: msg.sender,
            kind: kind,
            count: count,
            anchoredAt: uint64(block.timestamp),
            blockNumber: uint64(block.number),
            root: root,
            metadataDigest: metadataDigest
        });
        emit BatchAnchored(batchId, msg.sender, kind, root, count, metadataDigest);
    }

    function _batch(uint256 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.member == address(0)) revert ProvenanceAnchorUnknownBatch(batchId, batchCount);
    }
}
