// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsortium} from "./IConsortium.sol";
import {IContributionMeter} from "./IContributionMeter.sol";
import {IDataUseLicensing} from "./IDataUseLicensing.sol";

/// @title ContributionMeter
/// @notice Epochs of attested, disputable contribution records in three dimensions; see
/// IContributionMeter for the rules.
/// @dev Governance is the Consortium contract itself: every setter and `resolve` accept calls
/// from it only, which it makes when k of n governors approved a call proposal
/// (IConsortium.proposeCall). Epoch lengths are kept as segments (first epoch, start, length),
/// one per change; a lookup is a binary search over them, bounded by the number of changes.
/// Patient points read the licensing contract's consent when a record is counted and remember
/// the patient with the record, so a withdrawal never depends on consent changed since.
contract ContributionMeter is IContributionMeter {
    uint32 private constant _ROLE_ATTESTER = 1 << 7;
    uint8 private constant _KINDS = 4;
    bytes16 private constant _DATASET_TAG = bytes16(uint128(1) << 120);

    uint64 public constant MIN_EPOCH_LENGTH = 1 minutes;
    uint64 public constant MAX_EPOCH_LENGTH = 365 days;
    uint64 public constant MIN_DISPUTE_WINDOW = 1 minutes;
    uint64 public constant MAX_DISPUTE_WINDOW = 365 days;
    uint32 public constant MAX_ATTESTATIONS = 32;
    /// @notice Weights are fixed-point numbers with 18 decimals: a weight of 1e18 gives one
    /// point per unit of amount.
    uint256 public constant WEIGHT_SCALE = 1e18;
    /// @dev Amount and weight each fit in 128 bits, so their product never overflows.
    uint256 public constant MAX_WEIGHT = type(uint128).max;
    uint256 public constant MAX_AMOUNT = type(uint128).max;

    IConsortium public immutable consortium;
    /// @inheritdoc IContributionMeter
    IDataUseLicensing public immutable licensing;
    uint64 public disputeWindow;
    uint32 public attestationsRequired;
    uint256 public recordCount;

    struct Segment {
        uint64 firstEpoch;
        uint64 start;
        uint64 length;
    }

    Segment[] private _segments;
    uint256[_KINDS] private _weights;

    mapping(uint256 recordId => Record) private _records;
    mapping(bytes32 key => uint256 recordId) private _recordIds;
    mapping(uint256 recordId => mapping(address attester => bool)) private _attested;
    mapping(uint64 epoch => mapping(address member => uint256[3])) private _points;
    mapping(uint64 epoch => uint256[3]) private _totals;
    mapping(uint64 epoch => uint256) private _openDisputes;
    mapping(uint64 epoch => uint64 finalizedAt) private _finalizedAt;
    mapping(uint64 epoch => mapping(address patient => uint256)) private _patientPoints;
    mapping(uint64 epoch => uint256) private _patientTotals;
    mapping(uint256 recordId => address patient) private _recordPatient;

    /// @param consortium_ Whose members submit, attest and dispute, and whose governors govern.
    /// @param licensing_ Whose consent records decide which patient a data record rewards (the
    /// zero address: no patient points, for a meter deployed without a licensing contract).
    /// @param epochLength_ Seconds per epoch (MIN_EPOCH_LENGTH..MAX_EPOCH_LENGTH); epoch 0 starts now.
    /// @param disputeWindow_ Seconds after an epoch's end during which its records stay open.
    /// @param attestationsRequired_ Attestations a record needs to count (1..MAX_ATTESTATIONS).
    /// @param weights Weight of each measure kind, in Kind order (WEIGHT_SCALE: one point per unit).
    constructor(
        IConsortium consortium_,
        IDataUseLicensing licensing_,
        uint64 epochLength_,
        uint64 disputeWindow_,
        uint32 attestationsRequired_,
        uint256[4] memory weights
    ) {
        consortium = consortium_;
        licensing = licensing_;
        _checkEpochLength(epochLength_);
        _segments.push(Segment(0, uint64(block.timestamp), epochLength_));
        emit EpochLengthChanged(0, epochLength_, 0, uint64(block.timestamp));
        _setDisputeWindow(disputeWindow_);
        _setAttestationsRequired(attestationsRequired_);
        for (uint8 kind = 0; kind < _KINDS; ++kind) {
            _setWeight(kind, weights[kind]);
        }
    }

    modifier onlyConsortium() {
        if (msg.sender != address(consortium)) revert ContributionMeterNotConsortium(msg.sender);
        _;
    }

    // ---- members ----

    /// @inheritdoc IContributionMeter
    function submit(uint64 epoch, uint8 kind, bytes32 subject, uint256 amount, bytes32 evidenceDigest)
        external
        returns (uint256 recordId)
    {
        if (consortium.activeAdmission(msg.sender) == 0) revert ContributionMeterNotMember(msg.sender);
        _checkKind(kind);
        if (amount == 0 || amount > MAX_AMOUNT) revert ContributionMeterInvalidAmount(amount, MAX_AMOUNT);
        if (evidenceDigest == bytes32(0)) revert ContributionMeterInvalidDigest(evidenceDigest);
        _checkOpen(epoch);
        Dimension dimension = _dimension(kind);
        bytes32 key = keccak256(abi.encode(epoch, msg.sender, dimension, subject));
        uint256 existing = _recordIds[key];
        if (existing != 0) revert ContributionMeterDuplicateRecord(epoch, msg.sender, dimension, subject, existing);
        recordId = ++recordCount;
        _recordIds[key] = recordId;
        uint256 points_ = amount * _weights[kind] / WEIGHT_SCALE;
        uint32 required = attestationsRequired;
        _records[recordId] = Record({
            member: msg.sender,
            epoch: epoch,
            kind: Kind(kind),
            status: Status.Submitted,
            attestations: 0,
            required: required,
            subject: subject,
            amount: amount,
            points: points_,
            evidenceDigest: evidenceDigest
        });
        emit RecordSubmitted(
            recordId, epoch, msg.sender, Kind(kind), dimension, subject, amount, points_, evidenceDigest, required
        );
    }

    /// @inheritdoc IContributionMeter
    function attest(uint256 recordId) external {
        Record storage r = _record(recordId);
        if (!consortium.hasRoles(msg.sender, _ROLE_ATTESTER)) revert ContributionMeterNotAttester(msg.sender);
        if (r.member == msg.sender) revert ContributionMeterSelfAttestation(recordId, msg.sender);
        if (_attested[recordId][msg.sender]) revert ContributionMeterAlreadyAttested(recordId, msg.sender);
        if (r.status == Status.Rejected) revert ContributionMeterWrongStatus(recordId, r.status);
        _checkOpen(r.epoch);
        _attested[recordId][msg.sender] = true;
        uint32 attestations = ++r.attestations;
        emit RecordAttested(recordId, msg.sender, attestations);
        // Counted exactly once: when the threshold is reached by this attestation.
        if (attestations == r.required && r.status != Status.Disputed) _count(recordId, r);
    }

    /// @inheritdoc IContributionMeter
    function dispute(uint256 recordId, bytes32 reasonDigest) external {
        Record storage r = _record(recordId);
        if (consortium.activeAdmission(msg.sender) == 0) revert ContributionMeterNotMember(msg.sender);
        if (reasonDigest == bytes32(0)) revert ContributionMeterInvalidDigest(reasonDigest);
        if (r.status != Status.Submitted) revert ContributionMeterWrongStatus(recordId, r.status);
        _checkOpen(r.epoch);
        bool counted = r.attestations >= r.required;
        r.status = Status.Disputed;
        ++_openDisputes[r.epoch];
        emit RecordDisputed(recordId, msg.sender, reasonDigest);
        if (counted) _withdraw(recordId, r);
    }

    /// @inheritdoc IContributionMeter
    function finalize(uint64 epoch) external {
        if (_finalizedAt[epoch] != 0) revert ContributionMeterEpochFinalized(epoch);
        (,, uint64 closesAt) = _bounds(epoch);
        if (block.timestamp < closesAt) revert ContributionMeterDisputeWindowOpen(epoch, closesAt);
        uint256 open = _openDisputes[epoch];
        if (open != 0) revert ContributionMeterOpenDisputes(epoch, open);
        _finalizedAt[epoch] = uint64(block.timestamp);
        uint256[3] storage t = _totals[epoch];
        emit EpochFinalized(epoch, t[0], t[1], t[2]);
    }

    // ---- governance ----

    /// @inheritdoc IContributionMeter
    function resolve(uint256 recordId, bool upheld) external onlyConsortium {
        Record storage r = _record(recordId);
        if (r.status != Status.Disputed) revert ContributionMeterWrongStatus(recordId, r.status);
        // Finalization waits for open disputes, so the epoch of a disputed record is never final.
        --_openDisputes[r.epoch];
        r.status = upheld ? Status.Upheld : Status.Rejected;
        emit DisputeResolved(recordId, upheld);
        if (upheld && r.attestations >= r.required) _count(recordId, r);
    }

    /// @inheritdoc IContributionMeter
    function setEpochLength(uint64 length) external onlyConsortium {
        _checkEpochLength(length);
        uint64 next = _epochAt(uint64(block.timestamp)) + 1;
        (uint64 startsAt,,) = _bounds(next);
        Segment storage last = _segments[_segments.length - 1];
        uint64 old = last.length;
        if (last.firstEpoch == next) {
            last.length = length; // a second change before the next epoch replaces the first
        } else {
            _segments.push(Segment(next, startsAt, length));
        }
        emit EpochLengthChanged(old, length, next, startsAt);
    }

    /// @inheritdoc IContributionMeter
    function setDisputeWindow(uint64 window) external onlyConsortium {
        _setDisputeWindow(window);
    }

    /// @inheritdoc IContributionMeter
    function setAttestationsRequired(uint32 required) external onlyConsortium {
        _setAttestationsRequired(required);
    }

    /// @inheritdoc IContributionMeter
    function setWeight(uint8 kind, uint256 newWeight) external onlyConsortium {
        _checkKind(kind);
        _setWeight(kind, newWeight);
    }

    // ---- views ----

    /// @inheritdoc IContributionMeter
    function currentEpoch() external view returns (uint64) {
        return _epochAt(uint64(block.timestamp));
    }

    /// @inheritdoc IContributionMeter
    function epochBounds(uint64 epoch) external view returns (uint64 start, uint64 end, uint64 windowClosesAt) {
        return _bounds(epoch);
    }

    /// @inheritdoc IContributionMeter
    function epochLength() external view returns (uint64) {
        return _segments[_segments.length - 1].length;
    }

    /// @inheritdoc IContributionMeter
    function isFinalized(uint64 epoch) external view returns (bool) {
        return _finalizedAt[epoch] != 0;
    }

    /// @inheritdoc IContributionMeter
    function finalizedAt(uint64 epoch) external view returns (uint64) {
        return _finalizedAt[epoch];
    }

    /// @inheritdoc IContributionMeter
    function patientPoints(uint64 epoch, address patient) external view returns (uint256) {
        return _patientPoints[epoch][patient];
    }

    /// @inheritdoc IContributionMeter
    function totalPatientPoints(uint64 epoch) external view returns (uint256) {
        return _patientTotals[epoch];
    }

    /// @inheritdoc IContributionMeter
    function points(uint64 epoch, address member, Dimension dimension) external view returns (uint256) {
        return _points[epoch][member][uint8(dimension)];
    }

    /// @inheritdoc IContributionMeter
    function totalPoints(uint64 epoch, Dimension dimension) external view returns (uint256) {
        return _totals[epoch][uint8(dimension)];
    }

    /// @inheritdoc IContributionMeter
    function openDisputes(uint64 epoch) external view returns (uint256) {
        return _openDisputes[epoch];
    }

    /// @inheritdoc IContributionMeter
    function record(uint256 recordId) external view returns (Record memory) {
        return _records[recordId];
    }

    /// @inheritdoc IContributionMeter
    function recordIdOf(uint64 epoch, address member, Dimension dimension, bytes32 subject)
        external
        view
        returns (uint256)
    {
        return _recordIds[keccak256(abi.encode(epoch, member, dimension, subject))];
    }

    /// @inheritdoc IContributionMeter
    function hasAttested(uint256 recordId, address attester) external view returns (bool) {
        return _attested[recordId][attester];
    }

    /// @inheritdoc IContributionMeter
    function weight(uint8 kind) external view returns (uint256) {
        _checkKind(kind);
        return _weights[kind];
    }

    /// @inheritdoc IContributionMeter
    function dimensionOf(uint8 kind) external pure returns (Dimension) {
        _checkKind(kind);
        return _dimension(kind);
    }

    // ---- internals ----

    function _count(uint256 recordId, Record storage r) private {
        uint8 d = uint8(_dimension(uint8(r.kind)));
        _points[r.epoch][r.member][d] += r.points;
        _totals[r.epoch][d] += r.points;
        emit PointsCounted(recordId, r.epoch, r.member, Dimension(d), r.points);
        if (d == uint8(Dimension.Data)) _countPatient(recordId, r);
    }

    function _countPatient(uint256 recordId, Record storage r) private {
        bytes32 subject = r.subject;
        // A dataset subject: tag 0x01 and 15 zero bytes, then uint64 id and uint64 version.
        if (bytes16(subject) != _DATASET_TAG || address(licensing) == address(0)) return;
        uint256 datasetId = uint64(uint256(subject) >> 64);
        (bool required, address patient, bool given) = licensing.consent(datasetId);
        if (!required || !given || patient == address(0) || r.points == 0) return;
        _recordPatient[recordId] = patient;
        _patientPoints[r.epoch][patient] += r.points;
        _patientTotals[r.epoch] += r.points;
        emit PatientPointsCounted(recordId, r.epoch, patient, r.points);
    }

    function _withdraw(uint256 recordId, Record storage r) private {
        uint8 d = uint8(_dimension(uint8(r.kind)));
        _points[r.epoch][r.member][d] -= r.points;
        _totals[r.epoch][d] -= r.points;
        emit PointsWithdrawn(recordId, r.epoch, r.member, Dimension(d), r.points);
        address patient = _recordPatient[recordId];
        if (patient != address(0)) {
            delete _recordPatient[recordId];
            _patientPoints[r.epoch][patient] -= r.points;
            _patientTotals[r.epoch] -= r.points;
            emit PatientPointsWithdrawn(recordId, r.epoch, patient, r.points);
        }
    }

    function _record(uint256 recordId) private view returns (Record storage r) {
        r = _records[recordId];
        if (r.status == Status.None) revert ContributionMeterUnknownRecord(recordId);
    }

    /// @dev Open: the epoch has started, its dispute window has not closed, it is not final.
    function _checkOpen(uint64 epoch) private view {
        uint64 current = _epochAt(uint64(block.timestamp));
        if (epoch > current) revert ContributionMeterEpochNotStarted(epoch, current);
        if (_finalizedAt[epoch] != 0) revert ContributionMeterEpochFinalized(epoch);
        (,, uint64 closesAt) = _bounds(epoch);
        if (block.timestamp >= closesAt) revert ContributionMeterEpochClosed(epoch, closesAt);
    }

    function _epochAt(uint64 time) private view returns (uint64) {
        // The last segment that has started at `time` (the newest may start in the future).
        uint256 low = 0;
        uint256 high = _segments.length;
        while (high - low > 1) {
            uint256 mid = (low + high) / 2;
            if (_segments[mid].start <= time) low = mid;
            else high = mid;
        }
        Segment storage s = _segments[low];
        return s.firstEpoch + (time - s.start) / s.length;
    }

    function _bounds(uint64 epoch) private view returns (uint64 start, uint64 end, uint64 windowClosesAt) {
        uint256 low = 0;
        uint256 high = _segments.length;
        while (high - low > 1) {
            uint256 mid = (low + high) / 2;
            if (_segments[mid].firstEpoch <= epoch) low = mid;
            else high = mid;
        }
        Segment storage s = _segments[low];
        start = s.start + (epoch - s.firstEpoch) * s.length;
        end = start + s.length;
        windowClosesAt = end + disputeWindow;
    }

    function _dimension(uint8 kind) private pure returns (Dimension) {
        if (kind == uint8(Kind.DataCases)) return Dimension.Data;
        if (kind == uint8(Kind.AlgorithmGain)) return Dimension.Algorithm;
        return Dimension.Compute;
    }

    function _checkKind(uint8 kind) private pure {
        if (kind >= _KINDS) revert ContributionMeterInvalidKind(kind);
    }

    function _checkEpochLength(uint64 length) private pure {
        if (length < MIN_EPOCH_LENGTH || length > MAX_EPOCH_LENGTH) {
            revert ContributionMeterInvalidEpochLength(length, MIN_EPOCH_LENGTH, MAX_EPOCH_LENGTH);
        }
    }

    function _setDisputeWindow(uint64 window) private {
        if (window < MIN_DISPUTE_WINDOW || window > MAX_DISPUTE_WINDOW) {
            revert ContributionMeterInvalidDisputeWindow(window, MIN_DISPUTE_WINDOW, MAX_DISPUTE_WINDOW);
        }
        emit DisputeWindowChanged(disputeWindow, window);
        disputeWindow = window;
    }

    function _setAttestationsRequired(uint32 required) private {
        if (required == 0 || required > MAX_ATTESTATIONS) {
            revert ContributionMeterInvalidAttestations(required, MAX_ATTESTATIONS);
        }
        emit AttestationsRequiredChanged(attestationsRequired, required);
        attestationsRequired = required;
    }

    function _setWeight(uint8 kind, uint256 weight_) private {
        if (weight_ > MAX_WEIGHT) revert ContributionMeterInvalidWeight(kind, weight_, MAX_WEIGHT);
        emit WeightChanged(Kind(kind), _weights[kind], weight_);
        _weights[kind] = weight_;
    }
}
