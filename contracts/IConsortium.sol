// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IConsortium
/// @notice Membership, k-of-n governance and the account/node allowlists of a fullchain
/// consortium. Every state change is made by an executed proposal, except a member rotating
/// its own data key or metadata.
interface IConsortium {
    enum MemberStatus {
        None,
        Active,
        Removed
    }

    enum ProposalKind {
        AdmitMember,
        RemoveMember,
        ChangeRoles,
        SetThreshold,
        AllowAccount,
        DisallowAccount,
        AllowNode,
        DisallowNode,
        SetVotingPeriod,
        Call
    }

    enum ProposalStatus {
        None,
        Pending,
        Executed,
        Cancelled
    }

    /// @dev `admission` numbers the account's admissions (1 for the first, 2 after a removal and
    /// re-admission, ...): other contracts record it with what they grant to the member, and a
    /// mismatch later means that membership ended. `governorTerm` numbers the times the account
    /// became a governor; an approval only counts during the term it was given in.
    struct Member {
        uint32 roles;
        MemberStatus status;
        uint64 joinedAt;
        uint32 admission;
        uint32 governorTerm;
        bytes32 metadataHash;
        bytes hpkePublicKey;
    }

    struct Proposal {
        ProposalKind kind;
        ProposalStatus status;
        address proposer;
        uint64 createdAt;
        uint64 deadline;
        uint32 approvals;
        uint32 proposerAdmission;
        bytes payload;
    }

    struct Node {
        bytes publicKey;
        string host;
        uint16 port;
    }

    // ---- events ----

    event MemberAdmitted(
        address indexed account, uint32 roles, bytes32 metadataHash, bytes hpkePublicKey, uint256 indexed proposalId
    );
    event MemberRemoved(address indexed account, uint256 indexed proposalId);
    event MemberRolesChanged(address indexed account, uint32 oldRoles, uint32 newRoles, uint256 indexed proposalId);
    event MemberKeyRotated(address indexed account, bytes hpkePublicKey);
    event MemberMetadataUpdated(address indexed account, bytes32 metadataHash);
    event ThresholdChanged(uint256 oldThreshold, uint256 newThreshold, uint256 indexed proposalId);
    event VotingPeriodChanged(uint64 oldPeriod, uint64 newPeriod, uint256 indexed proposalId);
    event AccountAllowlisted(address indexed account);
    event AccountDisallowed(address indexed account);
    event NodeAllowlisted(bytes32 indexed nodeId, bytes publicKey, string host, uint16 port);
    event NodeDisallowed(bytes32 indexed nodeId);
    event ProposalCreated(
        uint256 indexed proposalId, ProposalKind kind, address indexed proposer, uint64 deadline, bytes payload
    );
    event ProposalApproved(uint256 indexed proposalId, address indexed governor, uint32 approvals);
    event ProposalExecuted(uint256 indexed proposalId, address indexed executor);
    event ProposalCancelled(uint256 indexed proposalId);

    // ---- errors ----

    error ConsortiumNotMember(address account);
    error ConsortiumNotGovernor(address account);
    error ConsortiumAlreadyMember(address account);
    error ConsortiumInvalidAccount(address account);
    error ConsortiumInvalidRoles(uint32 roles);
    error ConsortiumInvalidPublicKey(uint256 length);
    error ConsortiumInvalidThreshold(uint256 threshold, uint256 governors);
    error ConsortiumInvalidVotingPeriod(uint64 votingPeriod, uint64 min, uint64 max);
    error ConsortiumInvalidNode(uint256 publicKeyLength);
    error ConsortiumFoundersMismatch();
    error ConsortiumUnknownProposal(uint256 proposalId);
    error ConsortiumProposalNotPending(uint256 proposalId, ProposalStatus status);
    error ConsortiumProposalExpired(uint256 proposalId, uint64 deadline);
    error ConsortiumAlreadyApproved(uint256 proposalId, address governor);
    error ConsortiumNotEnoughApprovals(uint256 proposalId, uint256 approvals, uint256 threshold);
    error ConsortiumNotProposer(uint256 proposalId, address caller);
    error ConsortiumAccountAlreadyAllowed(address account);
    error ConsortiumAccountNotAllowed(address account);
    error ConsortiumNodeAlreadyAllowed(bytes32 nodeId);
    error ConsortiumNodeNotAllowed(bytes32 nodeId);
    error ConsortiumInvalidCallTarget(address target);
    error ConsortiumCallFailed(uint256 proposalId, address target, bytes reason);

    // ---- proposals ----

    /// @notice Proposes to admit `account` with `roles`, its HPKE public key (a 32-byte X25519
    /// public key) and a hash of its off-chain metadata document. Only active members may propose.
    function proposeAdmit(address account, uint32 roles, bytes calldata hpkePublicKey, bytes32 metadataHash)
        external
        returns (uint256 proposalId);

    /// @notice Proposes to remove the active member `account`.
    function proposeRemove(address account) external returns (uint256 proposalId);

    /// @notice Proposes to replace the roles of the active member `account` with `roles`.
    function proposeRoles(address account, uint32 roles) external returns (uint256 proposalId);

    /// @notice Proposes a new approval threshold `k` (1 <= k <= number of governors).
    function proposeThreshold(uint256 threshold) external returns (uint256 proposalId);

    /// @notice Proposes a new voting period (MIN_VOTING_PERIOD..MAX_VOTING_PERIOD seconds). It
    /// applies to proposals created after the change; open proposals keep their deadline.
    function proposeVotingPeriod(uint64 newVotingPeriod) external returns (uint256 proposalId);

    /// @notice Proposes to add (`allowed` true) or remove `account` on the account allowlist.
    function proposeAccountAllowlist(address account, bool allowed) external returns (uint256 proposalId);

    /// @notice Proposes to add (`allowed` true) or remove a node, identified by its 64-byte
    /// secp256k1 public key (the enode id), on the node allowlist.
    function proposeNodeAllowlist(bytes calldata publicKey, string calldata host, uint16 port, bool allowed)
        external
        returns (uint256 proposalId);

    /// @notice Proposes that the Consortium itself calls `target` with `data` (a governance
    /// setting of another fullchain contract, e.g. ContributionMeter's weights or a dispute
    /// resolution). `target` must be a contract governed by this Consortium: its `consortium()`
    /// returns this contract's address (checked at proposal and again at execution). If the call
    /// reverts, execution reverts with ConsortiumCallFailed and the proposal stays pending.
    function proposeCall(address target, bytes calldata data) external returns (uint256 proposalId);

    /// @notice Approves a pending proposal. Only governors; one approval each per governor term
    /// (a governor demoted and promoted again may approve again: its earlier approval no longer
    /// counts).
    function approve(uint256 proposalId) external;

    /// @notice Executes a pending proposal once enough approvals count now: an approval counts
    /// only while its giver is a governor in the same governor term (and the same admission) as
    /// when it approved. Demotion, removal, re-promotion or re-admission void earlier approvals.
    function execute(uint256 proposalId) external;

    /// @notice Withdraws a pending proposal. Only its proposer, and only while it is still the
    /// member (same admission) that proposed: a removed proposer cannot cancel.
    function cancel(uint256 proposalId) external;

    // ---- self service ----

    /// @notice Replaces the caller's HPKE public key (key rotation): a 32-byte X25519 public key.
    function rotateKey(bytes calldata hpkePublicKey) external;

    /// @notice Replaces the hash of the caller's off-chain metadata document.
    function updateMetadata(bytes32 metadataHash) external;

    // ---- views ----

    /// @notice Whether `account` is an active member holding every role bit in `roles`.
    function hasRoles(address account, uint32 roles) external view returns (bool);

    /// @notice The member record of `account` (status None for strangers).
    function member(address account) external view returns (Member memory);

    /// @notice The number of `account`'s current admission while it is an active member, 0
    /// otherwise. Contracts record it with a license or delegation and treat a later mismatch
    /// as the end of that membership, so removal ends them for good, re-admission or not.
    function activeAdmission(address account) external view returns (uint32);

    /// @notice Every account that was ever admitted, in admission order.
    function memberAccounts() external view returns (address[] memory);

    /// @notice The proposal `proposalId`; its `approvals` are those that count now (see `execute`).
    function proposal(uint256 proposalId) external view returns (Proposal memory);

    /// @notice Whether `governor` approved `proposalId` and that approval counts now.
    function hasApproved(uint256 proposalId, address governor) external view returns (bool);

    /// @notice Number of proposals created so far (ids run from 1 to this number).
    function proposalCount() external view returns (uint256);

    /// @notice Approvals needed to execute a proposal.
    function threshold() external view returns (uint256);

    /// @notice Number of active members holding the governor role.
    function governorCount() external view returns (uint256);

    /// @notice Seconds a proposal stays open.
    function votingPeriod() external view returns (uint64);

    /// @notice The account allowlist, in one call (exported by node-config).
    function allowedAccounts() external view returns (address[] memory);

    /// @notice Whether `account` is on the account allowlist.
    function isAccountAllowed(address account) external view returns (bool);

    /// @notice The node allowlist, in one call (exported by node-config).
    function allowedNodes() external view returns (Node[] memory);
}
