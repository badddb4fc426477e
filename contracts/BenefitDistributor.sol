// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IBenefitDistributor} from "./IBenefitDistributor.sol";
import {IConsortium} from "./IConsortium.sol";
import {IContributionMeter} from "./IContributionMeter.sol";

/// @title BenefitDistributor
/// @notice Epoch pools paid out by pull claims in proportion to finalized, metered contributions;
/// see IBenefitDistributor for the rules.
/// @dev A claim reads the account's points and the epoch's totals from the meter and computes
/// its entitlement from the pool as it stands: nothing is precomputed per member, so a claim
/// costs the same with 3 members or 300. Entitlements are floors of monotone functions of the
/// pool, so a funding after some claims only ever adds to what each account is due, and the
/// entitlements of all accounts together never exceed the pool. Governance is the Consortium
/// contract itself (an executed call proposal), as for ContributionMeter's setters.
contract BenefitDistributor is IBenefitDistributor, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The denominator of every split part.
    uint16 public constant BPS = 10_000;
    /// @notice The shortest claim window governance may set.
    uint64 public constant MIN_CLAIM_WINDOW = 1 hours;
    /// @notice The longest claim window governance may set.
    uint64 public constant MAX_CLAIM_WINDOW = 10 * 365 days;

    /// @inheritdoc IBenefitDistributor
    IConsortium public immutable consortium;
    /// @inheritdoc IBenefitDistributor
    IContributionMeter public immutable meter;
    /// @inheritdoc IBenefitDistributor
    uint64 public claimWindow;

    struct Pool {
        uint256 deposited;
        uint256 claimedTotal;
        bool swept;
    }

    Split private _split;
    mapping(uint64 epoch => mapping(IERC20 token => Pool)) private _pools;
    mapping(uint64 epoch => mapping(IERC20 token => mapping(address account => uint256))) private _claimed;
    /// @dev A fixed split always has a non-zero part (they sum to BPS), so all-zero means unfixed.
    mapping(uint64 epoch => Split) private _epochSplits;

    /// @notice Starts with `split_` and `claimWindow_`, paying out `meter_`'s epochs.
    /// @param consortium_ Whose executed call proposals govern this contract.
    /// @param meter_ Whose finalized epochs this contract pays out.
    /// @param split_ The split of epochs funded from now on.
    /// @param claimWindow_ Seconds claims stay open after an epoch is finalized.
    constructor(IConsortium consortium_, IContributionMeter meter_, Split memory split_, uint64 claimWindow_) {
        consortium = consortium_;
        meter = meter_;
        _setSplit(split_);
        _setClaimWindow(claimWindow_);
    }

    modifier onlyConsortium() {
        if (msg.sender != address(consortium)) revert BenefitDistributorNotConsortium(msg.sender);
        _;
    }

    // ---- anyone ----

    /// @inheritdoc IBenefitDistributor
    function fund(uint64 epoch, IERC20 token, uint256 amount) external nonReentrant {
        _fund(epoch, token, amount);
    }

    /// @inheritdoc IBenefitDistributor
    function fundWithPermit(
        uint64 epoch,
        IERC20Permit token,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant {
        IERC20 erc20 = IERC20(address(token));
        // Anyone can submit a signed permit first (it is public in the mempool); then the
        // allowance is already there and submitting it again would only revert.
        if (erc20.allowance(msg.sender, address(this)) < amount) {
            token.permit(msg.sender, address(this), amount, deadline, v, r, s);
        }
        _fund(epoch, erc20, amount);
    }

    /// @inheritdoc IBenefitDistributor
    function claim(uint64 epoch, IERC20 token) external nonReentrant returns (uint256 paid) {
        paid = _take(epoch, token, msg.sender);
        if (paid == 0) revert BenefitDistributorNothingToClaim(epoch, msg.sender);
        token.safeTransfer(msg.sender, paid);
    }

    /// @inheritdoc IBenefitDistributor
    function claimMany(uint64[] calldata epochs, IERC20 token) external nonReentrant returns (uint256 paid) {
        for (uint256 i = 0; i < epochs.length; ++i) {
            paid += _take(epochs[i], token, msg.sender);
        }
        if (paid == 0) revert BenefitDistributorNothingToClaim(epochs.length == 0 ? 0 : epochs[0], msg.sender);
        token.safeTransfer(msg.sender, paid);
    }

    // ---- governance ----

    /// @inheritdoc IBenefitDistributor
    function setSplit(Split calldata split) external onlyConsortium {
        _setSplit(split);
    }

    /// @inheritdoc IBenefitDistributor
    function setClaimWindow(uint64 window) external onlyConsortium {
        _setClaimWindow(window);
    }

    /// @inheritdoc IBenefitDistributor
    function sweep(uint64 epoch, IERC20 token, uint64 toEpoch) external onlyConsortium {
        uint64 finalizedAt = meter.finalizedAt(epoch);
        if (finalizedAt == 0) revert BenefitDistributorEpochNotFinal(epoch);
        uint64 deadline = finalizedAt + claimWindow;
        if (block.timestamp < deadline) revert BenefitDistributorClaimsStillOpen(epoch, deadline);
        Pool storage pool = _pools[epoch][token];
        if (pool.swept) revert BenefitDistributorAlreadySwept(epoch, address(token));
        // Never to a final epoch: its claims may be under way, and a larger pool would change them.
        if (toEpoch <= epoch || meter.isFinalized(toEpoch)) {
            revert BenefitDistributorInvalidSweepTarget(epoch, toEpoch);
        }
        uint256 amount = pool.deposited - pool.claimedTotal;
        pool.swept = true;
        if (amount != 0) {
            _fixSplit(toEpoch);
            _pools[toEpoch][token].deposited += amount;
            emit Funded(toEpoch, address(token), address(this), amount);
        }
        emit Swept(epoch, address(token), toEpoch, amount);
    }

    // ---- views ----

    /// @inheritdoc IBenefitDistributor
    function splitOf(uint64 epoch) external view returns (Split memory) {
        return _splitOf(epoch);
    }

    /// @inheritdoc IBenefitDistributor
    function currentSplit() external view returns (Split memory) {
        return _split;
    }

    /// @inheritdoc IBenefitDistributor
    function deposited(uint64 epoch, IERC20 token) external view returns (uint256) {
        return _pools[epoch][token].deposited;
    }

    /// @inheritdoc IBenefitDistributor
    function claimedTotal(uint64 epoch, IERC20 token) external view returns (uint256) {
        return _pools[epoch][token].claimedTotal;
    }

    /// @inheritdoc IBenefitDistributor
    function claimed(uint64 epoch, IERC20 token, address account) external view returns (uint256) {
        return _claimed[epoch][token][account];
    }

    /// @inheritdoc IBenefitDistributor
    function claimable(uint64 epoch, IERC20 token, address account) external view returns (uint256) {
        uint64 finalizedAt = meter.finalizedAt(epoch);
        if (finalizedAt == 0 || block.timestamp >= finalizedAt + claimWindow || _pools[epoch][token].swept) {
            return 0;
        }
        return _due(epoch, token, account);
    }

    /// @inheritdoc IBenefitDistributor
    function entitlement(uint64 epoch, IERC20 token, address account)
        external
        view
        returns (uint256 data, uint256 algorithm, uint256 compute, uint256 patient, uint256 operations)
    {
        uint256[5] memory e = _entitlement(epoch, token, account);
        return (e[0], e[1], e[2], e[3], e[4]);
    }

    /// @inheritdoc IBenefitDistributor
    function claimDeadline(uint64 epoch) external view returns (uint64) {
        uint64 finalizedAt = meter.finalizedAt(epoch);
        return finalizedAt == 0 ? 0 : finalizedAt + claimWindow;
    }

    /// @inheritdoc IBenefitDistributor
    function swept(uint64 epoch, IERC20 token) external view returns (bool) {
        return _pools[epoch][token].swept;
    }

    // ---- internals ----

    function _fund(uint64 epoch, IERC20 token, uint256 amount) private {
        if (amount == 0) revert BenefitDistributorInvalidAmount(amount);
        uint64 finalizedAt = meter.finalizedAt(epoch);
        if (finalizedAt != 0) {
            uint64 deadline = finalizedAt + claimWindow;
            if (block.timestamp >= deadline) revert BenefitDistributorEpochClosed(epoch, deadline);
        }
        Pool storage pool = _pools[epoch][token];
        if (pool.swept) revert BenefitDistributorAlreadySwept(epoch, address(token));
        _fixSplit(epoch);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = token.balanceOf(address(this));
        uint256 received = afterwards > before ? afterwards - before : 0;
        if (received != amount) revert BenefitDistributorTransferAmountMismatch(amount, received);
        pool.deposited += amount;
        emit Funded(epoch, address(token), msg.sender, amount);
    }

    /// @dev Books what `account` is due from the pool (after checking claims are open) and
    /// returns it; the caller transfers it.
    function _take(uint64 epoch, IERC20 token, address account) private returns (uint256 due) {
        uint64 finalizedAt = meter.finalizedAt(epoch);
        if (finalizedAt == 0) revert BenefitDistributorEpochNotFinal(epoch);
        uint64 deadline = finalizedAt + claimWindow;
        if (block.timestamp >= deadline) revert BenefitDistributorEpochClosed(epoch, deadline);
        Pool storage pool = _pools[epoch][token];
        if (pool.swept) revert BenefitDistributorAlreadySwept(epoch, address(token));
        due = _due(epoch, token, account);
        if (due == 0) return 0;
        _claimed[epoch][token][account] += due;
        pool.claimedTotal += due;
        emit Claimed(epoch, address(token), account, due);
    }

    function _due(uint64 epoch, IERC20 token, address account) private view returns (uint256) {
        uint256[5] memory e = _entitlement(epoch, token, account);
        uint256 total = e[0] + e[1] + e[2] + e[3] + e[4];
        uint256 already = _claimed[epoch][token][account];
        // Entitlements only grow (points are final, pools only grow until swept).
        return total > already ? total - already : 0;
    }

    /// @dev [data, algorithm, compute, patient, operations], each a floor (see the rules).
    function _entitlement(uint64 epoch, IERC20 token, address account) private view returns (uint256[5] memory e) {
        uint256 pool = _pools[epoch][token].deposited;
        if (pool == 0) return e;
        Split memory s = _splitOf(epoch);
        IContributionMeter m = meter;
        uint16[3] memory bps = [s.dataBps, s.algorithmBps, s.computeBps];
        for (uint8 d = 0; d < 3; ++d) {
            uint256 points = m.points(epoch, account, IContributionMeter.Dimension(d));
            // No points, no share: the total's call is only needed for an account that has some.
            if (points != 0) {
                e[d] = _share(pool, bps[d], points, m.totalPoints(epoch, IContributionMeter.Dimension(d)));
            }
        }
        uint256 patientPoints = m.patientPoints(epoch, account);
        if (patientPoints != 0) e[3] = _share(pool, s.patientsBps, patientPoints, m.totalPatientPoints(epoch));
        if (account == s.operations) e[4] = Math.mulDiv(pool, s.operationsBps, BPS);
    }

    function _share(uint256 pool, uint16 bps, uint256 points, uint256 total) private pure returns (uint256) {
        return Math.mulDiv(Math.mulDiv(pool, bps, BPS), points, total);
    }

    function _splitOf(uint64 epoch) private view returns (Split memory) {
        Split storage fixed_ = _epochSplits[epoch];
        return _isSet(fixed_) ? fixed_ : _split;
    }

    function _fixSplit(uint64 epoch) private {
        Split storage fixed_ = _epochSplits[epoch];
        if (_isSet(fixed_)) return;
        _epochSplits[epoch] = _split;
        emit SplitFixed(epoch);
    }

    function _isSet(Split storage s) private view returns (bool) {
        return s.operationsBps != 0 || s.patientsBps != 0 || s.dataBps != 0 || s.algorithmBps != 0
            || s.computeBps != 0;
    }

    function _setSplit(Split memory split) private {
        uint256 total = uint256(split.operationsBps) + split.patientsBps + split.dataBps + split.algorithmBps
            + split.computeBps;
        if (total != BPS) revert BenefitDistributorInvalidSplit(total);
        if (split.operations == address(0) && split.operationsBps != 0) {
            revert BenefitDistributorInvalidOperations(split.operations, split.operationsBps);
        }
        _split = split;
        emit SplitChanged(
            split.operations,
            split.operationsBps,
            split.patientsBps,
            split.dataBps,
            split.algorithmBps,
            split.computeBps
        );
    }

    function _setClaimWindow(uint64 window) private {
        if (window < MIN_CLAIM_WINDOW || window > MAX_CLAIM_WINDOW) {
            revert BenefitDistributorInvalidClaimWindow(window, MIN_CLAIM_WINDOW, MAX_CLAIM_WINDOW);
        }
        claimWindow = window;
        emit ClaimWindowChanged(window);
    }
}
