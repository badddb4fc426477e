// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IConsortium} from "./IConsortium.sol";

/// @title SettlementToken
/// @notice The ERC-20 (with EIP-2612 permit) that development chains settle benefit pools in:
/// "Fullchain Settlement" (FCS), 18 decimals. Any active governor of the consortium mints, so a
/// demo or a test can fund pools; production consortia choose an existing token instead.
/// @dev Deployed by `Fullchain.deploy` on development chains only (embedded, chain id 31337).
contract SettlementToken is ERC20, ERC20Permit {
    uint32 private constant _ROLE_GOVERNOR = 1 << 6;

    /// @notice The consortium whose active governors may mint.
    IConsortium public immutable consortium;

    /// @notice The caller is not an active governor of the consortium.
    error SettlementTokenNotGovernor(address caller);

    /// @notice Deploys the token with no supply; governors mint.
    /// @param consortium_ Whose active governors may mint.
    constructor(IConsortium consortium_) ERC20("Fullchain Settlement", "FCS") ERC20Permit("Fullchain Settlement") {
        consortium = consortium_;
    }

    /// @notice Creates `amount` base units for `to`. Active governors of the consortium only.
    function mint(address to, uint256 amount) external {
        if (!consortium.hasRoles(msg.sender, _ROLE_GOVERNOR)) revert SettlementTokenNotGovernor(msg.sender);
        _mint(to, amount);
    }
}
