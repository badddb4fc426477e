"""fullchain.audit.merkle against OpenZeppelin's own published trees (@openzeppelin/merkle-tree
1.0.8, not installed here: its fixtures are pinned below), then proofs, multiproofs and dumps,
and refusal of anything altered."""
from __future__ import annotations

import pytest
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from fullchain.audit.merkle import (
    MultiProof,
    StandardMerkleTree,
    process_multiproof,
    process_proof,
    standard_leaf_hash,
    verify_proof,
)
from fullchain.errors import InvalidInput, VerificationFailed

# OpenZeppelin/merkle-tree src/standard.test.ts ("renders tree representation", leaves 'a'..'f'
# as ['string']) and test/dumps/standard-v1.{sorted,unsorted}.1_0_6.json: the whole tree.
ABCDEF_SORTED_TREE = [
    "0x6deb52b5da8fd108f79fab00341f38d2587896634c646ee52e49f845680a70c8",
    "0x52426e0f1f65ff7e209a13b8c29cffe82e3acaf3dad0a9b9088f3b9a61a929c3",
    "0xfd3cf45654e88d1cc5d663578c82c76f4b5e3826bacaa1216441443504538f51",
    "0x8076923e76cf01a7c048400a2304c9a9c23bbbdac3a98ea3946340fdafbba34f",
    "0x965b92c6cf08303cc4feb7f3e0819c436c2cec17c6f0688a6af139c9a368707c",
    "0xeba909cf4bb90c6922771d7f126ad0fd11dfde93f3937a196274e1ac20fd2f5b",
    "0xc62a8cfa41edc0ef6f6ae27a2985b7d39c7fea770787d7e104696c6e81f64848",
    "0x9cf5a63718145ba968a01c1d557020181c5b252f665cf7386d370eddb176517b",
    "0x9c15a6a0eaeed500fd9eed4cbeab71f797cefcc67bfd46683e4d2e6ff7f06d1c",
    "0x9a4f64e953595df82d1b4f570d34c4f4f0cfaf729a61e9d60e83e579e1aa283e",
    "0x19ba6c6333e0e9a15bf67523e0676e2f23eb8e574092552d5e888c64a4bb3681",
]
ABCDEF_SORTED_INDEX = [8, 10, 7, 5, 9, 6]
ABCDEF_UNSORTED_TREE = [
    "0x23be0977360f08bb0bd7f709a7d543d2cd779c79c66d74e0441919871647de2b",
    "0x8f7234e8cfe39c08ca84a3a3e3274f574af26fd15165fe29e09cbab742daccd9",
    "0x7b0c6cd04b82bfc0e250030a5d2690c52585e0cc6a4f3bc7909d7723b0236ece",
    "0x03707d7802a71ca56a8ad8028da98c4f1dbec55b31b4a25d536b5309cc20eda9",
    "0xfa914d99a18dc32d9725b3ef1c50426deb40ec8d0885dac8edcc5bfd6d030016",
    "0xc62a8cfa41edc0ef6f6ae27a2985b7d39c7fea770787d7e104696c6e81f64848",
    "0x9a4f64e953595df82d1b4f570d34c4f4f0cfaf729a61e9d60e83e579e1aa283e",
    "0xeba909cf4bb90c6922771d7f126ad0fd11dfde93f3937a196274e1ac20fd2f5b",
    "0x9cf5a63718145ba968a01c1d557020181c5b252f665cf7386d370eddb176517b",
    "0x19ba6c6333e0e9a15bf67523e0676e2f23eb8e574092552d5e888c64a4bb3681",
    "0x9c15a6a0eaeed500fd9eed4cbeab71f797cefcc67bfd46683e4d2e6ff7f06d1c",
]
ABCDEF_UNSORTED_INDEX = [10, 9, 8, 7, 6, 5]

# OpenZeppelin/merkle-tree src/standard.test.ts.md, "dump (with seed=0)": 12 random leaves typed
# ['uint256', 'string[]'] (dynamic ABI types, strings with quotes and backslashes), snapshot 1
# built with sortLeaves true, snapshot 2 with false.
OZ_SEED0_VALUES = [
    (66287721640598561135213480820701815755554778029154065470876227036122175634549, ['yuwNJcxE', 'Jo ']),
    (8020480628005766167208460837369934190794242810260282612290465172763096588057, ["2,'V8", 'O]Z', 'm>', '', 'd?^EL&', '">S| Y*+{l', '?']),
    (112879794757531459800339918113696494556225854331871489687900035348027579020272, ['%k[', "N!%'jX", 'm+;qetk=1', 'w&<ss', 'U&MS', '"v`', 'TF-~j 86*', '%`_']),
    (33864524538174213180864155446773490862606903779325919174280360794793758686295, ['Y]=o', '&zf|-$//', 'N5:\\AeJMQS', 'gs', '#zoWcV?']),
    (107050912497579409892259520427413406998189233630829093007942789472118334076630, ['', "D{^9}a'b", 'J?', 'd]hwCj`.0`', '}$8lJ6', '8D?2NFj', '|']),
    (54271045445295662359842113547789337750728303669052826789247544201502186884440, ['', "$5<'C 7\\1", '\\1^']),
    (111226150757742148204378581053541667604574235726642963873222725227309699221207, [':u>t', '<K@3}}>!qy', '7n9|dcX_']),
    (96858402044473560457792214960792831024578767550709334863707734917529211967478, ['.\\;fsj', 'Xm(#', '', ':Dy.`']),
    (13592740185343819183668649861246094997575903674719095797724991205103120326931, ['FDP:', 'vzEG`nVv{', ']p', 'G', "4'b4<Z", 'cX:NZsGKl', 'v2[! @7H7', 'PwL\\', 'eV}G>']),
    (5509260375875029578873473733289375469252728349290951718470281734669489179648, ['"$5k\'?C!', "d`)G7&{('w", 'HcT7M', 'P?sG', 'lt\\{', '}7P<8S+O', '%5(', '']),
    (28058159076087978205069147618309547967726169776540400708466739311867552389147, []),
    (28066774421270881318134657595141877811725911146641727151957461238803360834378, ['fVnd&dJd', '<)Q', 'f"F?VG\\a', 'u$&', 'saIit+', ')']),
]
OZ_SEED0_SORTED_TREE = [
    "0x157e9c38a2614a4493a0e4c38e84a1b43a932665e4d42fa2bf345824b9f101b7",
    "0xcd255af645cd649e62c7e56d324bc8b525a39bd311e05a1a5de00d73ff1fe253",
    "0xcdf36ec033d7950f6d6e01f9a66a67c3940ea15650a1300a5015d068c4543cf3",
    "0x276d63ffce14279caf791d010be5c715c64ec407dba2857628a9741fcd18bcd4",
    "0xf1e0e7f88a5f498d37d5a40af968ad629eabc52b908b9575f3a9735b3cf3a28b",
    "0xcd9fc8f6b33a02d7a601b0c77e7d36f230bc7871623435fe9aecb52887efefc1",
    "0x70ce5864fbf25654a2d3319cab6df02731e260754370f6444c03678b7e5b616a",
    "0xc9487ccb1a15e20f708fd5d6a93b049034d1ec516624b927b5f88ab37f20d06d",
    "0xada38b6fdf007666bf5b19773191f484c99c249e44e1b07d5218f9eefb5ff9b3",
    "0x0b592340f8a37b1fd772c131d85d1fe11f5b5a14ff1575163be1f48cdb569b60",
    "0x18c5e1f567b176b912f504943387285ba231aba9fab91569f5d90e3d72e881ba",
    "0xfff0acc0b7c7dd4dca88db8b9ea4cb251797946d4bf09314f9487d079cbc8168",
    "0xf37f0986a1809cffdf18075f7ff12bdfbc6b46ac4966cbc1dbecf50e59b8146f",
    "0xc141a2c1fa419824b43dbded51a5087ffe99d20964d995f96fb619781a6662d2",
    "0xb2ec04776c599a72b9b1d2dfdee91560dc9f479643e201020ded568f68c06a80",
    "0xa596ffee17c3519d0311edb25ac6d28e08407856a2c6fd1db81a9260295f2851",
    "0x8cf4ffe7174807707948cd21858ba8360b8f37a69e12696a722c9a500970b7dd",
    "0x6de05019198fcc90ba19896fca48ba0c8f9dd00b7264c7a22284351f3652ea5c",
    "0x67c6abdc93cb48b54a8f8e02762d6582ba99455b1112824fa2913e51c14610a3",
    "0x53e63148bd7b5c974996c9469d0fcc9e764d34ddafec28eabb4a93399eb8b882",
    "0x53722a4093d3d803b22250c797e0d4fdda3aebfd9c151c8c775ffa8b440f4629",
    "0x4bda3fa8b7e83fdab2048e0faa3fc2edc803df4f2df2996309c71d9d560ea667",
    "0x02ad059b3cbe14ca74695645b9287bab95865054a44f35870ccb3224d57ae497",
]
OZ_SEED0_SORTED_INDEX = [17, 21, 19, 15, 20, 18, 12, 11, 13, 16, 22, 14]
OZ_SEED0_UNSORTED_TREE = [
    "0x416755c86dca7ee612ac8e7d57ad633c921a7ae38db89a5f323e48d229e84ffe",
    "0x13677535d7b19b9fc5f23ffc8f704c9e2d107095425bc8b25839130f657fb075",
    "0x192cac3ba5f472a627cfae1f5fb045718a4f235cb5ff49b550d5bfd038341470",
    "0x43a9681be55c18a55feedd9e1f3974b5f21ea908ff04a8854066c5290c23b7d5",
    "0x45f53a29311806f9b09f74febceb722002b2f9722a398837a5dfefc78c548d39",
    "0xd70e7d50c7cc2826381283670e0ace8aafd2cd21e66af11ee3905304d5aa6f62",
    "0x644630039f70d93a0517bb63220ff85b25e30444cd9f97371c0d535675f38b9b",
    "0xcd9fc8f6b33a02d7a601b0c77e7d36f230bc7871623435fe9aecb52887efefc1",
    "0x050cf7e8d1d652ef3043b9f155476ac350aca584bce4523aa95e641c19c18b7c",
    "0x91cc06279bb62d99791ed92e10d22ce6dcec6d588279baa721e14e862c59cae6",
    "0x039482d8bc4c52f83e982ff46338855380322c4b01b20a34cd22278214a9e7cd",
    "0xb2ec04776c599a72b9b1d2dfdee91560dc9f479643e201020ded568f68c06a80",
    "0x02ad059b3cbe14ca74695645b9287bab95865054a44f35870ccb3224d57ae497",
    "0x8cf4ffe7174807707948cd21858ba8360b8f37a69e12696a722c9a500970b7dd",
    "0xc141a2c1fa419824b43dbded51a5087ffe99d20964d995f96fb619781a6662d2",
    "0xfff0acc0b7c7dd4dca88db8b9ea4cb251797946d4bf09314f9487d079cbc8168",
    "0xf37f0986a1809cffdf18075f7ff12bdfbc6b46ac4966cbc1dbecf50e59b8146f",
    "0x67c6abdc93cb48b54a8f8e02762d6582ba99455b1112824fa2913e51c14610a3",
    "0x53722a4093d3d803b22250c797e0d4fdda3aebfd9c151c8c775ffa8b440f4629",
    "0xa596ffee17c3519d0311edb25ac6d28e08407856a2c6fd1db81a9260295f2851",
    "0x53e63148bd7b5c974996c9469d0fcc9e764d34ddafec28eabb4a93399eb8b882",
    "0x4bda3fa8b7e83fdab2048e0faa3fc2edc803df4f2df2996309c71d9d560ea667",
    "0x6de05019198fcc90ba19896fca48ba0c8f9dd00b7264c7a22284351f3652ea5c",
]
OZ_SEED0_UNSORTED_INDEX = [22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11]
SEED0_ENCODING = ["uint256", "string[]"]
ABCDEF = [[c] for c in "abcdef"]


def hexes(nodes: list[bytes]) -> list[str]:
    return ["0x" + n.hex() for n in nodes]


@pytest.mark.parametrize("values, encoding, sort, tree, index", [
    (ABCDEF, ["string"], True, ABCDEF_SORTED_TREE, ABCDEF_SORTED_INDEX),
    (ABCDEF, ["string"], False, ABCDEF_UNSORTED_TREE, ABCDEF_UNSORTED_INDEX),
    (OZ_SEED0_VALUES, SEED0_ENCODING, True, OZ_SEED0_SORTED_TREE, OZ_SEED0_SORTED_INDEX),
    (OZ_SEED0_VALUES, SEED0_ENCODING, False, OZ_SEED0_UNSORTED_TREE, OZ_SEED0_UNSORTED_INDEX),
], ids=["abcdef-sorted", "abcdef-unsorted", "seed0-sorted", "seed0-unsorted"])
def test_the_tree_is_node_for_node_the_one_openzeppelin_builds(values, encoding, sort, tree, index) -> None:  # noqa: ANN001
    built = StandardMerkleTree.of(values, encoding, sort_leaves=sort)
    assert hexes(built.tree) == tree
    assert [i for _, i in built.values] == index
    for i, value in enumerate(values):
        assert verify_proof(built.root, encoding, value, built.proof(i)) == built.tree[index[i]]


def test_sorted_is_the_default_as_in_the_npm_package() -> None:
    assert "0x" + StandardMerkleTree.of(ABCDEF, ["string"]).root.hex() == ABCDEF_SORTED_TREE[0]


def test_the_leaf_is_double_hashed_abi_encoding() -> None:
    from eth_abi import encode
    from eth_utils import keccak

    value = ["0x1111111111111111111111111111111111111111", 5 * 10**18]
    assert standard_leaf_hash(["address", "uint256"], value) == keccak(keccak(encode(["address", "uint256"], value)))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_record_proves_and_tampering_is_refused(n: int) -> None:
    records = [[i, f"record {i}"] for i in range(n)]
    tree = StandardMerkleTree.of(records, ["uint256", "string"])
    for i, record in enumerate(records):
        proof = tree.proof(i)
        verify_proof(tree.root, ["uint256", "string"], record, proof)
        with pytest.raises(VerificationFailed, match="leads to root"):
            verify_proof(tree.root, ["uint256", "string"], [record[0], record[1] + "!"], proof)
        if proof:
            bad = list(proof)
            bad[-1] = bytes(32)
            with pytest.raises(VerificationFailed, match="leads to root"):
                verify_proof(tree.root, ["uint256", "string"], record, bad)
            with pytest.raises(VerificationFailed, match="leads to root"):
                verify_proof(tree.root, ["uint256", "string"], record, proof[:-1])
    other = StandardMerkleTree.of(records + [[n, "extra"]], ["uint256", "string"])
    with pytest.raises(VerificationFailed, match="not the anchored"):
        verify_proof(other.root, ["uint256", "string"], records[0], tree.proof(0))


def test_an_inner_node_does_not_pass_as_a_record() -> None:
    """Second preimage: with single hashing, the 64 bytes of two children would be a 'record'."""
    tree = StandardMerkleTree.of([[i] for i in range(4)], ["uint256"])
    left, right = sorted([tree.tree[3], tree.tree[4]])
    forged = [int.from_bytes(left, "big"), int.from_bytes(right, "big")]
    with pytest.raises(VerificationFailed):
        verify_proof(tree.root, ["uint256", "uint256"], forged, [tree.tree[2]])


def test_multiproofs_as_openzeppelin_tests_them() -> None:
    tree = StandardMerkleTree.of(ABCDEF, ["string"])
    for ids in [[], [0, 1], [0, 1, 5], [1, 3, 4, 5], [0, 2, 4, 5], [0, 1, 2, 3, 4, 5], [4, 1, 5, 0, 2]]:
        multi = tree.multiproof(ids)
        assert sorted(multi.leaves) == sorted(tree.leaf_hash(ABCDEF[i]) for i in ids)
        assert process_multiproof(multi) == tree.root
    multi = tree.multiproof([0, 2])
    other = StandardMerkleTree.of([[c] for c in "abc"], ["string"])
    assert process_multiproof(MultiProof(multi.leaves, multi.proof, multi.proof_flags)) != other.root
    swapped = MultiProof([multi.leaves[0], tree.leaf_hash(["z"])], multi.proof, multi.proof_flags)
    assert process_multiproof(swapped) != tree.root
    with pytest.raises(VerificationFailed, match="shape"):
        process_multiproof(MultiProof(multi.leaves, multi.proof[:-1], multi.proof_flags))
    with pytest.raises(InvalidInput, match="twice"):
        tree.multiproof([1, 1])


def test_dump_loads_back_and_an_altered_dump_is_refused() -> None:
    tree = StandardMerkleTree.of(ABCDEF, ["string"])
    dump = tree.dump()
    assert dump["tree"] == ABCDEF_SORTED_TREE and dump["format"] == "standard-v1"
    assert StandardMerkleTree.load(dump).root == tree.root
    altered = {**dump, "values": [dict(v) for v in dump["values"]]}
    altered["values"][2]["value"] = ["x"]
    with pytest.raises(VerificationFailed, match="record 2"):
        StandardMerkleTree.load(altered)
    altered = {**dump, "tree": list(dump["tree"])}
    altered["tree"][1] = "0x" + "00" * 32
    with pytest.raises(VerificationFailed, match="node 1 is not the hash"):
        StandardMerkleTree.load(altered)


def test_bad_input_is_named() -> None:
    with pytest.raises(InvalidInput, match="at least one record"):
        StandardMerkleTree.of([], ["uint256"])
    with pytest.raises(InvalidInput, match="2 fields but the leaf encoding has 1"):
        StandardMerkleTree.of([[1, 2]], ["uint256"])
    with pytest.raises(InvalidInput, match="does not ABI-encode"):
        StandardMerkleTree.of([["not a number"]], ["uint256"])
    with pytest.raises(InvalidInput, match="out of range"):
        StandardMerkleTree.of([[1]], ["uint256"]).proof(1)
    with pytest.raises(VerificationFailed, match="proof\\[0\\] is not 32 bytes"):
        process_proof(bytes(32), [b"short"])


# The leaf encoder takes a fast path for records of static fields; it must agree with eth-abi on
# every value: same bytes when eth-abi encodes, an error when eth-abi refuses.
STATIC_TYPES = ["uint8", "uint64", "uint256", "address", "bytes32", "bytes4", "bool", "uint"]
_values = st.one_of(
    st.integers(min_value=-2, max_value=2**256 + 1), st.booleans(),
    st.binary(min_size=0, max_size=33), st.binary(min_size=20, max_size=20),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b)),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex().upper()),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()[:-1] + "G"),
)


_VALID = {"uint8": st.integers(0, 255), "uint64": st.integers(0, 2**64 - 1), "uint256": st.integers(0, 2**256 - 1),
          "uint": st.integers(0, 2**256 - 1), "bytes32": st.binary(min_size=32, max_size=32),
          "bytes4": st.binary(min_size=4, max_size=4), "bool": st.booleans(),
          "address": st.binary(min_size=20, max_size=20).flatmap(
              lambda b: st.sampled_from([b, "0x" + b.hex(), to_checksum_address(b)]))}
_field = st.sampled_from(STATIC_TYPES).flatmap(lambda t: st.tuples(st.just(t), _VALID[t] | _VALID[t] | _values))


@settings(max_examples=400, deadline=None)
@given(st.lists(_field, min_size=1, max_size=4))
def test_the_fast_leaf_encoding_agrees_with_eth_abi(fields) -> None:  # noqa: ANN001
    from eth_abi import encode
    from eth_utils import keccak

    types, values = [t for t, _ in fields], [v for _, v in fields]
    try:
        expected = keccak(keccak(encode(types, values)))
    except Exception:  # noqa: BLE001 (eth-abi refuses: so must we)
        with pytest.raises(InvalidInput):
            standard_leaf_hash(types, values)
        return
    assert standard_leaf_hash(types, values) == expected


def test_a_dump_survives_json_and_hidden_records_are_refused() -> None:
    import json

    record = ["uint256", "address", "bytes32", "uint64[]"]
    values = [[2**200 + i, "0x" + f"{i:040x}", bytes([i]) * 32, [i, i + 1]] for i in range(5)]
    tree = StandardMerkleTree.of(values, record)
    text = json.dumps(tree.dump())
    loaded = StandardMerkleTree.load(json.loads(text))
    assert loaded.root == tree.root and [v for v, _ in loaded.values] == values
    # a record replaced by a copy of another, pointing at the same leaf: the replaced one is hidden
    dump = json.loads(text)
    dump["values"][3] = dict(dump["values"][1])
    with pytest.raises(VerificationFailed, match="records 1 and 3 both claim leaf"):
        StandardMerkleTree.load(dump)
    dump = json.loads(text)
    dump["values"][0]["value"][0] = "not a number"
    with pytest.raises(VerificationFailed, match="malformed"):
        StandardMerkleTree.load(dump)
    dump = json.loads(text)
    dump["values"][0]["value"] = dump["values"][0]["value"][:3]
    with pytest.raises(VerificationFailed, match="malformed"):
        StandardMerkleTree.load(dump)
