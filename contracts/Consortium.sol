// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IConsortium} from "./IConsortium.sol";

/// @title Consortium
/// @notice Members of a fullchain consortium, their roles and data keys, governed by k-of-n
/// approval of the governors. There is no owner: after deployment, every change of membership,
/// roles, threshold or allowlists goes through a proposal.
/// @dev The account and node allowlists replace Besu's removed on-chain permissioning; node-config
/// reads them with one call each and exports them as `permissions_config.toml`.
contract Consortium is IConsortium {
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.Bytes32Set;

    uint32 public constant ROLE_HOSPITAL = 1 << 0;
    uint32 public constant ROLE_PHARMA = 1 << 1;
    uint32 public constant ROLE_CRO = 1 << 2;
    uint32 public constant ROLE_REGULATOR = 1 << 3;
    uint32 public constant ROLE_AUDITOR = 1 << 4;
    uint32 public constant ROLE_PATIENT = 1 << 5;
    uint32 public constant ROLE_GOVERNOR = 1 << 6;
    uint32 public constant ROLE_ATTESTER = 1 << 7;
    uint32 public constant ALL_ROLES = (1 << 8) - 1;

    /// @notice Bounds of the voting period. A minute is enough for a test network and short
    /// enough to notice a mistake; a year keeps `now + votingPeriod` far from overflowing and
    /// stops a typo from freezing proposals open for ages.
    uint64 public constant MIN_VOTING_PERIOD = 1 minutes;
    uint64 public constant MAX_VOTING_PERIOD = 365 days;

    /// @dev Data keys are wrapped with HPKE over X25519 (RFC 9180, DHKEM(X25519)): a public key
    /// is exactly 32 bytes. Anything else cannot be wrapped to and would break key delivery.
    uint256 private constant _X25519_KEY_LENGTH = 32;
    uint256 private constant _ENODE_KEY_LENGTH = 64;

    uint64 public votingPeriod;
    uint256 public threshold;
    uint256 public governorCount;
    uint256 public proposalCount;

    mapping(address account => Member) private _members;
    address[] private _memberAccounts;

    mapping(uint256 proposalId => Proposal) private _proposals;
    mapping(uint256 proposalId => address[]) private _approvers;
    /// @dev The governor term (see Member.governorTerm) an approval was given in; 0: none.
    mapping(uint256 proposalId => mapping(address governor => uint32 term)) private _approvedIn;

    EnumerableSet.AddressSet private _allowedAccounts;
    EnumerableSet.Bytes32Set private _nodeIds;
    mapping(bytes32 nodeId => Node) private _nodes;

    /// @param founders The founding members' accounts.
    /// @param roles Role bits of each founder.
    /// @param hpkePublicKeys HPKE public key of each founder.
    /// @param metadataHashes Hash of each founder's off-chain metadata document.
    /// @param initialThreshold Approvals needed per proposal (1 <= k <= founding governors).
    /// @param votingPeriod_ Seconds a proposal stays open (MIN_VOTING_PERIOD..MAX_VOTING_PERIOD).
    constructor(
        address[] memory founders,
        uint32[] memory roles,
        bytes[] memory hpkePublicKeys,
        bytes32[] memory metadataHashes,
        uint256 initialThreshold,
        uint64 votingPeriod_
    ) {
        if (
            founders.length == 0 || roles.length != founders.length || hpkePublicKeys.length != founders.length
                || metadataHashes.length != founders.length
        ) {
            revert ConsortiumFoundersMismatch();
        }
        for (uint256 i = 0; i < founders.length; ++i) {
            _checkNewMember(founders[i], roles[i], hpkePublicKeys[i]);
            _admit(founders[i], roles[i], hpkePublicKeys[i], metadataHashes[i], 0);
        }
        _checkThreshold(initialThreshold, governorCount);
        _checkVotingPeriod(votingPeriod_);
        threshold = initialThreshold;
        votingPeriod = votingPeriod_;
        emit ThresholdChanged(0, initialThreshold, 0);
        emit VotingPeriodChanged(0, votingPeriod_, 0);
    }

    modifier onlyMember() {
        _checkMember(msg.sender);
        _;
    }

    modifier onlyGovernor() {
        _checkGovernor(msg.sender);
        _;
    }

    // ---- proposals ----

    /// @inheritdoc IConsortium
    function proposeAdmit(address account, uint32 roles, bytes calldata hpkePublicKey, bytes32 metadataHash)
        external
        onlyMember
        returns (uint256)
    {
        _checkNewMember(account, roles, hpkePublicKey);
        return _propose(ProposalKind.AdmitMember, abi.encode(account, roles, hpkePublicKey, metadataHash));
    }

    /// @inheritdoc IConsortium
    function proposeRemove(address account) external onlyMember returns (uint256) {
        _checkMember(account);
        return _propose(ProposalKind.RemoveMember, abi.encode(account));
    }

    /// @inheritdoc IConsortium
    function proposeRoles(address account, uint32 roles) external onlyMember returns (uint256) {
        _checkMember(account);
        _checkRoles(roles);
        return _propose(ProposalKind.ChangeRoles, abi.encode(account, roles));
    }

    /// @inheritdoc IConsortium
    function proposeThreshold(uint256 newThreshold) external onlyMember returns (uint256) {
        _checkThreshold(newThreshold, governorCount);
        return _propose(ProposalKind.SetThreshold, abi.encode(newThreshold));
    }

    /// @inheritdoc IConsortium
    function proposeVotingPeriod(uint64 newVotingPeriod) external onlyMember returns (uint256) {
        _checkVotingPeriod(newVotingPeriod);
        return _propose(ProposalKind.SetVotingPeriod, abi.encode(newVotingPeriod));
    }

    /// @inheritdoc IConsortium
    function proposeAccountAllowlist(address account, bool allowed) external onlyMember returns (uint256) {
        if (account == address(0)) revert ConsortiumInvalidAccount(account);
        _checkAccountChange(account, allowed);
        return _propose(allowed ? ProposalKind.AllowAccount : ProposalKind.DisallowAccount, abi.encode(account));
    }

    /// @inheritdoc IConsortium
    function proposeNodeAllowlist(bytes calldata publicKey, string calldata host, uint16 port, bool allowed)
        external
        onlyMember
        returns (uint256)
    {
        if (publicKey.length != _ENODE_KEY_LENGTH) revert ConsortiumInvalidNode(publicKey.length);
        _checkNodeChange(keccak256(publicKey), allowed);
        return _propose(
            allowed ? ProposalKind.AllowNode : ProposalKind.DisallowNode, abi.encode(publicKey, host, port)
        );
    }

    /// @inheritdoc IConsortium
    function proposeCall(address target, bytes calldata data) external onlyMember returns (uint256) {
        _checkCallTarget(target);
        return _propose(ProposalKind.Call, abi.encode(target, data));
    }

    /// @inheritdoc IConsortium
    function approve(uint256 proposalId) external onlyGovernor {
        Proposal storage p = _pendingProposal(proposalId);
        _approve(proposalId, p);
    }

    /// @inheritdoc IConsortium
    function execute(uint256 proposalId) external {
        Proposal storage p = _pendingProposal(proposalId);
        uint256 valid = _currentApprovals(proposalId);
        if (valid < threshold) revert ConsortiumNotEnoughApprovals(proposalId, valid, threshold);
        // Marked before applying so that nothing the application triggers can execute it twice.
        p.status = ProposalStatus.Executed;
        if (p.kind == ProposalKind.Call) _call(proposalId, p.payload);
        else _apply(proposalId, p.kind, p.payload);
        emit ProposalExecuted(proposalId, msg.sender);
    }

    /// @inheritdoc IConsortium
    function cancel(uint256 proposalId) external {
        Proposal storage p = _proposals[proposalId];
        if (p.status == ProposalStatus.None) revert ConsortiumUnknownProposal(proposalId);
        if (p.proposer != msg.sender) revert ConsortiumNotProposer(proposalId, msg.sender);
        // A removed proposer no longer speaks for the proposal, nor does the same account admitted
        // again: that is a new membership, not the one that proposed.
        uint32 admission = _activeAdmission(msg.sender);
        if (admission == 0) revert ConsortiumNotMember(msg.sender);
        if (admission != p.proposerAdmission) revert ConsortiumNotProposer(proposalId, msg.sender);
        if (p.status != ProposalStatus.Pending) revert ConsortiumProposalNotPending(proposalId, p.status);
        p.status = ProposalStatus.Cancelled;
        emit ProposalCancelled(proposalId);
    }

    // ---- self service ----

    /// @inheritdoc IConsortium
    function rotateKey(bytes calldata hpkePublicKey) external onlyMember {
        _checkPublicKey(hpkePublicKey);
        _members[msg.sender].hpkePublicKey = hpkePublicKey;
        emit MemberKeyRotated(msg.sender, hpkePublicKey);
    }

    /// @inheritdoc IConsortium
    function updateMetadata(bytes32 metadataHash) external onlyMember {
        _members[msg.sender].metadataHash = metadataHash;
        emit MemberMetadataUpdated(msg.sender, metadataHash);
    }

    // ---- views ----

    /// @inheritdoc IConsortium
    function hasRoles(address account, uint32 roles) external view returns (bool) {
        Member storage m = _members[account];
        return m.status == MemberStatus.Active && (m.roles & roles) == roles;
    }

    /// @inheritdoc IConsortium
    function member(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @inheritdoc IConsortium
    function activeAdmission(address account) external view returns (uint32) {
        return _activeAdmission(account);
    }

    /// @inheritdoc IConsortium
    function memberAccounts() external view returns (address[] memory) {
        return _memberAccounts;
    }

    /// @inheritdoc IConsortium
    function proposal(uint256 proposalId) external view returns (Proposal memory p) {
        p = _proposals[proposalId];
        p.approvals = uint32(_currentApprovals(proposalId));
    }

    /// @inheritdoc IConsortium
    function hasApproved(uint256 proposalId, address governor) external view returns (bool) {
        return _counts(proposalId, governor);
    }

    /// @inheritdoc IConsortium
    function allowedAccounts() external view returns (address[] memory) {
        return _allowedAccounts.values();
    }

    /// @inheritdoc IConsortium
    function isAccountAllowed(address account) external view returns (bool) {
        return _allowedAccounts.contains(account);
    }

    /// @inheritdoc IConsortium
    function allowedNodes() external view returns (Node[] memory nodes) {
        uint256 n = _nodeIds.length();
        nodes = new Node[](n);
        for (uint256 i = 0; i < n; ++i) {
            nodes[i] = _nodes[_nodeIds.at(i)];
        }
    }

    // ---- internals ----

    function _propose(ProposalKind kind, bytes memory payload) private returns (uint256 proposalId) {
        proposalId = ++proposalCount;
        uint64 deadline = uint64(block.timestamp) + votingPeriod;
        Proposal storage p = _proposals[proposalId];
        p.kind = kind;
        p.status = ProposalStatus.Pending;
        p.proposer = msg.sender;
        p.createdAt = uint64(block.timestamp);
        p.deadline = deadline;
        p.proposerAdmission = _members[msg.sender].admission;
        p.payload = payload;
        emit ProposalCreated(proposalId, kind, msg.sender, deadline, payload);
        // A governor proposing is taken to approve its own proposal; it saves a transaction.
        if (_isGovernor(msg.sender)) _approve(proposalId, p);
    }

    /// @dev An approval is recorded with the approver's governor term. A governor approving
    /// again in a later term replaces its stale approval; it is listed once, so it never counts
    /// twice. `p.approvals` counts the approvers listed (what the event reports).
    function _approve(uint256 proposalId, Proposal storage p) private {
        uint32 term = _members[msg.sender].governorTerm;
        uint32 given = _approvedIn[proposalId][msg.sender];
        if (given == term) revert ConsortiumAlreadyApproved(proposalId, msg.sender);
        _approvedIn[proposalId][msg.sender] = term;
        uint32 approvals = p.approvals;
        if (given == 0) {
            _approvers[proposalId].push(msg.sender);
            p.approvals = ++approvals;
        }
        emit ProposalApproved(proposalId, msg.sender, approvals);
    }

    /// @dev Approvals are counted again at execution: only those of governors still in the
    /// governor term they approved in count, so demotion or removal voids an approval for good,
    /// even after a later re-promotion or re-admission. The list is bounded by the number of
    /// accounts that were ever governors.
    function _currentApprovals(uint256 proposalId) private view returns (uint256 valid) {
        address[] storage approvers = _approvers[proposalId];
        for (uint256 i = 0; i < approvers.length; ++i) {
            if (_counts(proposalId, approvers[i])) ++valid;
        }
    }

    function _counts(uint256 proposalId, address governor) private view returns (bool) {
        return _isGovernor(governor) && _approvedIn[proposalId][governor] == _members[governor].governorTerm;
    }

    function _pendingProposal(uint256 proposalId) private view returns (Proposal storage p) {
        p = _proposals[proposalId];
        if (p.status == ProposalStatus.None) revert ConsortiumUnknownProposal(proposalId);
        if (p.status != ProposalStatus.Pending) revert ConsortiumProposalNotPending(proposalId, p.status);
        if (block.timestamp > p.deadline) revert ConsortiumProposalExpired(proposalId, p.deadline);
    }

    function _apply(uint256 proposalId, ProposalKind kind, bytes memory payload) private {
        if (kind == ProposalKind.AdmitMember) {
            (address account, uint32 roles, bytes memory key, bytes32 metadataHash) =
                abi.decode(payload, (address, uint32, bytes, bytes32));
            _checkNewMember(account, roles, key);
            _admit(account, roles, key, metadataHash, proposalId);
        } else if (kind == ProposalKind.RemoveMember) {
            address account = abi.decode(payload, (address));
            _checkMember(account);
            _setRoles(account, 0, proposalId);
            _members[account].status = MemberStatus.Removed;
            if (_allowedAccounts.remove(account)) emit AccountDisallowed(account);
            emit MemberRemoved(account, proposalId);
        } else if (kind == ProposalKind.ChangeRoles) {
            (address account, uint32 roles) = abi.decode(payload, (address, uint32));
            _checkMember(account);
            _checkRoles(roles);
            _setRoles(account, roles, proposalId);
        } else if (kind == ProposalKind.SetThreshold) {
            uint256 newThreshold = abi.decode(payload, (uint256));
            _checkThreshold(newThreshold, governorCount);
            emit ThresholdChanged(threshold, newThreshold, proposalId);
            threshold = newThreshold;
        } else if (kind == ProposalKind.SetVotingPeriod) {
            uint64 newVotingPeriod = abi.decode(payload, (uint64));
            _checkVotingPeriod(newVotingPeriod);
            emit VotingPeriodChanged(votingPeriod, newVotingPeriod, proposalId);
            votingPeriod = newVotingPeriod;
        } else if (kind == ProposalKind.AllowAccount || kind == ProposalKind.DisallowAccount) {
            address account = abi.decode(payload, (address));
            bool allowed = kind == ProposalKind.AllowAccount;
            _checkAccountChange(account, allowed);
            _setAccountAllowed(account, allowed);
        } else {
            (bytes memory publicKey, string memory host, uint16 port) = abi.decode(payload, (bytes, string, uint16));
            bytes32 nodeId = keccak256(publicKey);
            bool allowed = kind == ProposalKind.AllowNode;
            _checkNodeChange(nodeId, allowed);
            if (allowed) {
                _nodeIds.add(nodeId);
                _nodes[nodeId] = Node(publicKey, host, port);
                emit NodeAllowlisted(nodeId, publicKey, host, port);
            } else {
                _nodeIds.remove(nodeId);
                delete _nodes[nodeId];
                emit NodeDisallowed(nodeId);
            }
        }
    }

    /// @dev The proposal is already marked executed (see `execute`), so a target calling back
    /// cannot run it twice; a failed call reverts everything and the proposal stays pending.
    function _call(uint256 proposalId, bytes memory payload) private {
        (address target, bytes memory data) = abi.decode(payload, (address, bytes));
        _checkCallTarget(target);
        // A generic call is the point of this proposal kind; the target was checked above.
        // solhint-disable-next-line avoid-low-level-calls
        (bool ok, bytes memory reason) = target.call(data);
        if (!ok) revert ConsortiumCallFailed(proposalId, target, reason);
    }

    function _admit(address account, uint32 roles, bytes memory key, bytes32 metadataHash, uint256 proposalId)
        private
    {
        Member storage m = _members[account];
        if (m.status == MemberStatus.None) _memberAccounts.push(account);
        m.status = MemberStatus.Active;
        m.roles = roles;
        m.joinedAt = uint64(block.timestamp);
        ++m.admission;
        m.metadataHash = metadataHash;
        m.hpkePublicKey = key;
        if (roles & ROLE_GOVERNOR != 0) {
            ++governorCount;
            ++m.governorTerm;
        }
        if (_allowedAccounts.add(account)) emit AccountAllowlisted(account);
        emit MemberAdmitted(account, roles, metadataHash, key, proposalId);
    }

    /// @dev Refuses any change that would leave fewer governors than the threshold, which
    /// would freeze governance for good.
    function _setRoles(address account, uint32 roles, uint256 proposalId) private {
        Member storage m = _members[account];
        uint32 old = m.roles;
        bool wasGovernor = old & ROLE_GOVERNOR != 0;
        bool isGovernor = roles & ROLE_GOVERNOR != 0;
        if (wasGovernor && !isGovernor) {
            _checkThreshold(threshold, governorCount - 1);
            --governorCount;
        } else if (!wasGovernor && isGovernor) {
            ++governorCount;
            ++m.governorTerm;
        }
        m.roles = roles;
        if (roles != 0) emit MemberRolesChanged(account, old, roles, proposalId);
    }

    function _setAccountAllowed(address account, bool allowed) private {
        if (allowed) {
            _allowedAccounts.add(account);
            emit AccountAllowlisted(account);
        } else {
            _allowedAccounts.remove(account);
            emit AccountDisallowed(account);
        }
    }

    function _isGovernor(address account) private view returns (bool) {
        Member storage m = _members[account];
        return m.status == MemberStatus.Active && m.roles & ROLE_GOVERNOR != 0;
    }

    function _activeAdmission(address account) private view returns (uint32) {
        Member storage m = _members[account];
        return m.status == MemberStatus.Active ? m.admission : 0;
    }

    function _checkMember(address account) private view {
        if (_members[account].status != MemberStatus.Active) revert ConsortiumNotMember(account);
    }

    function _checkGovernor(address account) private view {
        if (!_isGovernor(account)) revert ConsortiumNotGovernor(account);
    }

    function _checkNewMember(address account, uint32 roles, bytes memory key) private view {
        if (account == address(0)) revert ConsortiumInvalidAccount(account);
        if (_members[account].status == MemberStatus.Active) revert ConsortiumAlreadyMember(account);
        _checkRoles(roles);
        _checkPublicKey(key);
    }

    function _checkRoles(uint32 roles) private pure {
        if (roles == 0 || roles & ~ALL_ROLES != 0) revert ConsortiumInvalidRoles(roles);
    }

    function _checkPublicKey(bytes memory key) private pure {
        if (key.length != _X25519_KEY_LENGTH) revert ConsortiumInvalidPublicKey(key.length);
    }

    function _checkVotingPeriod(uint64 period) private pure {
        if (period < MIN_VOTING_PERIOD || period > MAX_VOTING_PERIOD) {
            revert ConsortiumInvalidVotingPeriod(period, MIN_VOTING_PERIOD, MAX_VOTING_PERIOD);
        }
    }

    function _checkThreshold(uint256 k, uint256 governors) private pure {
        if (k == 0 || k > governors) revert ConsortiumInvalidThreshold(k, governors);
    }

    /// @dev Only contracts that name this Consortium as their governance: governance cannot be
    /// pointed at arbitrary accounts (nor at itself, whose changes have their own proposals).
    function _checkCallTarget(address target) private view {
        if (target == address(this) || target.code.length == 0) revert ConsortiumInvalidCallTarget(target);
        (bool ok, bytes memory answer) = target.staticcall(abi.encodeWithSignature("consortium()"));
        if (!ok || answer.length != 32 || abi.decode(answer, (address)) != address(this)) {
            revert ConsortiumInvalidCallTarget(target);
        }
    }

    function _checkAccountChange(address account, bool allowed) private view {
        bool present = _allowedAccounts.contains(account);
        if (allowed && present) revert ConsortiumAccountAlreadyAllowed(account);
        if (!allowed && !present) revert ConsortiumAccountNotAllowed(account);
    }

    function _checkNodeChange(bytes32 nodeId, bool allowed) private view {
        bool present = _nodeIds.contains(nodeId);
        if (allowed && present) revert ConsortiumNodeAlreadyAllowed(nodeId);
        if (!allowed && !present) revert ConsortiumNodeNotAllowed(nodeId);
    }
}
