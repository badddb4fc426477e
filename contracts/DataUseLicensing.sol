// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortium} from "./IConsortium.sol";
import {IDatasetRegistry} from "./IDatasetRegistry.sol";
import {IDataUseLicensing} from "./IDataUseLicensing.sol";

/// @title DataUseLicensing
/// @notice Requests, grants, revocations and recorded uses of datasets; see IDataUseLicensing.
/// @dev DUO matching: NRES covers everything; GRU covers GRU, HMB, DS and POA; HMB covers HMB
/// and DS; DS covers DS of the same disease only; POA covers POA only. A license is found by
/// (licensee, dataset, purpose, disease), so `isAuthorized` needs at most four lookups.
/// Membership: licenses and delegations record the admission numbers (IConsortium.activeAdmission)
/// of the members involved; a later mismatch means that membership ended, so removal ends them
/// for good and re-admission revives nothing.
/// Consent through lineage: consent is recorded per dataset, and a dataset is bound by its own
/// consent and by that of each ancestor the registry resolved at its registration (at most
/// IDatasetRegistry.MAX_ANCESTORS, so the check stays bounded). A consent required on a parent
/// after a copy was registered binds the copy as well, since the check runs at grant and use.
/// Priority use: the owner of a dataset with parents may declare, once, a window of
/// MIN_PRIORITY_WINDOW to MAX_PRIORITY_WINDOW from the declaration's block time. While the block
/// time is before its end, `request` is refused (DataUseLicensingPriorityWindow, carrying the
/// end) to every member that owns none of the dataset's direct parents; owners of a parent
/// request as usual. The rule binds `request` only: requests made and licenses granted before the
/// declaration are untouched, and once the window has closed anyone may request.
contract DataUseLicensing is IDataUseLicensing {
    uint32 public constant NRES = 4;
    uint32 public constant GRU = 42;
    uint32 public constant HMB = 6;
    uint32 public constant DS = 7;
    uint32 public constant POA = 11;
    uint32 private constant _ROLE_PATIENT = 1 << 5;
    /// @dev A century: long enough for any real use, short enough that now + term cannot overflow.
    uint64 public constant MAX_TERM = 100 * 365 days;
    uint8 private constant _MAX_ACCESS_KIND = 2;
    /// @notice Shortest priority window a derived dataset may declare.
    uint64 public constant MIN_PRIORITY_WINDOW = 1 days;
    /// @notice Longest priority window: a year of first use, after which the result is open to all.
    uint64 public constant MAX_PRIORITY_WINDOW = 365 days;
    /// @notice Most direct parents a dataset with a priority window may have: every request in
    /// the window looks at each parent's owner, so the list is bounded at declaration. The
    /// registry bounds the distinct ancestors (IDatasetRegistry's MAX_ANCESTORS, 16) but stores
    /// `derivedFrom` as given, repeated ids included; this is the same number.
    uint256 public constant MAX_PRIORITY_PARENTS = 16;

    IConsortium public immutable consortium;
    IDatasetRegistry public immutable registry;
    uint256 public licenseCount;

    struct ConsentRecord {
        address patient;
        bool required;
        bool given;
    }

    /// @dev A license as stored: `License` plus the requester's admission number, laid out so
    /// that everything validity needs sits in the first two slots.
    struct Record {
        address requester;
        Status status;
        bool futureVersions;
        bool batchedAccess;
        uint32 fromVersion;
        uint32 admission;
        uint64 datasetId;
        uint64 term;
        uint64 requestedAt;
        uint64 expiresAt;
        uint32 purpose;
        uint64 modifiers;
        bytes32 disease;
        bytes32 justificationHash;
    }

    /// @dev Admission numbers of the owner and of the delegate when the delegation was made.
    struct Delegation {
        uint32 ownerAdmission;
        uint32 delegateAdmission;
    }

    mapping(uint256 licenseId => Record) private _licenses;
    mapping(uint256 licenseId => mapping(uint32 version => bytes32)) private _keys;
    mapping(bytes32 slotKey => uint256 licenseId) private _current;
    mapping(uint256 datasetId => mapping(address delegate => Delegation)) private _delegates;
    mapping(uint256 datasetId => ConsentRecord) private _consents;
    mapping(uint256 datasetId => uint64 closesAt) private _priorityCloses;

    /// @param consortium_ Whose members may request and hold licenses.
    /// @param registry_ Where datasets and their owners are recorded.
    constructor(IConsortium consortium_, IDatasetRegistry registry_) {
        consortium = consortium_;
        registry = registry_;
    }

    // ---- requests and decisions ----

    /// @inheritdoc IDataUseLicensing
    function request(
        uint256 datasetId,
        uint32 purpose,
        bytes32 disease,
        uint64 modifiers,
        uint64 term,
        bytes32 justificationHash
    ) external returns (uint256 licenseId) {
        uint32 admission = _checkMember(msg.sender);
        if (_dataset(datasetId).owner == msg.sender) revert DataUseLicensingOwnDataset(datasetId);
        _checkPriority(datasetId);
        _checkPurpose(purpose, disease);
        if (term == 0 || term > MAX_TERM) revert DataUseLicensingInvalidTerm(term);
        licenseId = ++licenseCount;
        Record storage l = _licenses[licenseId];
        l.requester = msg.sender;
        l.admission = admission;
        l.purpose = purpose;
        l.status = Status.Requested;
        l.datasetId = uint64(datasetId);
        l.term = term;
        l.requestedAt = uint64(block.timestamp);
        l.modifiers = modifiers;
        l.disease = disease;
        l.justificationHash = justificationHash;
        emit LicenseRequested(licenseId, datasetId, msg.sender, purpose, disease, modifiers, term, justificationHash);
    }

    /// @inheritdoc IDataUseLicensing
    function grant(uint256 licenseId, Terms calldata terms, bytes32 bundleDigest) external {
        Record storage l = _license(licenseId);
        uint256 datasetId = l.datasetId;
        IDatasetRegistry.Dataset memory d = _dataset(datasetId);
        _checkActiveManager(licenseId, datasetId, d.owner);
        _checkStatus(licenseId, l, Status.Requested);
        _checkLicensee(l);
        _checkTerms(l, terms);
        _checkConsent(datasetId);
        uint32 current = d.versionCount;
        if (registry.isErased(datasetId, current)) revert DataUseLicensingVersionErased(datasetId, current);
        l.status = Status.Granted;
        l.purpose = terms.purpose;
        l.disease = terms.disease;
        l.modifiers = terms.modifiers;
        l.expiresAt = terms.expiresAt;
        l.futureVersions = terms.futureVersions;
        l.batchedAccess = terms.batchedAccess;
        l.fromVersion = current;
        _supersede(_slot(l.requester, datasetId, terms.purpose, terms.disease), licenseId);
        _emitGranted(licenseId, l);
        if (bundleDigest != bytes32(0)) _deliver(licenseId, l.fromVersion, bundleDigest);
    }

    /// @inheritdoc IDataUseLicensing
    function reject(uint256 licenseId) external {
        Record storage l = _license(licenseId);
        _checkManager(l.datasetId);
        _checkStatus(licenseId, l, Status.Requested);
        l.status = Status.Rejected;
        emit LicenseRejected(licenseId, msg.sender);
    }

    /// @inheritdoc IDataUseLicensing
    function revoke(uint256 licenseId) external {
        Record storage l = _license(licenseId);
        _checkManager(l.datasetId);
        _checkStatus(licenseId, l, Status.Granted);
        l.status = Status.Revoked;
        emit LicenseRevoked(licenseId, msg.sender);
    }

    /// @inheritdoc IDataUseLicensing
    function renew(uint256 licenseId, uint64 expiresAt) external {
        Record storage l = _license(licenseId);
        _checkActiveManager(licenseId, l.datasetId, _dataset(l.datasetId).owner);
        _checkStatus(licenseId, l, Status.Granted);
        uint64 latest = uint64(block.timestamp) + l.term;
        if (expiresAt <= block.timestamp || expiresAt > latest) revert DataUseLicensingInvalidExpiry(expiresAt, latest);
        l.expiresAt = expiresAt;
        emit LicenseRenewed(licenseId, expiresAt);
    }

    /// @inheritdoc IDataUseLicensing
    function deliverKey(uint256 licenseId, uint32 version, bytes32 bundleDigest) external {
        Record storage l = _license(licenseId);
        uint256 datasetId = l.datasetId;
        _checkActiveManager(licenseId, datasetId, _dataset(datasetId).owner);
        if (!_isValid(l)) revert DataUseLicensingNotValid(licenseId);
        _checkCovered(licenseId, l, version);
        // As publishKeyBundle: an erased version's keys are destroyed, none is handed out again.
        if (registry.isErased(datasetId, version)) revert DataUseLicensingVersionErased(datasetId, version);
        _deliver(licenseId, version, bundleDigest);
    }

    /// @inheritdoc IDataUseLicensing
    function recordAccess(uint256 licenseId, uint32 version, uint8 kind) external {
        Record storage l = _checkAccess(licenseId, msg.sender, version, kind);
        emit AccessRecorded(licenseId, l.datasetId, msg.sender, version, kind);
    }

    // ---- delegates and consent ----

    /// @inheritdoc IDataUseLicensing
    function setDelegate(uint256 datasetId, address delegate, bool allowed) external {
        uint32 ownerAdmission = _checkMember(msg.sender);
        _checkOwner(datasetId);
        if (allowed) {
            _delegates[datasetId][delegate] = Delegation(ownerAdmission, _checkMember(delegate));
        } else {
            delete _delegates[datasetId][delegate];
        }
        emit DelegateSet(datasetId, delegate, allowed);
    }

    /// @inheritdoc IDataUseLicensing
    function requireConsent(uint256 datasetId, address patient) external {
        _checkOwner(datasetId);
        ConsentRecord storage existing = _consents[datasetId];
        if (existing.required) revert DataUseLicensingConsentAlreadyRequired(datasetId, existing.patient);
        if (!consortium.hasRoles(patient, _ROLE_PATIENT)) revert DataUseLicensingNoPatient(patient);
        _consents[datasetId] = ConsentRecord({patient: patient, required: true, given: true});
        emit ConsentRequired(datasetId, patient);
    }

    /// @inheritdoc IDataUseLicensing
    function setConsent(uint256 datasetId, bool given) external {
        ConsentRecord storage c = _consents[datasetId];
        if (!c.required || c.patient != msg.sender) revert DataUseLicensingNotPatient(datasetId, msg.sender);
        c.given = given;
        emit ConsentChanged(datasetId, msg.sender, given);
    }

    // ---- priority use ----

    /// @inheritdoc IDataUseLicensing
    function declarePriorityWindow(uint256 datasetId, uint64 duration) external {
        _checkOwner(datasetId);
        uint64 closesAt = _priorityCloses[datasetId];
        if (closesAt != 0) revert DataUseLicensingPriorityAlreadyDeclared(datasetId, closesAt);
        uint256 parents = registry.derivedFrom(datasetId).length;
        if (parents == 0) revert DataUseLicensingNoParents(datasetId);
        if (parents > MAX_PRIORITY_PARENTS) {
            revert DataUseLicensingTooManyParents(datasetId, parents, MAX_PRIORITY_PARENTS);
        }
        if (duration < MIN_PRIORITY_WINDOW || duration > MAX_PRIORITY_WINDOW) {
            revert DataUseLicensingInvalidPriorityWindow(duration, MIN_PRIORITY_WINDOW, MAX_PRIORITY_WINDOW);
        }
        closesAt = uint64(block.timestamp) + duration;
        _priorityCloses[datasetId] = closesAt;
        emit PriorityWindowDeclared(datasetId, msg.sender, closesAt);
    }

    // ---- views ----

    /// @inheritdoc IDataUseLicensing
    function isAuthorized(address account, uint256 datasetId, uint32 purpose, bytes32 disease)
        external
        view
        returns (bool)
    {
        if (!_validPurpose(purpose, disease)) return false;
        if (_held(account, datasetId, NRES, 0)) return true;
        if (purpose == NRES) return false;
        if (_held(account, datasetId, GRU, 0)) return true;
        if (purpose == HMB || purpose == DS) {
            if (_held(account, datasetId, HMB, 0)) return true;
        }
        if (purpose == DS || purpose == POA) {
            return _held(account, datasetId, purpose, purpose == DS ? disease : bytes32(0));
        }
        return false;
    }

    /// @inheritdoc IDataUseLicensing
    function checkAccess(uint256 licenseId, address licensee, uint32 version, uint8 kind)
        external
        view
        returns (uint256 datasetId, bool batchedAccess)
    {
        Record storage l = _checkAccess(licenseId, licensee, version, kind);
        return (l.datasetId, l.batchedAccess);
    }

    /// @inheritdoc IDataUseLicensing
    function isValid(uint256 licenseId) external view returns (bool) {
        return _isValid(_licenses[licenseId]);
    }

    /// @inheritdoc IDataUseLicensing
    function isDelegate(uint256 datasetId, address account) external view returns (bool) {
        Delegation storage d = _delegates[datasetId][account];
        return d.delegateAdmission != 0 && consortium.activeAdmission(account) == d.delegateAdmission
            && consortium.activeAdmission(_dataset(datasetId).owner) == d.ownerAdmission;
    }

    /// @inheritdoc IDataUseLicensing
    function license(uint256 licenseId) external view returns (License memory) {
        Record storage l = _license(licenseId);
        return License({
            requester: l.requester,
            purpose: l.purpose,
            status: l.status,
            futureVersions: l.futureVersions,
            batchedAccess: l.batchedAccess,
            fromVersion: l.fromVersion,
            datasetId: l.datasetId,
            term: l.term,
            requestedAt: l.requestedAt,
            expiresAt: l.expiresAt,
            modifiers: l.modifiers,
            disease: l.disease,
            justificationHash: l.justificationHash
        });
    }

    /// @inheritdoc IDataUseLicensing
    function keyBundle(uint256 licenseId, uint32 version) external view returns (bytes32) {
        return _keys[licenseId][version];
    }

    /// @inheritdoc IDataUseLicensing
    function consent(uint256 datasetId) external view returns (bool required, address patient, bool given) {
        ConsentRecord storage c = _consents[datasetId];
        return (c.required, c.patient, c.given);
    }

    /// @inheritdoc IDataUseLicensing
    function priorityWindow(uint256 datasetId) external view returns (uint64 closesAt) {
        return _priorityCloses[datasetId];
    }

    // ---- internals ----

    /// @dev Refuses the caller while `datasetId`'s priority window is open, unless it owns one of
    /// the dataset's direct parents. The loop is bounded: a window is declared only for a dataset
    /// with at most MAX_PRIORITY_PARENTS parents, and `derivedFrom` never changes afterwards.
    function _checkPriority(uint256 datasetId) private view {
        uint64 closesAt = _priorityCloses[datasetId];
        if (block.timestamp >= closesAt) return;
        uint256[] memory parents = registry.derivedFrom(datasetId);
        for (uint256 i = 0; i < parents.length; ++i) {
            if (registry.dataset(parents[i]).owner == msg.sender) return;
        }
        revert DataUseLicensingPriorityWindow(datasetId, closesAt);
    }

    function _checkTerms(Record storage l, Terms calldata terms) private view {
        _checkPurpose(terms.purpose, terms.disease);
        if (!_covers(l.purpose, l.disease, terms.purpose, terms.disease)) {
            revert DataUseLicensingPurposeWidened(l.purpose, terms.purpose);
        }
        if (terms.modifiers & l.modifiers != l.modifiers) {
            revert DataUseLicensingModifiersDropped(l.modifiers, terms.modifiers);
        }
        uint64 latest = uint64(block.timestamp) + l.term;
        if (terms.expiresAt <= block.timestamp || terms.expiresAt > latest) {
            revert DataUseLicensingInvalidExpiry(terms.expiresAt, latest);
        }
    }

    function _emitGranted(uint256 licenseId, Record storage l) private {
        emit LicenseGranted(
            licenseId, l.datasetId, l.requester, l.purpose, l.disease, l.modifiers, l.expiresAt, l.fromVersion,
            l.futureVersions, l.batchedAccess
        );
    }

    /// @dev One valid license per (licensee, dataset, purpose, disease): a new grant replaces the
    /// previous one, so lookups stay O(1) and no older license can hide behind a newer one.
    function _supersede(bytes32 slot, uint256 licenseId) private {
        uint256 previous = _current[slot];
        if (previous != 0 && _licenses[previous].status == Status.Granted) {
            _licenses[previous].status = Status.Superseded;
            emit LicenseSuperseded(previous, licenseId);
        }
        _current[slot] = licenseId;
    }

    function _deliver(uint256 licenseId, uint32 version, bytes32 bundleDigest) private {
        _keys[licenseId][version] = bundleDigest;
        emit KeyDelivered(licenseId, version, bundleDigest);
    }

    function _held(address account, uint256 datasetId, uint32 purpose, bytes32 disease) private view returns (bool) {
        uint256 id = _current[_slot(account, datasetId, purpose, disease)];
        return id != 0 && _isValid(_licenses[id]);
    }

    function _isValid(Record storage l) private view returns (bool) {
        return _isCurrent(l) && _withdrawnConsent(l.datasetId) == 0;
    }

    /// @dev Granted, unexpired and its licensee still in the membership it asked in; consent apart.
    function _isCurrent(Record storage l) private view returns (bool) {
        if (l.status != Status.Granted || block.timestamp > l.expiresAt) return false;
        return consortium.activeAdmission(l.requester) == l.admission;
    }

    /// @dev The first of `datasetId` and its ancestors whose required consent is withdrawn, 0 if
    /// none (dataset ids start at 1). Bounded by the registry's MAX_ANCESTORS.
    function _withdrawnConsent(uint256 datasetId) private view returns (uint256) {
        if (_isWithdrawn(datasetId)) return datasetId;
        uint256[] memory lineage = registry.ancestors(datasetId);
        for (uint256 i = 0; i < lineage.length; ++i) {
            if (_isWithdrawn(lineage[i])) return lineage[i];
        }
        return 0;
    }

    function _isWithdrawn(uint256 datasetId) private view returns (bool) {
        ConsentRecord storage c = _consents[datasetId];
        return c.required && !c.given;
    }

    /// @dev Whether a license for (granted, gDisease) stays within a request for (requested, rDisease).
    function _covers(uint32 requested, bytes32 rDisease, uint32 granted, bytes32 gDisease)
        private
        pure
        returns (bool)
    {
        if (requested == NRES) return true;
        if (requested == GRU) return granted != NRES;
        if (requested == HMB) return granted == HMB || granted == DS;
        if (requested == DS) return granted == DS && gDisease == rDisease;
        return granted == requested; // POA
    }

    function _slot(address account, uint256 datasetId, uint32 purpose, bytes32 disease) private pure returns (bytes32) {
        return keccak256(abi.encode(account, datasetId, purpose, disease));
    }

    function _license(uint256 licenseId) private view returns (Record storage l) {
        l = _licenses[licenseId];
        if (l.status == Status.None) revert DataUseLicensingUnknownLicense(licenseId);
    }

    function _dataset(uint256 datasetId) private view returns (IDatasetRegistry.Dataset memory) {
        if (datasetId == 0 || datasetId > registry.datasetCount()) revert DataUseLicensingUnknownDataset(datasetId);
        return registry.dataset(datasetId);
    }

    /// @dev The caller's admission number; reverts unless it is an active member.
    function _checkMember(address account) private view returns (uint32 admission) {
        admission = consortium.activeAdmission(account);
        if (admission == 0) revert DataUseLicensingNotMember(account);
    }

    function _checkOwner(uint256 datasetId) private view {
        if (_dataset(datasetId).owner != msg.sender) revert DataUseLicensingNotOwner(datasetId, msg.sender);
    }

    /// @dev For grant, renew and deliverKey: the caller is an active member and the owner or a
    /// delegate in force, and never acts on its own license (a delegate that is also the licensee
    /// would otherwise grant, extend or key itself).
    function _checkActiveManager(uint256 licenseId, uint256 datasetId, address owner) private view {
        uint32 admission = _checkMember(msg.sender);
        if (msg.sender != owner) _checkDelegation(datasetId, owner, admission);
        if (_licenses[licenseId].requester == msg.sender) revert DataUseLicensingSelfGrant(licenseId);
    }

    /// @dev For reject and revoke: the owner, member or not (an owner that left may still stop a
    /// use), or a delegate in force (a delegate that left keeps nothing).
    function _checkManager(uint256 datasetId) private view {
        address owner = _dataset(datasetId).owner;
        if (msg.sender == owner) return;
        if (_delegates[datasetId][msg.sender].delegateAdmission == 0) {
            revert DataUseLicensingNotOwnerOrDelegate(datasetId, msg.sender);
        }
        _checkDelegation(datasetId, owner, _checkMember(msg.sender));
    }

    /// @dev A delegation counts only while the owner and the delegate are both active members in
    /// the admission they had when it was made.
    function _checkDelegation(uint256 datasetId, address owner, uint32 callerAdmission) private view {
        Delegation storage d = _delegates[datasetId][msg.sender];
        if (d.delegateAdmission == 0) revert DataUseLicensingNotOwnerOrDelegate(datasetId, msg.sender);
        if (d.delegateAdmission != callerAdmission || consortium.activeAdmission(owner) != d.ownerAdmission) {
            revert DataUseLicensingDelegationEnded(datasetId, msg.sender);
        }
    }

    /// @dev The request's licensee must still be the member (same admission) that asked.
    function _checkLicensee(Record storage l) private view {
        uint32 current = _checkMember(l.requester);
        if (current != l.admission) revert DataUseLicensingMembershipEnded(l.requester, l.admission, current);
    }

    function _checkStatus(uint256 licenseId, Record storage l, Status wanted) private view {
        if (l.status != wanted) revert DataUseLicensingWrongStatus(licenseId, l.status);
    }

    function _validPurpose(uint32 purpose, bytes32 disease) private pure returns (bool) {
        bool known = purpose == NRES || purpose == GRU || purpose == HMB || purpose == DS || purpose == POA;
        return known && (purpose == DS) == (disease != bytes32(0));
    }

    function _checkPurpose(uint32 purpose, bytes32 disease) private pure {
        if (!_validPurpose(purpose, disease)) revert DataUseLicensingInvalidPurpose(purpose, disease);
    }

    function _checkConsent(uint256 datasetId) private view {
        uint256 withdrawn = _withdrawnConsent(datasetId);
        if (withdrawn != 0) revert DataUseLicensingConsentWithdrawn(withdrawn);
    }

    /// @dev The rules of a recorded use, shared by recordAccess (one use) and checkAccess (the
    /// ProvenanceAnchor's batches of uses), so both refuse the same uses with the same errors.
    function _checkAccess(uint256 licenseId, address licensee, uint32 version, uint8 kind)
        private
        view
        returns (Record storage l)
    {
        l = _license(licenseId);
        if (l.requester != licensee) revert DataUseLicensingNotLicensee(licenseId, licensee);
        if (kind > _MAX_ACCESS_KIND) revert DataUseLicensingInvalidKind(kind);
        uint256 datasetId = l.datasetId;
        _checkConsent(datasetId);
        if (!_isCurrent(l)) revert DataUseLicensingNotValid(licenseId);
        _checkCovered(licenseId, l, version);
        if (registry.isErased(datasetId, version)) revert DataUseLicensingVersionErased(datasetId, version);
    }

    function _checkCovered(uint256 licenseId, Record storage l, uint32 version) private view {
        bool covered = version == l.fromVersion
            || (l.futureVersions && version > l.fromVersion && version <= registry.dataset(l.datasetId).versionCount);
        if (!covered) revert DataUseLicensingVersionNotCovered(licenseId, version);
    }
}
