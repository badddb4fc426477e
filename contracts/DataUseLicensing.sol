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

    IConsortium public immutable consortium;
    IDatasetRegistry public immutable registry;
    uint256 public licenseCount;

    struct ConsentRecord {
        address patient;
        bool required;
        bool given;
    }

    mapping(uint256 licenseId => License) private _licenses;
    mapping(uint256 licenseId => mapping(uint32 version => bytes32)) private _keys;
    mapping(bytes32 slotKey => uint256 licenseId) private _current;
    mapping(uint256 datasetId => mapping(address delegate => bool)) private _delegates;
    mapping(uint256 datasetId => ConsentRecord) private _consents;

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
        _checkMember(msg.sender);
        if (_ownerOf(datasetId) == msg.sender) revert DataUseLicensingOwnDataset(datasetId);
        _checkPurpose(purpose, disease);
        if (term == 0 || term > MAX_TERM) revert DataUseLicensingInvalidTerm(term);
        licenseId = ++licenseCount;
        License storage l = _licenses[licenseId];
        l.requester = msg.sender;
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
        License storage l = _license(licenseId);
        uint256 datasetId = l.datasetId;
        _checkMember(msg.sender);
        _checkOwnerOrDelegate(datasetId);
        if (l.requester == msg.sender) revert DataUseLicensingSelfGrant(licenseId);
        _checkStatus(licenseId, l, Status.Requested);
        _checkMember(l.requester);
        _checkTerms(l, terms);
        _checkConsent(datasetId);
        l.status = Status.Granted;
        l.purpose = terms.purpose;
        l.disease = terms.disease;
        l.modifiers = terms.modifiers;
        l.expiresAt = terms.expiresAt;
        l.futureVersions = terms.futureVersions;
        l.fromVersion = registry.dataset(datasetId).versionCount;
        _supersede(_slot(l.requester, datasetId, terms.purpose, terms.disease), licenseId);
        _emitGranted(licenseId, l);
        if (bundleDigest != bytes32(0)) _deliver(licenseId, l.fromVersion, bundleDigest);
    }

    /// @inheritdoc IDataUseLicensing
    function reject(uint256 licenseId) external {
        License storage l = _license(licenseId);
        _checkOwnerOrDelegate(l.datasetId);
        _checkStatus(licenseId, l, Status.Requested);
        l.status = Status.Rejected;
        emit LicenseRejected(licenseId, msg.sender);
    }

    /// @inheritdoc IDataUseLicensing
    function revoke(uint256 licenseId) external {
        License storage l = _license(licenseId);
        // No membership check: an owner that left must still be able to stop a use.
        _checkOwnerOrDelegate(l.datasetId);
        _checkStatus(licenseId, l, Status.Granted);
        l.status = Status.Revoked;
        emit LicenseRevoked(licenseId, msg.sender);
    }

    /// @inheritdoc IDataUseLicensing
    function renew(uint256 licenseId, uint64 expiresAt) external {
        License storage l = _license(licenseId);
        _checkMember(msg.sender);
        _checkOwnerOrDelegate(l.datasetId);
        _checkStatus(licenseId, l, Status.Granted);
        uint64 latest = uint64(block.timestamp) + l.term;
        if (expiresAt <= block.timestamp || expiresAt > latest) revert DataUseLicensingInvalidExpiry(expiresAt, latest);
        l.expiresAt = expiresAt;
        emit LicenseRenewed(licenseId, expiresAt);
    }

    /// @inheritdoc IDataUseLicensing
    function deliverKey(uint256 licenseId, uint32 version, bytes32 bundleDigest) external {
        License storage l = _license(licenseId);
        _checkMember(msg.sender);
        _checkOwnerOrDelegate(l.datasetId);
        if (!_isValid(l)) revert DataUseLicensingNotValid(licenseId);
        _checkCovered(licenseId, l, version);
        _deliver(licenseId, version, bundleDigest);
    }

    /// @inheritdoc IDataUseLicensing
    function recordAccess(uint256 licenseId, uint32 version, uint8 kind) external {
        License storage l = _license(licenseId);
        if (l.requester != msg.sender) revert DataUseLicensingNotLicensee(licenseId, msg.sender);
        if (kind > _MAX_ACCESS_KIND) revert DataUseLicensingInvalidKind(kind);
        _checkConsent(l.datasetId);
        if (!_isValid(l)) revert DataUseLicensingNotValid(licenseId);
        _checkCovered(licenseId, l, version);
        if (registry.version(l.datasetId, version).erased) revert DataUseLicensingVersionErased(l.datasetId, version);
        emit AccessRecorded(licenseId, l.datasetId, msg.sender, version, kind);
    }

    // ---- delegates and consent ----

    /// @inheritdoc IDataUseLicensing
    function setDelegate(uint256 datasetId, address delegate, bool allowed) external {
        _checkMember(msg.sender);
        _checkOwner(datasetId);
        if (allowed) _checkMember(delegate);
        _delegates[datasetId][delegate] = allowed;
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
    function isValid(uint256 licenseId) external view returns (bool) {
        return _isValid(_licenses[licenseId]);
    }

    /// @inheritdoc IDataUseLicensing
    function license(uint256 licenseId) external view returns (License memory) {
        return _license(licenseId);
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

    // ---- internals ----

    function _checkTerms(License storage l, Terms calldata terms) private view {
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

    function _emitGranted(uint256 licenseId, License storage l) private {
        emit LicenseGranted(
            licenseId, l.datasetId, l.requester, l.purpose, l.disease, l.modifiers, l.expiresAt, l.fromVersion,
            l.futureVersions
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

    function _isValid(License storage l) private view returns (bool) {
        if (l.status != Status.Granted || block.timestamp > l.expiresAt) return false;
        ConsentRecord storage c = _consents[l.datasetId];
        if (c.required && !c.given) return false;
        return consortium.hasRoles(l.requester, 0);
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

    function _license(uint256 licenseId) private view returns (License storage l) {
        l = _licenses[licenseId];
        if (l.status == Status.None) revert DataUseLicensingUnknownLicense(licenseId);
    }

    function _ownerOf(uint256 datasetId) private view returns (address) {
        if (datasetId == 0 || datasetId > registry.datasetCount()) revert DataUseLicensingUnknownDataset(datasetId);
        return registry.dataset(datasetId).owner;
    }

    function _checkMember(address account) private view {
        if (!consortium.hasRoles(account, 0)) revert DataUseLicensingNotMember(account);
    }

    function _checkOwner(uint256 datasetId) private view {
        if (_ownerOf(datasetId) != msg.sender) revert DataUseLicensingNotOwner(datasetId, msg.sender);
    }

    function _checkOwnerOrDelegate(uint256 datasetId) private view {
        if (_ownerOf(datasetId) != msg.sender && !_delegates[datasetId][msg.sender]) {
            revert DataUseLicensingNotOwnerOrDelegate(datasetId, msg.sender);
        }
    }

    function _checkStatus(uint256 licenseId, License storage l, Status wanted) private view {
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
        ConsentRecord storage c = _consents[datasetId];
        if (c.required && !c.given) revert DataUseLicensingConsentWithdrawn(datasetId);
    }

    function _checkCovered(uint256 licenseId, License storage l, uint32 version) private view {
        bool covered = version == l.fromVersion
            || (l.futureVersions && version > l.fromVersion && version <= registry.dataset(l.datasetId).versionCount);
        if (!covered) revert DataUseLicensingVersionNotCovered(licenseId, version);
    }
}
