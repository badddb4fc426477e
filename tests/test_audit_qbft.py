"""QBFT header verification: Besu's published extraData vector through our codec and its two
hashing exclusions, then synthetic QBFT chains built and sealed here with generated validator
keys: they verify, and forged, foreign, duplicated, missing or stale seals are refused."""
from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
import rlp
from coincurve import PrivateKey
from eth_utils import keccak

from fullchain.audit import qbft
from fullchain.audit.headers import BlockHeader, verify_header_chain
from fullchain.errors import VerificationFailed
from fullchain.nodeconfig.extradata import QbftExtraData, Vote, encode_genesis_extra_data

# Besu consensus/qbft/src/test/.../QbftExtraDataCodecTest.java, RAW_HEX_ENCODING_STRING: vanity
# 0x01..0x20, validators 0x..01 and 0x..02, an add vote for 0x..01, round 0xFEDCBA, seals
# (r=1, s=10, recId 0) and (r=10, s=1, recId 0).
BESU_VECTOR = bytes.fromhex(
    "f8f0a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ea940000000000000000"
    "000000000000000000000001940000000000000000000000000000000000000002d7940000000000000000"
    "00000000000000000000000181ff83fedcbaf886b841000000000000000000000000000000000000000000"
    "0000000000000000000001000000000000000000000000000000000000000000000000000000000000000a"
    "00b841000000000000000000000000000000000000000000000000000000000000000a0000000000000000"
    "00000000000000000000000000000000000000000000000100")
ONE, TWO = "0x" + "00" * 19 + "01", "0x" + "00" * 19 + "02"


def header(number: int, parent: bytes, extra_data: bytes, *, miner: str, **changes: object) -> BlockHeader:
    """A Cancun-shaped QBFT header (Besu's constants: mixHash, difficulty 1)."""
    base = BlockHeader(
        parentHash=parent, sha3Uncles=keccak(rlp.encode([])), miner=bytes.fromhex(miner[2:]), stateRoot=b"\x01" * 32,
        transactionsRoot=b"\x02" * 32, receiptsRoot=b"\x03" * 32, logsBloom=bytes(256), difficulty=1, number=number,
        gasLimit=30_000_000, gasUsed=21_000 * number, timestamp=1_800_000_000 + 2 * number, extraData=extra_data,
        mixHash=qbft.MIX_HASH, nonce=bytes(8),
        extra=(("baseFeePerGas", 0), ("withdrawalsRoot", keccak(rlp.encode(b""))), ("blobGasUsed", 0),
               ("excessBlobGas", 0), ("parentBeaconBlockRoot", bytes(32))))
    return replace(base, **changes)


def address_of(key: bytes) -> str:
    return "0x" + keccak(PrivateKey(key).public_key.format(compressed=False)[1:])[-20:].hex()


class Network:
    """Four validators (quorum 3) and a chain they seal."""

    def __init__(self, size: int = 4) -> None:
        keys = [secrets.token_bytes(32) for _ in range(size)]
        self.keys = dict(sorted((address_of(k), k) for k in keys))
        self.validators = list(self.keys)
        self.outsider = secrets.token_bytes(32)

    def unsealed(self, number: int, parent: bytes, *, round_: int = 0, **changes: object) -> BlockHeader:
        extra = QbftExtraData(bytes(32), self.validators, None, round_, [])
        return header(number, parent, qbft.encode_extra_data(extra, round_=round_, seals=[]),
                      miner=self.validators[number % len(self.validators)], **changes)

    def sealed(self, unsealed: BlockHeader, seals: list[bytes]) -> BlockHeader:
        extra = qbft.parse_extra_data(unsealed)
        return unsealed.with_extra_data(qbft.encode_extra_data(extra, round_=extra.round, seals=seals))

    def seal(self, unsealed: BlockHeader, signers: list[bytes]) -> BlockHeader:
        return self.sealed(unsealed, [qbft.sign_seal(k, unsealed) for k in signers])

    def chain(self, length: int) -> list[BlockHeader]:
        genesis = header(0, bytes(32), encode_genesis_extra_data(self.validators), miner="0x" + "00" * 20)
        headers = [genesis]
        for number in range(1, length):
            unsealed = self.unsealed(number, qbft.block_hash(headers[-1]), round_=number % 3)
            signers = list(self.keys.values())[number % 2:][:3]  # a different quorum each block
            headers.append(self.seal(unsealed, signers))
        return headers


@pytest.fixture(scope="module")
def net() -> Network:
    return Network()


# ---- Besu's vector ----

def test_besus_vector_decodes_and_reencodes_byte_for_byte() -> None:
    extra = qbft.parse_extra_data(header(1, bytes(32), BESU_VECTOR, miner=ONE))
    assert (extra.vanity, extra.validators, extra.vote, extra.round) == (bytes(range(1, 33)), [ONE, TWO],
                                                                        Vote(ONE, True), 0xFEDCBA)
    assert qbft.encode_extra_data(extra, round_=extra.round, seals=extra.seals) == BESU_VECTOR


def test_besus_two_exclusions_of_the_vector() -> None:
    """extraDataCanBeEncodedWithoutCommitSeals and ...WithoutCommitSealsOrRoundNumber, built the
    way Besu's test builds its expectation: the round kept or written as null, seals an empty list."""
    vote = [bytes.fromhex(ONE[2:]), b"\xff"]
    validators = [bytes.fromhex(ONE[2:]), bytes.fromhex(TWO[2:])]
    without_seals = rlp.encode([bytes(range(1, 33)), validators, vote, 0xFEDCBA, []])
    without_seals_and_round = rlp.encode([bytes(range(1, 33)), validators, vote, b"", []])
    h = header(7, b"\x09" * 32, BESU_VECTOR, miner=ONE)
    assert qbft.seal_hash(h) == keccak(h.with_extra_data(without_seals).rlp())
    assert qbft.block_hash(h) == keccak(h.with_extra_data(without_seals_and_round).rlp())
    assert qbft.block_hash(h) != h.hash()  # the naive keccak(rlp(header as served)) is not the block hash


def test_besus_vector_seals_are_not_its_validators() -> None:
    h = header(7, b"\x09" * 32, BESU_VECTOR, miner=ONE)
    with pytest.raises(VerificationFailed, match="block 7: commit seal 0 is (by 0x[0-9a-f]{40}, not a validator|not a "
                                                 "valid signature)"):
        qbft.verify_seals(h, [ONE, TWO])


# ---- synthetic chains ----

def test_a_sealed_chain_verifies_header_by_header_and_link_by_link(net: Network) -> None:
    headers = net.chain(6)
    hashes = verify_header_chain(headers, qbft.block_hash(headers[-1]), hash_function=qbft.block_hash)
    assert hashes[0] == headers[0].hash()  # genesis hashes as it is
    for h in headers[1:]:
        committers = qbft.verify_qbft_header(h, net.validators)
        assert len(committers) == 3 and set(committers) <= set(net.validators)
        assert qbft.recover_committers(h) == committers
    with pytest.raises(VerificationFailed, match="parentHash"):  # the naive hash breaks every link
        verify_header_chain(headers, qbft.block_hash(headers[-1]))


def test_the_block_hash_ignores_round_and_seals_and_the_seal_hash_keeps_the_round(net: Network) -> None:
    a = net.unsealed(3, b"\x01" * 32, round_=0)
    b = net.unsealed(3, b"\x01" * 32, round_=5)
    assert qbft.block_hash(a) == qbft.block_hash(b) == qbft.block_hash(net.seal(b, list(net.keys.values())[:3]))
    assert qbft.seal_hash(a) != qbft.seal_hash(b)
    assert qbft.seal_hash(b) == qbft.seal_hash(net.seal(b, list(net.keys.values())[:3]))


def test_forged_and_foreign_seals_are_refused(net: Network) -> None:
    keys = list(net.keys.values())
    unsealed = net.unsealed(4, b"\x01" * 32, round_=1)
    good = [qbft.sign_seal(k, unsealed) for k in keys[:3]]
    outsider = address_of(net.outsider)
    with pytest.raises(VerificationFailed, match=f"block 4: commit seal 1 is by {outsider}, not a validator"):
        qbft.verify_seals(net.sealed(unsealed, [good[0], qbft.sign_seal(net.outsider, unsealed), *good[1:]]),
                          net.validators)
    forged = bytearray(good[2])
    forged[10] ^= 0xFF  # r altered: recovers someone else, or nobody
    with pytest.raises(VerificationFailed, match="block 4: commit seal 2 is (by 0x[0-9a-f]{40}, not a validator|"
                                                 "not a valid signature)"):
        qbft.verify_seals(net.sealed(unsealed, [*good[:2], bytes(forged)]), net.validators)
    with pytest.raises(VerificationFailed, match="commit seal 0 is not a valid signature"):
        qbft.verify_seals(net.sealed(unsealed, [bytes(64) + b"\x00", *good[1:]]), net.validators)
    with pytest.raises(VerificationFailed, match="commit seal 0 is not r \\|\\| s \\|\\| recId"):
        qbft.verify_seals(net.sealed(unsealed, [good[0][:64] + b"\x02", *good[1:]]), net.validators)
    # seals made for round 0 do not carry over to the same block proposed in round 1
    stale = [qbft.sign_seal(k, net.unsealed(4, b"\x01" * 32, round_=0)) for k in keys[:3]]
    with pytest.raises(VerificationFailed, match="commit seal 0 is by 0x[0-9a-f]{40}, not a validator"):
        qbft.verify_seals(net.sealed(unsealed, stale), net.validators)
    # a header altered after sealing: the seals no longer recover the validators
    altered = replace(net.sealed(unsealed, good), gasUsed=unsealed.gasUsed + 1)
    with pytest.raises(VerificationFailed, match="commit seal 0 is by 0x[0-9a-f]{40}, not a validator"):
        qbft.verify_seals(altered, net.validators)
    # the seals are fine against the right set, refused against another
    qbft.verify_seals(net.sealed(unsealed, good), net.validators)
    with pytest.raises(VerificationFailed, match="not a validator"):
        qbft.verify_seals(net.sealed(unsealed, good), Network().validators)


def test_duplicate_seals_count_once_and_are_refused_as_besu_does(net: Network) -> None:
    keys = list(net.keys.values())
    unsealed = net.unsealed(5, b"\x02" * 32)
    twice = [qbft.sign_seal(keys[0], unsealed), qbft.sign_seal(keys[1], unsealed), qbft.sign_seal(keys[0], unsealed)]
    with pytest.raises(VerificationFailed, match=f"commit seals 0 and 2 are both by validator {net.validators[0]}"):
        qbft.verify_seals(net.sealed(unsealed, twice), net.validators)


def test_too_few_seals_are_refused(net: Network) -> None:
    keys = list(net.keys.values())
    unsealed = net.unsealed(6, b"\x03" * 32)
    for count in (0, 1, 2):
        with pytest.raises(VerificationFailed, match=f"block 6 is sealed by {count} of 4 validators, 3 needed"):
            qbft.verify_seals(net.seal(unsealed, keys[:count]), net.validators)
    assert len(qbft.verify_seals(net.seal(unsealed, keys), net.validators)) == 4


def test_quorum_is_ceil_two_thirds() -> None:
    assert [qbft.quorum(n) for n in range(1, 11)] == [1, 2, 2, 3, 4, 4, 5, 6, 6, 7]
    single = Network(1)
    unsealed = single.unsealed(1, b"\x04" * 32)
    qbft.verify_qbft_header(single.seal(unsealed, list(single.keys.values())), single.validators)


def test_header_rules_besides_the_seals(net: Network) -> None:
    keys = list(net.keys.values())[:3]
    good = net.unsealed(2, b"\x05" * 32)
    for change, message in [({"mixHash": bytes(32)}, "mixHash 0x0+ is not QBFT's constant"),
                            ({"difficulty": 0}, "difficulty 0, QBFT requires 1"),
                            ({"miner": b"\x07" * 20}, "proposer 0x(07){20} is not a validator")]:
        with pytest.raises(VerificationFailed, match=f"block 2: {message}"):
            qbft.verify_qbft_header(net.seal(replace(good, **change), keys), net.validators)
    other_set = QbftExtraData(bytes(32), net.validators[:3], None, 0, [])
    listed = replace(good, extraData=qbft.encode_extra_data(other_set, round_=0, seals=[]))
    with pytest.raises(VerificationFailed, match="block 2 lists validators .* not the given"):
        qbft.verify_qbft_header(net.seal(listed, keys), net.validators)
    with pytest.raises(VerificationFailed, match="block 2: extraData is not a 5-item QBFT list"):
        qbft.block_hash(replace(good, extraData=rlp.encode([b"x"])))
    with pytest.raises(VerificationFailed, match="block 0 has no commit seals"):
        qbft.verify_qbft_header(net.chain(1)[0], net.validators)


def test_a_whole_run_checks_links_and_seals_and_names_the_first_bad_block(net: Network) -> None:
    headers = net.chain(5)
    trusted = qbft.block_hash(headers[-1])
    assert qbft.verify_qbft_chain(headers, net.validators, trusted)[-1] == trusted
    # Re-sealing block 3 with two seals keeps its hash (seals are not hashed) but not its quorum.
    weak = net.seal(net.sealed(headers[3], []), list(net.keys.values())[:2])
    assert qbft.block_hash(weak) == qbft.block_hash(headers[3])
    with pytest.raises(VerificationFailed, match="block 3 is sealed by 2 of 4 validators"):
        qbft.verify_qbft_chain([*headers[:3], weak, headers[4]], net.validators, trusted)
    with pytest.raises(VerificationFailed, match="block 1 lists validators .* not the given"):
        qbft.verify_qbft_chain(headers, Network().validators, trusted)
