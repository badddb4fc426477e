"""The QBFT header extraData: RLP([vanity(32), [validators], vote, round, [seals]]).

Besu's codec (`QbftExtraDataCodec`): the vote is an empty list when there is none, else
[recipient, 0xFF] to add or [recipient, b""] to drop; the round is a minimal big-endian integer
(round 0 is the empty string, unlike IBFT 2.0's fixed 4 bytes); seals are 65-byte r||s||v.
A genesis block carries 32 zero bytes of vanity, the validators, no vote, round 0 and no seals.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import rlp

from fullchain.errors import InvalidInput

VANITY_LENGTH = 32
ADDRESS_LENGTH = 20
SEAL_LENGTH = 65
VOTE_ADD = b"\xff"
VOTE_DROP = b""


@dataclass(frozen=True)
class Vote:
    recipient: str  # 0x-prefixed lower-case address
    add: bool


@dataclass(frozen=True)
class QbftExtraData:
    vanity: bytes
    validators: list[str]  # 0x-prefixed lower-case addresses, in the order of the header
    vote: Vote | None
    round: int
    seals: list[bytes]


def _address_bytes(address: str) -> bytes:
    body = address[2:] if address.lower().startswith("0x") else address
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != ADDRESS_LENGTH:
        raise InvalidInput(f"validator '{address}' is not an address", hint="give 0x followed by 40 hex digits")
    return raw


def sorted_validators(addresses: Sequence[str]) -> list[str]:
    """Ascending by address bytes, the order Besu requires in headers after genesis."""
    return ["0x" + raw.hex() for raw in sorted(_address_bytes(a) for a in addresses)]


def encode_genesis_extra_data(validators: Sequence[str]) -> bytes:
    """The genesis extraData for `validators`, sorted ascending and without duplicates."""
    ordered = sorted_validators(validators)
    if not ordered:
        raise InvalidInput("a QBFT network needs at least one validator", hint="pass --validators 1 or more")
    if len(set(ordered)) != len(ordered):
        raise InvalidInput("the same validator is listed twice", hint="give each validator once")
    return rlp.encode([b"\0" * VANITY_LENGTH, [_address_bytes(a) for a in ordered], [], 0, []])


def decode_extra_data(data: bytes) -> QbftExtraData:
    """Parse QBFT extraData; InvalidInput when it is not well-formed."""
    try:
        items = rlp.decode(data)
    except rlp.exceptions.DecodingError as exc:
        raise InvalidInput(f"extraData is not RLP ({exc})", hint="regenerate genesis.json") from None
    if not isinstance(items, list) or len(items) != 5:
        raise InvalidInput("extraData is not a 5-item QBFT list", hint="regenerate genesis.json")
    vanity, validators, vote, round_, seals = items
    if not isinstance(vanity, bytes) or len(vanity) != VANITY_LENGTH:
        raise InvalidInput("extraData vanity is not 32 bytes", hint="regenerate genesis.json")
    if not isinstance(validators, list) or any(not isinstance(v, bytes) or len(v) != ADDRESS_LENGTH
                                               for v in validators):
        raise InvalidInput("extraData validators are not 20-byte addresses", hint="regenerate genesis.json")
    parsed_vote = None
    if not isinstance(vote, list) or len(vote) not in (0, 2):
        raise InvalidInput("extraData vote is malformed", hint="regenerate genesis.json")
    if vote:
        recipient, kind = vote
        if not isinstance(recipient, bytes) or len(recipient) != ADDRESS_LENGTH or kind not in (VOTE_ADD, VOTE_DROP):
            raise InvalidInput("extraData vote is malformed", hint="regenerate genesis.json")
        parsed_vote = Vote("0x" + recipient.hex(), kind == VOTE_ADD)
    if not isinstance(round_, bytes) or round_[:1] == b"\0" or len(round_) > 4:
        raise InvalidInput("extraData round is not a minimal integer", hint="regenerate genesis.json")
    if not isinstance(seals, list) or any(not isinstance(s, bytes) or len(s) != SEAL_LENGTH for s in seals):
        raise InvalidInput("extraData seals are not 65-byte signatures", hint="regenerate genesis.json")
    return QbftExtraData(vanity=vanity, validators=["0x" + v.hex() for v in validators], vote=parsed_vote,
                         round=int.from_bytes(round_, "big"), seals=list(seals))
