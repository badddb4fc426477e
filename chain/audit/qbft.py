"""QBFT (Besu) headers: the two header hashes, commit-seal recovery and the quorum rule.

extraData = RLP([vanity(32), [validators], vote, round, [commit seals]]), parsed by the same codec
that writes genesis files (`fullchain.nodeconfig.extradata`). Besu hashes a header two ways
(`BftBlockHashing`, reference/ANCHORS.md 1b):

- the block hash (what `eth_getBlockBy*` returns and the child's parentHash holds) replaces
  extraData by RLP([vanity, validators, vote, 0, []]): round 0 and no seals, because both differ
  between copies of the same block circulated at one height;
- the commit-seal signing hash replaces it by RLP([vanity, validators, vote, round, []]): the round
  stays, the seals go.

Genesis (block 0) is hashed with its extraData unchanged. A seal is r(32) || s(32) || recId(1),
recId 0 or 1, over the signing hash. A block needs seals from ceil(2n/3) distinct validators of the
set it was produced under; like Besu (`BftCommitSealsValidationRule`), a header with two seals by
one validator, or a seal by anyone else, is refused outright.
"""
from __future__ import annotations

from collections.abc import Sequence

import rlp
from coincurve import PublicKey
from eth_utils import keccak

from ..errors import InvalidInput, VerificationFailed
from ..nodeconfig.extradata import SEAL_LENGTH, VOTE_ADD, VOTE_DROP, QbftExtraData, decode_extra_data
from .headers import BlockHeader, verify_header_chain

# BftHelpers.EXPECTED_MIX_HASH: the ASCII text "ctical byzantine fault tolerance"
MIX_HASH = bytes.fromhex("63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365")
DIFFICULTY = 1


def parse_extra_data(header: BlockHeader) -> QbftExtraData:
    try:
        return decode_extra_data(header.extraData)
    except InvalidInput as exc:
        raise VerificationFailed(f"block {header.number}: {exc.message}",
                                 hint="the header was altered or is not from a QBFT chain") from None


def encode_extra_data(extra: QbftExtraData, *, round_: int, seals: Sequence[bytes]) -> bytes:
    """extraData with the given round and seals (the codec's `encode` with one of its exclusions)."""
    vote = [] if extra.vote is None else [_address(extra.vote.recipient), VOTE_ADD if extra.vote.add else VOTE_DROP]
    return rlp.encode([extra.vanity, [_address(v) for v in extra.validators], vote, round_, list(seals)])


def block_hash(header: BlockHeader) -> bytes:
    """The on-chain hash: extraData with round 0 and no seals (`calculateHashOfBftBlockOnChain`)."""
    if header.number == 0:
        return header.hash()
    extra = parse_extra_data(header)
    return header.with_extra_data(encode_extra_data(extra, round_=0, seals=[])).hash()


def seal_hash(header: BlockHeader) -> bytes:
    """What each validator signs: extraData with its round and no seals (`calculateDataHashForCommittedSeal`)."""
    extra = parse_extra_data(header)
    return header.with_extra_data(encode_extra_data(extra, round_=extra.round, seals=[])).hash()


def recover_committers(header: BlockHeader) -> list[str]:
    """The address behind each commit seal, in seal order (0x lower-case)."""
    digest = seal_hash(header)
    return [_recover(seal, digest, header.number, i) for i, seal in enumerate(parse_extra_data(header).seals)]


def quorum(validator_count: int) -> int:
    """ceil(2n/3) (`BftHelpers.calculateRequiredValidatorQuorum`)."""
    return -(-2 * validator_count // 3)


def verify_seals(header: BlockHeader, validators: Sequence[str]) -> list[str]:
    """Check the commit seals of `header` against the validator set it was produced under; returns
    the committers. Refuses, naming the first offending seal: a seal that does not recover, a seal
    by a non-validator, two seals by one validator; then too few seals for the quorum."""
    members = _validator_set(validators)
    digest = seal_hash(header)
    seen: dict[str, int] = {}
    for i, seal in enumerate(parse_extra_data(header).seals):
        signer = _recover(seal, digest, header.number, i)
        if signer not in members:
            raise VerificationFailed(f"block {header.number}: commit seal {i} is by {signer}, not a validator",
                                     hint="the seal is forged, or the header or validator set was altered")
        if signer in seen:
            raise VerificationFailed(f"block {header.number}: commit seals {seen[signer]} and {i} are both by "
                                     f"validator {signer}", hint="a validator's seal counts once; Besu refuses this header")
        seen[signer] = i
    need = quorum(len(members))
    if len(seen) < need:
        raise VerificationFailed(f"block {header.number} is sealed by {len(seen)} of {len(members)} validators, "
                                 f"{need} needed", hint="the header lacks commit seals: it was not finalised")
    return list(seen)


def verify_qbft_header(header: BlockHeader, validators: Sequence[str]) -> list[str]:
    """Besu's QBFT header rules that need no parent state: mixHash and difficulty constants, the
    header lists exactly `validators`, the proposer (coinbase) is one of them, and the seals make
    the quorum. Returns the committers. The validator set is taken as given: a header listing
    another set is refused (vote tallying across blocks is not followed)."""
    members = _validator_set(validators)
    if header.number == 0:
        raise VerificationFailed("block 0 has no commit seals", hint="trust genesis by its hash instead")
    if header.mixHash != MIX_HASH:
        raise VerificationFailed(f"block {header.number}: mixHash 0x{header.mixHash.hex()} is not QBFT's constant",
                                 hint="the header was altered or is not from a QBFT chain")
    if header.difficulty != DIFFICULTY:
        raise VerificationFailed(f"block {header.number}: difficulty {header.difficulty}, QBFT requires 1",
                                 hint="the header was altered or is not from a QBFT chain")
    listed = parse_extra_data(header).validators
    if set(listed) != members or len(listed) != len(members):
        raise VerificationFailed(f"block {header.number} lists validators {sorted(listed)}, not the given "
                                 f"{sorted(members)}", hint="give the validator set this block was produced under")
    proposer = "0x" + header.miner.hex()
    if proposer not in members:
        raise VerificationFailed(f"block {header.number}: proposer {proposer} is not a validator",
                                 hint="the header was altered")
    return verify_seals(header, validators)


def verify_qbft_chain(headers: Sequence[BlockHeader], validators: Sequence[str], trusted_hash: bytes) -> list[bytes]:
    """A run of QBFT headers up to a trusted block: parent links by the QBFT block hash, and every
    header after genesis sealed by a quorum of `validators` (Besu's header rules above). Returns
    the block hashes; VerificationFailed names the first block that fails."""
    hashes = verify_header_chain(headers, trusted_hash, hash_function=block_hash)
    for header in headers:
        if header.number != 0:
            verify_qbft_header(header, validators)
    return hashes


def sign_seal(private_key: bytes, header: BlockHeader) -> bytes:
    """A commit seal of `header` by `private_key` (for tests and tools that build QBFT headers)."""
    from coincurve import PrivateKey

    return PrivateKey(private_key).sign_recoverable(seal_hash(header), hasher=None)


def _recover(seal: bytes, digest: bytes, number: int, index: int) -> str:
    if len(seal) != SEAL_LENGTH or seal[64] > 1:
        raise VerificationFailed(f"block {number}: commit seal {index} is not r || s || recId(0 or 1)",
                                 hint="the seal was altered")
    try:
        public = PublicKey.from_signature_and_message(seal, digest, hasher=None)
    except Exception:  # noqa: BLE001 (coincurve raises ValueError or its own errors on an invalid signature)
        raise VerificationFailed(f"block {number}: commit seal {index} is not a valid signature",
                                 hint="the seal was forged or altered") from None
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


def _validator_set(validators: Sequence[str]) -> set[str]:
    members = set()
    for v in validators:
        members.add("0x" + _address(v).hex())
    if not members:
        raise VerificationFailed("no validators given", hint="give the chain's validator addresses")
    return members


def checked_address(text: str) -> str:
    """`text` as a 0x lower-case address; VerificationFailed unless it is 20 bytes of hex."""
    return "0x" + _address(text).hex()


def _address(text: str) -> bytes:
    body = text[2:] if text[:2] in ("0x", "0X") else text
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise VerificationFailed(f"validator {text!r} is not an address", hint="give 0x followed by 40 hex digits")
    return raw
