"""Verification of audit evidence with no node and no network: OpenZeppelin-compatible Merkle
batches (`merkle`), block headers and their parent links (`headers`), receipt and log inclusion
under a block's receiptsRoot (`receipts`), and QBFT commit seals (`qbft`).

Every `verify_*` function returns what it proved or raises :class:`~fullchain.errors.VerificationFailed`
naming the first check that failed.
"""
