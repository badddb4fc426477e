// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title FeeOnTransferToken
/// @notice Test-only ERC-20 subset that burns 1% of every transferFrom, so the recipient gets
/// less than the amount asked for: what BenefitDistributor must refuse.
/// @dev Compiled by tests/test_distributor_contract.py at test time; never shipped.
contract FeeOnTransferToken {
    mapping(address account => uint256) public balanceOf;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Creates `amount` for `to` (anyone: a test token).
    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Lets `spender` move up to `amount` of the caller's tokens.
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Moves `amount` to `to`, without a fee.
    function transfer(address to, uint256 amount) external returns (bool) {
        balanceOf[msg.sender] -= amount;
        balanceOf[to] += amount;
        emit Transfer(msg.sender, to, amount);
        return true;
    }

    /// @notice Moves `amount` from `from` to `to`, burning 1% on the way.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        allowance[from][msg.sender] -= amount;
        balanceOf[from] -= amount;
        uint256 fee = amount / 100;
        balanceOf[to] += amount - fee;
        emit Transfer(from, to, amount - fee);
        emit Transfer(from, address(0), fee);
        return true;
    }
}
