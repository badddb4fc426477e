// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IConsortium} from "./IConsortium.sol";
import {IProvenanceAnchor} from "./IProvenanceAnchor.sol";

/// @title ProvenanceAnchor
/// @notice One Merkle root per batch of off-chain records; see IProvenanceAnchor.
/// @dev Nothing here loops over records or batches: anchoring writes one fixed-size Batch, so its
/// gas does not depend on how many records the root covers.
contract ProvenanceAnchor is IProvenanceAnchor {
    /// @notice The Consortium whose active members may anchor batches.
    IConsortium public immutable consortium;
    /// @inheritdoc IProvenanceAnchor
    uint256 public batchCount;

    mapping(uint256 batchId => Batch) private _batches;

    /// @notice Deploys an anchor for the members of `consortium_`.
    /// @param consortium_ Whose active members may anchor batches.
    constructor(IConsortium consortium_) {
        consortium = consortium_;
    }

    /// @inheritdoc IProvenanceAnchor
    function anchor(bytes32 root, uint64 count, uint8 kind, bytes32 metadataDigest)
        external
        returns (uint256 batchId)
    {
        if (consortium.activeAdmission(msg.sender) == 0) revert ProvenanceAnchorNotMember(msg.sender);
        if (root == bytes32(0)) revert ProvenanceAnchorInvalidRoot(root);
        if (count == 0) revert ProvenanceAnchorInvalidCount(count);
        if (kind == 0) revert ProvenanceAnchorInvalidKind(kind);
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

    /// @inheritdoc IProvenanceAnchor
    function batch(uint256 batchId) external view returns (Batch memory) {
        return _batch(batchId);
    }

    /// @inheritdoc IProvenanceAnchor
    function verify(uint256 batchId, bytes32[] calldata proof, bytes32 leaf) external view returns (bool) {
        return MerkleProof.verifyCalldata(proof, _batch(batchId).root, leaf);
    }

    function _batch(uint256 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.member == address(0)) revert ProvenanceAnchorUnknownBatch(batchId, batchCount);
    }
}
