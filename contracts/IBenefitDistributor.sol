// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IConsortium} from "./IConsortium.sol";
import {IContributionMeter} from "./IContributionMeter.sol";

/// @title IBenefitDistributor
/// @notice Per-epoch pools of an ERC-20 token, funded by anyone and paid out by pull claims in
/// proportion to the contributions a ContributionMeter measured and finalized for the epoch.
/// The governors (k of n, through a Consortium call proposal) set the split of every pool
/// between operations, patients and the data, algorithm and compute budgets, and the claim
/// window; after the window they sweep what was not claimed into a later epoch's pool.
/// @dev Rules, all O(1) in members and records:
/// - Pools: one per (epoch, token); the split is in basis points (BPS = 10_000), the five parts
///   sum to exactly BPS.
/// - Split snapshot: an epoch's split is fixed when the epoch is first funded (any token; event
///   SplitFixed); a later setSplit applies to epochs not yet funded and never moves a fixed one.
/// - Budgets: budget_d = floor(pool * bps_d / BPS) for each of operations, patients, data,
///   algorithm and compute, where pool = deposited(epoch, token).
/// - Entitlement of an account: for each dimension d of data, algorithm and compute,
///   floor(budget_d * meter.points(epoch, account, d) / meter.totalPoints(epoch, d)); plus the
///   patient share floor(budget_patients * meter.patientPoints(epoch, account) /
///   meter.totalPatientPoints(epoch)); plus budget_operations if the account is the split's
///   operations address. An account may be several of these at once; a claim pays its
///   entitlement minus what it claimed before. A dimension (or the patients) with total 0
///   leaves its budget in the pool, to be swept with the rest.
/// - Claims: once meter.isFinalized(epoch) and before claimDeadline(epoch) = meter.finalizedAt(
///   epoch) + the current claimWindow, until the pool is swept. No membership check: a removed
///   member still claims what it earned.
/// - Funding: while the epoch is not final, or final and before its deadline, and not after a
///   sweep of that pool. The contract measures its token balance around the transferFrom and
///   refuses a token that delivers a different amount (fee-on-transfer, rebasing).
/// - Sweep: governance only, after the deadline, once per pool: moves deposited - claimedTotal
///   into the pool of a later epoch that is not final yet (a funding of that epoch by this
///   contract: event Funded with funder = this contract, then Swept); claims of the swept pool
///   end. Nothing ever leaves the contract except by a claim.
/// - Rounding: each budget floors (at most 5 base units stay in the pool) and each claim floors
///   up to 4 shares (at most 4 base units per claim); that dust is swept, never lost.
interface IBenefitDistributor {
    /// @notice Shares of a pool, in basis points of BPS (10_000); the five sum to exactly BPS.
    /// `operations` receives the operations budget.
    struct Split {
        address operations;
        uint16 operationsBps;
        uint16 patientsBps;
        uint16 dataBps;
        uint16 algorithmBps;
        uint16 computeBps;
    }

    // ---- events ----

    /// @notice `funder` put `amount` of `token` into the pool of `epoch` (funder is this
    /// contract when a sweep moved the amount from an earlier epoch).
    event Funded(uint64 indexed epoch, address indexed token, address indexed funder, uint256 amount);
    /// @notice The split for epochs funded from now on.
    event SplitChanged(
        address operations,
        uint16 operationsBps,
        uint16 patientsBps,
        uint16 dataBps,
        uint16 algorithmBps,
        uint16 computeBps
    );
    /// @notice The split of `epoch` was fixed (the current split, at the epoch's first funding).
    event SplitFixed(uint64 indexed epoch);
    /// @notice `account` was paid `amount` of `token` from the pool of `epoch`.
    event Claimed(uint64 indexed epoch, address indexed token, address indexed account, uint256 amount);
    /// @notice Claims stay open `window` seconds after an epoch is finalized.
    event ClaimWindowChanged(uint64 window);
    /// @notice The unclaimed `amount` of `token` in the pool of `epoch` moved to the pool of
    /// `toEpoch`; claims of `epoch` in `token` are over.
    event Swept(uint64 indexed epoch, address indexed token, uint64 indexed toEpoch, uint256 amount);

    // ---- errors ----

    error BenefitDistributorNotConsortium(address caller);
    error BenefitDistributorInvalidSplit(uint256 totalBps);
    error BenefitDistributorInvalidAmount(uint256 amount);
    error BenefitDistributorEpochClosed(uint64 epoch, uint64 deadline);
    error BenefitDistributorEpochNotFinal(uint64 epoch);
    error BenefitDistributorClaimsStillOpen(uint64 epoch, uint64 deadline);
    error BenefitDistributorAlreadySwept(uint64 epoch, address token);
    error BenefitDistributorInvalidSweepTarget(uint64 fromEpoch, uint64 toEpoch);
    error BenefitDistributorTransferAmountMismatch(uint256 expected, uint256 received);
    error BenefitDistributorNothingToClaim(uint64 epoch, address account);
    /// @notice The split names no operations address but gives operations a share.
    error BenefitDistributorInvalidOperations(address operations, uint16 operationsBps);
    /// @notice A claim window outside MIN_CLAIM_WINDOW..MAX_CLAIM_WINDOW seconds.
    error BenefitDistributorInvalidClaimWindow(uint64 window, uint64 min, uint64 max);

    // ---- anyone ----

    /// @notice Puts `amount` of `token` from the caller (who approved this contract) into the
    /// pool of `epoch`. Refused once the epoch's claims closed or its pool was swept, and for a
    /// token that delivers other than `amount`. The first funding of an epoch fixes its split.
    function fund(uint64 epoch, IERC20 token, uint256 amount) external;

    /// @notice As `fund`, approving with an EIP-2612 permit (`deadline`, `v`, `r`, `s`) signed
    /// by the caller for this contract and at least `amount`. If the allowance is already
    /// enough (the permit was used by someone else first), the permit is not submitted again.
    function fundWithPermit(
        uint64 epoch,
        IERC20Permit token,
        uint256 amount,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Pays the caller what it is due from the pool of `epoch` in `token` (its
    /// entitlement minus what it claimed before); reverts with NothingToClaim when that is 0.
    /// Once the epoch is final, before its claim deadline, until the pool is swept.
    function claim(uint64 epoch, IERC20 token) external returns (uint256 paid);

    /// @notice Claims from the pools of all `epochs` in `token` in one transfer; epochs with
    /// nothing due are skipped, and it reverts with NothingToClaim only if nothing at all is due.
    /// Each epoch must be claimable (final, before its deadline, not swept).
    function claimMany(uint64[] calldata epochs, IERC20 token) external returns (uint256 paid);

    // ---- governance (only the Consortium contract, i.e. an executed call proposal) ----

    /// @notice Sets the split of epochs not yet funded; the parts sum to exactly BPS and a
    /// non-zero operations share needs an operations address.
    function setSplit(Split calldata split) external;

    /// @notice Sets how long claims stay open after an epoch is finalized
    /// (MIN_CLAIM_WINDOW..MAX_CLAIM_WINDOW seconds), for every epoch not yet swept.
    function setClaimWindow(uint64 window) external;

    /// @notice Moves what was not claimed from the pool of `epoch` in `token` into the pool of
    /// `toEpoch` (later than `epoch` and not final). Only after `epoch`'s claim deadline, once.
    function sweep(uint64 epoch, IERC20 token, uint64 toEpoch) external;

    // ---- views ----

    /// @notice The Consortium contract whose executed proposals govern this one.
    function consortium() external view returns (IConsortium);

    /// @notice The ContributionMeter whose finalized epochs this contract pays out.
    function meter() external view returns (IContributionMeter);

    /// @notice The split of `epoch`: its snapshot once funded, else the current split.
    function splitOf(uint64 epoch) external view returns (Split memory);

    /// @notice The split epochs funded from now on get.
    function currentSplit() external view returns (Split memory);

    /// @notice Seconds claims stay open after an epoch is finalized.
    function claimWindow() external view returns (uint64);

    /// @notice Everything put into the pool of `epoch` in `token` (sweeps into it included).
    function deposited(uint64 epoch, IERC20 token) external view returns (uint256);

    /// @notice Everything paid out of the pool of `epoch` in `token`.
    function claimedTotal(uint64 epoch, IERC20 token) external view returns (uint256);

    /// @notice What `account` was paid out of the pool of `epoch` in `token`.
    function claimed(uint64 epoch, IERC20 token, address account) external view returns (uint256);

    /// @notice What `account` could claim now from the pool of `epoch` in `token` (0 unless the
    /// epoch is final, before its deadline and not swept).
    function claimable(uint64 epoch, IERC20 token, address account) external view returns (uint256);

    /// @notice The parts of `account`'s entitlement in the pool of `epoch` in `token` as it
    /// stands (the points are final only once the epoch is), before subtracting its claims.
    function entitlement(uint64 epoch, IERC20 token, address account)
        external
        view
        returns (uint256 data, uint256 algorithm, uint256 compute, uint256 patient, uint256 operations);

    /// @notice When claims of `epoch` close (finalizedAt + claimWindow); 0 until it is final.
    function claimDeadline(uint64 epoch) external view returns (uint64);

    /// @notice Whether the pool of `epoch` in `token` was swept.
    function swept(uint64 epoch, IERC20 token) external view returns (bool);
}
