// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortium} from "./IConsortium.sol";
import {IDatasetRegistry} from "./IDatasetRegistry.sol";

/// @title DatasetRegistry
/// @notice Ownership, versions, lineage and erasure of encrypted datasets; see IDatasetRegistry.
/// @dev Membership is read live from the Consortium: a removed member keeps its datasets (the
/// record is history) but can no longer add to them.
contract DatasetRegistry is IDatasetRegistry {
    uint16 private constant _CODEC_RAW = 0x55;
    uint16 private constant _CODEC_DAG_PB = 0x70;

    /// @notice Most distinct ancestors a dataset may have. Licensing checks the consent of every
    /// ancestor at each grant and each recorded use, so this bounds their gas.
    uint256 public constant MAX_ANCESTORS = 16;

    IConsortium public immutable consortium;
    uint256 public datasetCount;

    mapping(uint256 datasetId => Dataset) private _datasets;
    mapping(uint256 datasetId => mapping(uint32 version => Version)) private _versions;
    mapping(uint256 datasetId => uint256[]) private _derivedFrom;
    mapping(uint256 datasetId => uint256[]) private _ancestors;
    mapping(uint256 datasetId => mapping(uint32 version => mapping(address recipient => bytes32))) private
        _keyBundles;

    /// @param consortium_ The Consortium whose active members may register datasets.
    constructor(IConsortium consortium_) {
        consortium = consortium_;
    }

    modifier onlyMember() {
        _checkMember(msg.sender);
        _;
    }

    modifier onlyOwner(uint256 datasetId) {
        _checkOwner(datasetId, msg.sender);
        _;
    }

    /// @inheritdoc IDatasetRegistry
    function registerDataset(VersionInput calldata input, uint256[] calldata parents)
        external
        onlyMember
        returns (uint256 datasetId)
    {
        for (uint256 i = 0; i < parents.length; ++i) {
            _checkDataset(parents[i]);
        }
        datasetId = ++datasetCount;
        _datasets[datasetId] = Dataset({owner: msg.sender, createdAt: uint64(block.timestamp), versionCount: 0});
        if (parents.length > 0) {
            _derivedFrom[datasetId] = parents;
            _ancestors[datasetId] = _lineage(parents);
        }
        emit DatasetRegistered(datasetId, msg.sender, parents);
        _appendVersion(datasetId, input);
    }

    /// @inheritdoc IDatasetRegistry
    function registerVersion(uint256 datasetId, VersionInput calldata input)
        external
        onlyMember
        onlyOwner(datasetId)
        returns (uint32)
    {
        return _appendVersion(datasetId, input);
    }

    /// @inheritdoc IDatasetRegistry
    function publishKeyBundle(uint256 datasetId, uint32 version_, address recipient, bytes32 bundleDigest)
        external
        onlyMember
        onlyOwner(datasetId)
    {
        _checkLiveVersion(datasetId, version_);
        if (recipient == address(0)) revert DatasetRegistryInvalidRecipient(recipient);
        _keyBundles[datasetId][version_][recipient] = bundleDigest;
        emit KeyBundlePublished(datasetId, version_, recipient, bundleDigest);
    }

    /// @inheritdoc IDatasetRegistry
    function eraseVersion(uint256 datasetId, uint32 version_) external onlyOwner(datasetId) {
        // No membership check: a member that left must still be able to honour an erasure request.
        _checkLiveVersion(datasetId, version_);
        _versions[datasetId][version_].erased = true;
        emit VersionErased(datasetId, version_);
    }

    /// @inheritdoc IDatasetRegistry
    function dataset(uint256 datasetId) external view returns (Dataset memory) {
        _checkDataset(datasetId);
        return _datasets[datasetId];
    }

    /// @inheritdoc IDatasetRegistry
    function version(uint256 datasetId, uint32 version_) external view returns (Version memory) {
        _checkVersion(datasetId, version_);
        return _versions[datasetId][version_];
    }

    /// @inheritdoc IDatasetRegistry
    function derivedFrom(uint256 datasetId) external view returns (uint256[] memory) {
        _checkDataset(datasetId);
        return _derivedFrom[datasetId];
    }

    /// @inheritdoc IDatasetRegistry
    function ancestors(uint256 datasetId) external view returns (uint256[] memory) {
        _checkDataset(datasetId);
        return _ancestors[datasetId];
    }

    /// @inheritdoc IDatasetRegistry
    function isErased(uint256 datasetId, uint32 version_) external view returns (bool) {
        _checkVersion(datasetId, version_);
        return _versions[datasetId][version_].erased;
    }

    /// @inheritdoc IDatasetRegistry
    function keyBundle(uint256 datasetId, uint32 version_, address recipient) external view returns (bytes32) {
        return _keyBundles[datasetId][version_][recipient];
    }

    function _appendVersion(uint256 datasetId, VersionInput calldata input) private returns (uint32 version_) {
        _checkInput(input);
        version_ = ++_datasets[datasetId].versionCount;
        _versions[datasetId][version_] = Version({
            commitment: input.commitment,
            payloadDigest: input.payloadDigest,
            metadataDigest: input.metadataDigest,
            size: input.size,
            registeredAt: uint64(block.timestamp),
            payloadCodec: input.payloadCodec,
            metadataCodec: input.metadataCodec,
            standard: input.standard,
            tier: input.tier,
            erased: false
        });
        emit VersionRegistered(
            datasetId,
            version_,
            input.commitment,
            input.payloadDigest,
            input.payloadCodec,
            input.metadataDigest,
            input.metadataCodec,
            input.size,
            input.standard,
            input.tier
        );
        if (input.ownerKeyDigest != bytes32(0)) {
            _keyBundles[datasetId][version_][msg.sender] = input.ownerKeyDigest;
            emit KeyBundlePublished(datasetId, version_, msg.sender, input.ownerKeyDigest);
        }
    }

    /// @dev The parents and their recorded ancestors, each once. Resolved at registration (the
    /// parents' ancestors are already closed), so readers never walk the graph.
    function _lineage(uint256[] calldata parents) private view returns (uint256[] memory lineage) {
        uint256[] memory found = new uint256[](MAX_ANCESTORS);
        uint256 n = 0;
        for (uint256 i = 0; i < parents.length; ++i) {
            n = _include(found, n, parents[i]);
            uint256[] storage up = _ancestors[parents[i]];
            for (uint256 j = 0; j < up.length; ++j) {
                n = _include(found, n, up[j]);
            }
        }
        lineage = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            lineage[i] = found[i];
        }
    }

    function _include(uint256[] memory found, uint256 n, uint256 datasetId) private pure returns (uint256) {
        for (uint256 i = 0; i < n; ++i) {
            if (found[i] == datasetId) return n;
        }
        if (n == MAX_ANCESTORS) revert DatasetRegistryLineageTooLarge(MAX_ANCESTORS);
        found[n] = datasetId;
        return n + 1;
    }

    function _checkInput(VersionInput calldata input) private pure {
        if (input.commitment == bytes32(0)) revert DatasetRegistryInvalidVersion("commitment");
        if (input.payloadDigest == bytes32(0) || !_knownCodec(input.payloadCodec)) {
            revert DatasetRegistryInvalidVersion("payload");
        }
        if (input.metadataDigest == bytes32(0) || !_knownCodec(input.metadataCodec)) {
            revert DatasetRegistryInvalidVersion("metadata");
        }
    }

    function _knownCodec(uint16 codec) private pure returns (bool) {
        return codec == _CODEC_RAW || codec == _CODEC_DAG_PB;
    }

    function _checkMember(address account) private view {
        if (!consortium.hasRoles(account, 0)) revert DatasetRegistryNotMember(account);
    }

    function _checkDataset(uint256 datasetId) private view {
        if (_datasets[datasetId].owner == address(0)) revert DatasetRegistryUnknownDataset(datasetId);
    }

    function _checkOwner(uint256 datasetId, address caller) private view {
        _checkDataset(datasetId);
        if (_datasets[datasetId].owner != caller) revert DatasetRegistryNotOwner(datasetId, caller);
    }

    function _checkVersion(uint256 datasetId, uint32 version_) private view {
        _checkDataset(datasetId);
        if (version_ == 0 || version_ > _datasets[datasetId].versionCount) {
            revert DatasetRegistryUnknownVersion(datasetId, version_);
        }
    }

    function _checkLiveVersion(uint256 datasetId, uint32 version_) private view {
        _checkVersion(datasetId, version_);
        if (_versions[datasetId][version_].erased) revert DatasetRegistryVersionErased(datasetId, version_);
    }
}
