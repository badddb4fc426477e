// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDataUseLicensing} from "./IDataUseLicensing.sol";

/// @title IContributionMeter
/// @notice Attested contributions per epoch in three dimensions (data, algorithm, compute). A
/// member submits a measured amount for itself with the digest of its evidence (the measurement
/// report, stored as content); attesters other than the submitter re-measure and attest; any
/// member may dispute; the governors (k of n, through a Consortium call proposal) resolve
/// disputes and set the parameters. Points (amount x weight) accumulate into per-member and
/// per-dimension totals as records become countable, so nothing loops over members or records.
/// @dev Rules, all O(1):
/// - Epochs: epoch 0 starts at deployment; a new epoch length applies from the next epoch, so the
///   bounds of every epoch that has started never change.
/// - A record is open for submission, attestation and dispute from the start of its epoch until
///   its dispute window closes (`disputeWindow` seconds after the epoch's end); a member may
///   thus submit for the current epoch or for an ended one whose window is still open (figures
///   such as storage byte-seconds are known only once the epoch is over).
/// - The measure kind fixes the dimension: DataCases -> Data, AlgorithmGain -> Algorithm,
///   GpuSeconds and StorageByteSeconds -> Compute (two units of one dimension, made comparable
///   by their weights). points = amount * weight(kind) / WEIGHT_SCALE.
/// - The weight and the number of attestations required are taken when the record is submitted:
///   a later change of either never moves points already counted or pending.
/// - Countable: attested by `required` distinct attesters and not disputed (Submitted or Upheld).
///   A dispute removes a counted record's points until the governors resolve it: upheld, it
///   counts again (and cannot be disputed again); rejected, it never counts.
/// - `finalize(epoch)` once the dispute window is over and no dispute of the epoch is open;
///   after that nothing about the epoch changes. `finalizedAt(epoch)` keeps when.
/// - Patients: when a Data record about a dataset subject (0x01, 15 zero bytes, uint64 dataset
///   id, uint64 version) is counted and the licensing contract says that dataset's consent is
///   required and given, its points also accrue to the consenting patient (patientPoints,
///   totalPatientPoints). The patient is stored with the record at that moment, so withdrawing
///   the record (a dispute) takes out exactly what it added, whatever consent says by then.
interface IContributionMeter {
    enum Dimension {
        Data,
        Algorithm,
        Compute
    }

    enum Kind {
        DataCases,
        AlgorithmGain,
        GpuSeconds,
        StorageByteSeconds
    }

    enum Status {
        None,
        Submitted,
        Disputed,
        Upheld,
        Rejected
    }

    struct Record {
        address member;
        uint64 epoch;
        Kind kind;
        Status status;
        uint32 attestations;
        uint32 required;
        bytes32 subject;
        uint256 amount;
        uint256 points;
        bytes32 evidenceDigest;
    }

    // ---- events ----

    event RecordSubmitted(
        uint256 indexed recordId,
        uint64 indexed epoch,
        address indexed member,
        Kind kind,
        Dimension dimension,
        bytes32 subject,
        uint256 amount,
        uint256 points,
        bytes32 evidenceDigest,
        uint32 required
    );
    event RecordAttested(uint256 indexed recordId, address indexed attester, uint32 attestations);
    event RecordDisputed(uint256 indexed recordId, address indexed disputer, bytes32 reasonDigest);
    event DisputeResolved(uint256 indexed recordId, bool upheld);
    /// @notice The record's points were added to its member's and its dimension's totals.
    event PointsCounted(
        uint256 indexed recordId, uint64 indexed epoch, address indexed member, Dimension dimension, uint256 points
    );
    /// @notice The record's points were taken out of the totals again (it was disputed).
    event PointsWithdrawn(
        uint256 indexed recordId, uint64 indexed epoch, address indexed member, Dimension dimension, uint256 points
    );
    /// @notice The record's points were added to `patient`'s and to the epoch's patient totals
    /// (a counted Data record about a dataset whose consent `patient` gave).
    event PatientPointsCounted(
        uint256 indexed recordId, uint64 indexed epoch, address indexed patient, uint256 points
    );
    /// @notice The record's patient points were taken out of the patient totals again (it was
    /// disputed).
    event PatientPointsWithdrawn(
        uint256 indexed recordId, uint64 indexed epoch, address indexed patient, uint256 points
    );
    event EpochFinalized(uint64 indexed epoch, uint256 dataTotal, uint256 algorithmTotal, uint256 computeTotal);
    event EpochLengthChanged(uint64 oldLength, uint64 newLength, uint64 fromEpoch, uint64 startsAt);
    event DisputeWindowChanged(uint64 oldWindow, uint64 newWindow);
    event AttestationsRequiredChanged(uint32 oldRequired, uint32 newRequired);
    event WeightChanged(Kind indexed kind, uint256 oldWeight, uint256 newWeight);

    // ---- errors ----

    error ContributionMeterNotMember(address account);
    error ContributionMeterNotAttester(address account);
    error ContributionMeterNotConsortium(address caller);
    error ContributionMeterSelfAttestation(uint256 recordId, address attester);
    error ContributionMeterAlreadyAttested(uint256 recordId, address attester);
    error ContributionMeterDuplicateRecord(
        uint64 epoch, address member, Dimension dimension, bytes32 subject, uint256 recordId
    );
    error ContributionMeterUnknownRecord(uint256 recordId);
    error ContributionMeterWrongStatus(uint256 recordId, Status status);
    error ContributionMeterEpochNotStarted(uint64 epoch, uint64 currentEpoch);
    error ContributionMeterEpochClosed(uint64 epoch, uint64 closedAt);
    error ContributionMeterDisputeWindowOpen(uint64 epoch, uint64 closesAt);
    error ContributionMeterOpenDisputes(uint64 epoch, uint256 open);
    error ContributionMeterEpochFinalized(uint64 epoch);
    error ContributionMeterInvalidKind(uint8 kind);
    error ContributionMeterInvalidAmount(uint256 amount, uint256 max);
    error ContributionMeterInvalidDigest(bytes32 digest);
    error ContributionMeterInvalidEpochLength(uint64 length, uint64 min, uint64 max);
    error ContributionMeterInvalidDisputeWindow(uint64 window, uint64 min, uint64 max);
    error ContributionMeterInvalidAttestations(uint32 required, uint32 max);
    error ContributionMeterInvalidWeight(uint8 kind, uint256 weight, uint256 max);

    // ---- members ----

    /// @notice Records the caller's measured `amount` of measure `kind` (see Kind) about
    /// `subject` in `epoch`, with `evidenceDigest` (the sha2-256 digest of the raw-leaf CID of
    /// the measurement report). Active members only, for themselves; one record per (epoch,
    /// member, dimension, subject); `epoch` has started and its dispute window is open.
    function submit(uint64 epoch, uint8 kind, bytes32 subject, uint256 amount, bytes32 evidenceDigest)
        external
        returns (uint256 recordId);

    /// @notice Attests record `recordId` (the caller re-measured and found the same figures).
    /// Active members with ROLE_ATTESTER other than the submitter, once each, until the record's
    /// dispute window closes; not for a rejected record. The record counts once attested
    /// `required` times and not disputed.
    function attest(uint256 recordId) external;

    /// @notice Disputes record `recordId` with `reasonDigest` (the digest of the reason document,
    /// stored as content): its points leave the totals until the governors resolve it. Any active
    /// member, from the submission until the record's dispute window closes; a record upheld
    /// once cannot be disputed again.
    function dispute(uint256 recordId, bytes32 reasonDigest) external;

    /// @notice Closes `epoch` for good: its points and totals no longer change. Anyone, once the
    /// epoch's dispute window is over and none of its disputes is open.
    function finalize(uint64 epoch) external;

    // ---- governance (only the Consortium contract, i.e. an executed call proposal) ----

    /// @notice Resolves the dispute of record `recordId`: `upheld` true, the record stands (it
    /// counts again once attested enough, and cannot be disputed again); false, it is rejected
    /// and never counts.
    function resolve(uint256 recordId, bool upheld) external;

    /// @notice Sets the epoch length (MIN_EPOCH_LENGTH..MAX_EPOCH_LENGTH seconds) from the next
    /// epoch on; the current epoch keeps its end.
    function setEpochLength(uint64 length) external;

    /// @notice Sets the dispute window (MIN_DISPUTE_WINDOW..MAX_DISPUTE_WINDOW seconds), for every
    /// epoch not yet finalized.
    function setDisputeWindow(uint64 window) external;

    /// @notice Sets the attestations a record needs (1..MAX_ATTESTATIONS), for records submitted
    /// from now on.
    function setAttestationsRequired(uint32 required) external;

    /// @notice Sets the weight of measure `kind` (points = amount * weight / WEIGHT_SCALE, at most
    /// MAX_WEIGHT), for records submitted from now on.
    function setWeight(uint8 kind, uint256 newWeight) external;

    // ---- views ----

    /// @notice The length of the newest epoch segment: the current epoch's, or the next one's
    /// when a change is scheduled.
    function epochLength() external view returns (uint64);

    /// @notice Seconds after an epoch's end during which its records stay open.
    function disputeWindow() external view returns (uint64);

    /// @notice Attestations a record submitted now needs to count.
    function attestationsRequired() external view returns (uint32);

    /// @notice The epoch at this block's time.
    function currentEpoch() external view returns (uint64);

    /// @notice When `epoch` starts and ends (end exclusive), and when its dispute window closes.
    function epochBounds(uint64 epoch) external view returns (uint64 start, uint64 end, uint64 windowClosesAt);

    /// @notice Whether `epoch` is finalized.
    function isFinalized(uint64 epoch) external view returns (bool);

    /// @notice When `epoch` was finalized (block time), 0 if it is not.
    function finalizedAt(uint64 epoch) external view returns (uint64);

    /// @notice The points `member` has counted in `epoch` for `dimension`.
    function points(uint64 epoch, address member, Dimension dimension) external view returns (uint256);

    /// @notice The points counted in `epoch` for `dimension`, all members together.
    function totalPoints(uint64 epoch, Dimension dimension) external view returns (uint256);

    /// @notice The points counted in `epoch` for `patient` (data records about datasets whose
    /// consent `patient` gave).
    function patientPoints(uint64 epoch, address patient) external view returns (uint256);

    /// @notice The patient points counted in `epoch`, all patients together.
    function totalPatientPoints(uint64 epoch) external view returns (uint256);

    /// @notice The licensing contract whose consent records decide patient points.
    function licensing() external view returns (IDataUseLicensing);

    /// @notice Disputes of `epoch` not yet resolved.
    function openDisputes(uint64 epoch) external view returns (uint256);

    /// @notice The record `recordId`.
    function record(uint256 recordId) external view returns (Record memory);

    /// @notice The record of (`epoch`, `member`, `dimension`, `subject`), 0 if none.
    function recordIdOf(uint64 epoch, address member, Dimension dimension, bytes32 subject)
        external
        view
        returns (uint256);

    /// @notice Whether `attester` attested record `recordId`.
    function hasAttested(uint256 recordId, address attester) external view returns (bool);

    /// @notice Number of records submitted so far (ids run from 1).
    function recordCount() external view returns (uint256);

    /// @notice The weight of measure `kind`.
    function weight(uint8 kind) external view returns (uint256);

    /// @notice The dimension measure `kind` counts in.
    function dimensionOf(uint8 kind) external pure returns (Dimension);
}
