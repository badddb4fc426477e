// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IDatasetRegistry
/// @notice Datasets owned by consortium members: append-only versions anchoring a salted
/// commitment to the plaintext, the CID of the encrypted payload and of the metadata document,
/// lineage between datasets, where each recipient's wrapped data key is stored, and erasure
/// tombstones. Nothing personal, no plaintext metadata of private datasets, no key is stored.
/// @dev CIDs are stored as their SHA-256 digest plus the multicodec (raw 0x55 or dag-pb 0x70):
/// every fullchain CID is CIDv1/sha2-256, so the full CID is rebuilt off chain at a third of
/// the storage cost of the string.
interface IDatasetRegistry {
    enum Tier {
        Public,
        Consortium,
        Restricted
    }

    struct Dataset {
        address owner;
        uint64 createdAt;
        uint32 versionCount;
    }

    struct Version {
        bytes32 commitment;
        bytes32 payloadDigest;
        bytes32 metadataDigest;
        uint64 size;
        uint64 registeredAt;
        uint16 payloadCodec;
        uint16 metadataCodec;
        uint8 standard;
        Tier tier;
        bool erased;
    }

    /// @notice What a new version anchors. `standard` is the SDK's data-standard code
    /// (CDISC SDTM, ADaM, SEND, OMOP CDM, FHIR, other).
    struct VersionInput {
        bytes32 commitment;
        bytes32 payloadDigest;
        bytes32 metadataDigest;
        uint64 size;
        uint16 payloadCodec;
        uint16 metadataCodec;
        uint8 standard;
        Tier tier;
        bytes32 ownerKeyDigest;
    }

    event DatasetRegistered(uint256 indexed datasetId, address indexed owner, uint256[] derivedFrom);
    event VersionRegistered(
        uint256 indexed datasetId, uint32 indexed version, bytes32 indexed commitment, bytes32 payloadDigest,
        uint16 payloadCodec, bytes32 metadataDigest, uint16 metadataCodec, uint64 size, uint8 standard, Tier tier
    );
    event KeyBundlePublished(
        uint256 indexed datasetId, uint32 indexed version, address indexed recipient, bytes32 bundleDigest
    );
    event VersionErased(uint256 indexed datasetId, uint32 indexed version);

    error DatasetRegistryNotMember(address account);
    error DatasetRegistryNotOwner(uint256 datasetId, address caller);
    error DatasetRegistryUnknownDataset(uint256 datasetId);
    error DatasetRegistryUnknownVersion(uint256 datasetId, uint32 version);
    error DatasetRegistryVersionErased(uint256 datasetId, uint32 version);
    error DatasetRegistryInvalidVersion(string field);
    error DatasetRegistryInvalidRecipient(address recipient);
    error DatasetRegistryLineageTooLarge(uint256 maxAncestors);

    /// @notice Registers a new dataset owned by the caller (an active member) with its first
    /// version, derived from the existing datasets `derivedFrom`. Its ancestors (parents, their
    /// parents, ...) are resolved and recorded now; a lineage of more than MAX_ANCESTORS distinct
    /// datasets is refused, which keeps every later consent check over it bounded.
    function registerDataset(VersionInput calldata input, uint256[] calldata derivedFrom)
        external
        returns (uint256 datasetId);

    /// @notice Appends a version to dataset `datasetId`. Only its owner, while a member.
    function registerVersion(uint256 datasetId, VersionInput calldata input) external returns (uint32 version);

    /// @notice Records where `recipient`'s HPKE-wrapped data key for a version is stored.
    /// Only the owner, while a member.
    function publishKeyBundle(uint256 datasetId, uint32 version, address recipient, bytes32 bundleDigest)
        external;

    /// @notice Marks a version erased (GDPR): the owner has destroyed its keys and unpinned
    /// its content; the commitment stays as the audit trail's tombstone.
    function eraseVersion(uint256 datasetId, uint32 version) external;

    /// @notice The dataset `datasetId`.
    function dataset(uint256 datasetId) external view returns (Dataset memory);

    /// @notice Version `version` (from 1) of dataset `datasetId`.
    function version(uint256 datasetId, uint32 version) external view returns (Version memory);

    /// @notice The datasets `datasetId` was derived from.
    function derivedFrom(uint256 datasetId) external view returns (uint256[] memory);

    /// @notice Every dataset `datasetId` descends from (parents, their parents, ...), each once,
    /// at most MAX_ANCESTORS. Empty for a dataset registered without parents.
    function ancestors(uint256 datasetId) external view returns (uint256[] memory);

    /// @notice Whether version `version` of `datasetId` is erased (reverts for unknown versions).
    function isErased(uint256 datasetId, uint32 version) external view returns (bool);

    /// @notice The digest of the raw block holding `recipient`'s wrapped key for a version (0: none).
    function keyBundle(uint256 datasetId, uint32 version, address recipient) external view returns (bytes32);

    /// @notice Number of datasets registered (ids run from 1 to this number).
    function datasetCount() external view returns (uint256);
}
