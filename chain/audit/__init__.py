"""Verification of audit evidence with no node and no network: OpenZeppelin-compatible Merkle
batches (`merkle`), block headers and their parent links (`headers`), receipt and log inclusion
under a block's receiptsRoot (`receipts`), and QBFT commit seals (`qbft`).

Every `verify_*` function returns what it proved or raises :class:`~fullchain.errors.VerificationFailed`
naming the first check that failed.
"""

# The trail and the license-at-time-of-use check read the event index only (no web3).
from .check import AccessVerdict, CheckReport, Violation, check_dataset, check_events  # noqa: E402
from .trail import Bound, Trail, TrailEvent, dataset_trail, member_trail, parse_bound  # noqa: E402

__all__ = ["AccessVerdict", "Bound", "CheckReport", "Trail", "TrailEvent", "Violation", "check_dataset",
           "check_events", "dataset_trail", "member_trail", "parse_bound"]
