// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IDataUseLicensing
/// @notice Data-use authorization: members request a license to use a dataset for a purpose
/// (a GA4GH DUO permission, with a disease term for disease-specific research, plus DUO
/// modifiers); the owner or its delegate grants it for an explicit term, narrowing but never
/// widening the purpose, and delivers the data key wrapped to the licensee. Licenses can be
/// rejected, revoked at once, renewed; every use is recorded.
/// @dev A license shares its id with the request it answers. Purposes are DUO ids as numbers
/// (DUO:0000007 is 7); a disease term is the ASCII of its CURIE (e.g. "MONDO:0005015"),
/// left-aligned in a bytes32. Modifiers are a bitmask whose bits the SDK assigns to DUO ids.
/// Priority use: the owner of a dataset derived from others may open a priority window once;
/// until it closes, only owners of its direct parents may request it (the providers of the data
/// a result was made from get first use of that result).
interface IDataUseLicensing {
    enum Status {
        None,
        Requested,
        Granted,
        Rejected,
        Revoked,
        Superseded
    }

    struct License {
        address requester;
        uint32 purpose;
        Status status;
        bool futureVersions;
        bool batchedAccess;
        uint32 fromVersion;
        uint64 datasetId;
        uint64 term;
        uint64 requestedAt;
        uint64 expiresAt;
        uint64 modifiers;
        bytes32 disease;
        bytes32 justificationHash;
    }

    /// @notice What the owner grants: the purpose (requested or narrower), at least the requested
    /// modifiers, an explicit expiry, whether later versions are covered, and whether the
    /// licensee may record its uses in Merkle batches (IProvenanceAnchor.anchorAccesses) instead
    /// of one recordAccess each.
    struct Terms {
        uint64 expiresAt;
        uint32 purpose;
        bytes32 disease;
        uint64 modifiers;
        bool futureVersions;
        bool batchedAccess;
    }

    event LicenseRequested(
        uint256 indexed licenseId, uint256 indexed datasetId, address indexed requester, uint32 purpose,
        bytes32 disease, uint64 modifiers, uint64 term, bytes32 justificationHash
    );
    event LicenseGranted(
        uint256 indexed licenseId, uint256 indexed datasetId, address indexed licensee, uint32 purpose,
        bytes32 disease, uint64 modifiers, uint64 expiresAt, uint32 fromVersion, bool futureVersions,
        bool batchedAccess
    );
    event LicenseRejected(uint256 indexed licenseId, address indexed by);
    event LicenseRevoked(uint256 indexed licenseId, address indexed by);
    event LicenseSuperseded(uint256 indexed licenseId, uint256 indexed by);
    event LicenseRenewed(uint256 indexed licenseId, uint64 expiresAt);
    event KeyDelivered(uint256 indexed licenseId, uint32 indexed version, bytes32 bundleDigest);
    event AccessRecorded(
        uint256 indexed licenseId, uint256 indexed datasetId, address indexed licensee, uint32 version, uint8 kind
    );
    event DelegateSet(uint256 indexed datasetId, address indexed delegate, bool allowed);
    event ConsentRequired(uint256 indexed datasetId, address indexed patient);
    event ConsentChanged(uint256 indexed datasetId, address indexed patient, bool given);
    /// @notice The owner of `datasetId` opened its priority window, which closes at `closesAt`.
    event PriorityWindowDeclared(uint256 indexed datasetId, address indexed owner, uint64 closesAt);

    error DataUseLicensingNotMember(address account);
    error DataUseLicensingNotOwner(uint256 datasetId, address caller);
    error DataUseLicensingNotOwnerOrDelegate(uint256 datasetId, address caller);
    error DataUseLicensingNotLicensee(uint256 licenseId, address caller);
    error DataUseLicensingNotPatient(uint256 datasetId, address caller);
    error DataUseLicensingOwnDataset(uint256 datasetId);
    error DataUseLicensingUnknownLicense(uint256 licenseId);
    error DataUseLicensingUnknownDataset(uint256 datasetId);
    error DataUseLicensingWrongStatus(uint256 licenseId, Status status);
    error DataUseLicensingInvalidPurpose(uint32 purpose, bytes32 disease);
    error DataUseLicensingPurposeWidened(uint32 requested, uint32 granted);
    error DataUseLicensingModifiersDropped(uint64 requested, uint64 granted);
    error DataUseLicensingInvalidExpiry(uint64 expiresAt, uint64 latest);
    error DataUseLicensingInvalidTerm(uint64 term);
    error DataUseLicensingNotValid(uint256 licenseId);
    error DataUseLicensingVersionNotCovered(uint256 licenseId, uint32 version);
    error DataUseLicensingConsentWithdrawn(uint256 datasetId);
    error DataUseLicensingNoPatient(address patient);
    error DataUseLicensingConsentAlreadyRequired(uint256 datasetId, address patient);
    error DataUseLicensingSelfGrant(uint256 licenseId);
    error DataUseLicensingInvalidKind(uint8 kind);
    error DataUseLicensingVersionErased(uint256 datasetId, uint32 version);
    error DataUseLicensingMembershipEnded(address account, uint32 recordedAdmission, uint32 currentAdmission);
    error DataUseLicensingDelegationEnded(uint256 datasetId, address delegate);
    /// @notice `datasetId` is in its priority window until `closesAt`, and the caller owns none
    /// of its parents.
    error DataUseLicensingPriorityWindow(uint256 datasetId, uint64 closesAt);
    /// @notice Only a dataset registered as derived from others may declare a priority window.
    error DataUseLicensingNoParents(uint256 datasetId);
    /// @notice `datasetId` has `parents` direct parents, more than a priority window allows (`max`).
    error DataUseLicensingTooManyParents(uint256 datasetId, uint256 parents, uint256 max);
    /// @notice `datasetId` already declared its priority window (closing at `closesAt`).
    error DataUseLicensingPriorityAlreadyDeclared(uint256 datasetId, uint64 closesAt);
    /// @notice A priority window lasts from `min` to `max` seconds; `duration` is outside.
    error DataUseLicensingInvalidPriorityWindow(uint64 duration, uint64 min, uint64 max);

    /// @notice Asks the owner of `datasetId` for a license. Only members other than the owner.
    /// The requester's admission number (IConsortium.activeAdmission) is recorded: the request,
    /// and the license granted on it, end for good if that membership ends, even if the account
    /// is admitted again. While the dataset's priority window is open (see
    /// `declarePriorityWindow`), only owners of its direct parents may request it; anyone else is
    /// refused with DataUseLicensingPriorityWindow, which says when the window closes.
    function request(
        uint256 datasetId,
        uint32 purpose,
        bytes32 disease,
        uint64 modifiers,
        uint64 term,
        bytes32 justificationHash
    ) external returns (uint256 licenseId);

    /// @notice Grants request `licenseId` on `terms`: until `terms.expiresAt` (at most the
    /// requested term from now), for the requested purpose or a narrower one, with at least the
    /// requested modifiers, covering the current version (whose wrapped key is at `bundleDigest`)
    /// and, if `terms.futureVersions`, later ones; if `terms.batchedAccess`, the licensee may
    /// record its uses in Merkle batches through the ProvenanceAnchor (renewal keeps both). A
    /// license already granted to the same licensee for the same dataset, purpose and disease is
    /// superseded by this one. Owner or delegate
    /// only, while a member, never to itself; refused while the consent of the dataset or of any
    /// of its ancestors is withdrawn, or when the current version is erased.
    function grant(uint256 licenseId, Terms calldata terms, bytes32 bundleDigest) external;

    /// @notice Declines a pending request. The owner (even one that left the consortium) or a
    /// delegate in force.
    function reject(uint256 licenseId) external;

    /// @notice Ends a granted license now. The owner (even one that left the consortium: it may
    /// always stop a use) or a delegate in force; a delegate that left has no power left.
    function revoke(uint256 licenseId) external;

    /// @notice Sets a new expiry for a granted license: in the future, at most the requested term
    /// from now (renewal never makes a license longer than what was asked for). Owner or delegate,
    /// while a member, never for its own license.
    function renew(uint256 licenseId, uint64 expiresAt) external;

    /// @notice Records where the licensee's wrapped key for a later version is stored. Only while
    /// the license is valid and covers that version, which is not erased. Owner or delegate,
    /// while a member, never to itself.
    function deliverKey(uint256 licenseId, uint32 version, bytes32 bundleDigest) external;

    /// @notice Records one use (`kind`: 0 fetch, 1 compute, 2 other) of a version by its licensee;
    /// refused unless the license is valid now (the rules of `checkAccess`).
    function recordAccess(uint256 licenseId, uint32 version, uint8 kind) external;

    /// @notice Names (or removes) a delegate, an active member, who may grant, reject, revoke,
    /// renew and deliver keys for `datasetId`. Owner only, while a member. The delegation counts
    /// only while the owner and the delegate both stay in the membership (admission) they had
    /// when it was made: the removal of either ends it for good.
    function setDelegate(uint256 datasetId, address delegate, bool allowed) external;

    /// @notice Flags `datasetId` as needing the consent of `patient` (a member with the patient
    /// role); consent starts as given. Once only: the owner can neither reset a withdrawal nor
    /// swap the patient. Owner only. Datasets derived from `datasetId` (directly or through
    /// copies of copies, see IDatasetRegistry.ancestors) are bound by this consent too.
    function requireConsent(uint256 datasetId, address patient) external;

    /// @notice The patient gives (`given` true) or withdraws consent for `datasetId`.
    function setConsent(uint256 datasetId, bool given) external;

    /// @notice Opens the priority window of `datasetId`, a dataset registered as derived from
    /// others: from now until now + `duration` (between MIN_PRIORITY_WINDOW and
    /// MAX_PRIORITY_WINDOW), only owners of its direct parents (IDatasetRegistry.derivedFrom) may
    /// request it. Owner only; once per dataset (a window can be neither extended nor reopened);
    /// refused for a dataset without parents, or with more direct parents than
    /// MAX_PRIORITY_PARENTS.
    function declarePriorityWindow(uint256 datasetId, uint64 duration) external;

    /// @notice Whether `account` holds a license valid now for `datasetId` covering `purpose`
    /// (and `disease` for disease-specific research), following the DUO hierarchy.
    function isAuthorized(address account, uint256 datasetId, uint32 purpose, bytes32 disease)
        external
        view
        returns (bool);

    /// @notice Reverts, with the error `recordAccess` would give, unless `licensee` may record a
    /// use of `kind` of `version` under license `licenseId` now: it is the license's holder, the
    /// kind is known, the license is granted, unexpired and its holder still in the membership
    /// it asked in, the consent of the dataset and its ancestors holds, and the version is
    /// covered and not erased. Returns the license's dataset and whether its terms allow
    /// batched access records (IProvenanceAnchor.anchorAccesses checks through this).
    function checkAccess(uint256 licenseId, address licensee, uint32 version, uint8 kind)
        external
        view
        returns (uint256 datasetId, bool batchedAccess);

    /// @notice Whether license `licenseId` is granted, unexpired, its licensee still in the
    /// membership it asked in, and the consent of its dataset and of every ancestor holds.
    function isValid(uint256 licenseId) external view returns (bool);

    /// @notice Whether `account` is a delegate for `datasetId` whose delegation is in force now.
    function isDelegate(uint256 datasetId, address account) external view returns (bool);

    /// @notice The license (or request) `licenseId`.
    function license(uint256 licenseId) external view returns (License memory);

    /// @notice Where the licensee's wrapped key for `version` is stored (0: none delivered).
    function keyBundle(uint256 licenseId, uint32 version) external view returns (bytes32);

    /// @notice Number of requests so far (ids run from 1).
    function licenseCount() external view returns (uint256);

    /// @notice Whether `datasetId` itself needs consent, from whom, and whether it is given now
    /// (its ancestors' consent also binds it: see `isValid`).
    function consent(uint256 datasetId) external view returns (bool required, address patient, bool given);

    /// @notice When the priority window of `datasetId` closes (0: none was declared). The window
    /// is open while the block time is before `closesAt`.
    function priorityWindow(uint256 datasetId) external view returns (uint64 closesAt);
}
