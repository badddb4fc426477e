"""Block headers on the embedded chain and on anvil: the header rebuilt from the node's data
hashes to the block hash the node reports, a run of headers links up to a trusted block, and an
altered, removed or reordered header is refused, naming the block."""
from __future__ import annotations

from dataclasses import replace

import pytest

from fullchain.audit.headers import (
    BlockHeader,
    check_header_hash,
    fetch_header,
    verify_header,
    verify_header_chain,
)
from fullchain.errors import VerificationFailed

_RUNS: dict[str, tuple] = {}


@pytest.fixture
def run(chain) -> tuple:  # noqa: ANN001
    """Five consecutive blocks with a transaction each, their headers and the node's hashes."""
    if chain.kind not in _RUNS:
        acct, tx = chain.account()
        for _ in range(5):
            tx.transfer(acct.address, 1)
        last = chain.w3.eth.block_number
        numbers = range(last - 4, last + 1)
        _RUNS[chain.kind] = (chain, [fetch_header(chain.w3, n) for n in numbers],
                             [bytes(chain.w3.eth.get_block(n)["hash"]) for n in numbers])
    return _RUNS[chain.kind]


def test_headers_hash_to_the_nodes_block_hashes_and_link_up(run: tuple) -> None:
    chain, headers, hashes = run
    for header, stated in zip(headers, hashes):
        assert check_header_hash(header, stated) == stated
        assert BlockHeader.from_rlp(header.rlp()) == header
        assert BlockHeader.from_rpc(header.to_json()) == header
        # London to Prague: baseFee, withdrawalsRoot, blob gas, beacon root, requestsHash
        assert [name for name, _ in header.extra][:5] == ["baseFeePerGas", "withdrawalsRoot", "blobGasUsed",
                                                          "excessBlobGas", "parentBeaconBlockRoot"]
    assert verify_header_chain(headers, hashes[-1]) == hashes
    assert verify_header_chain(headers[:1], hashes[0]) == hashes[:1]
    genesis = fetch_header(chain.w3, 0)
    check_header_hash(genesis, chain.w3.eth.get_block(0)["hash"])


def test_anvil_headers_rebuild_from_the_block_json_alone(anvil_chain) -> None:  # noqa: ANN001
    """Anvil serves no raw header: the header comes from eth_getBlockByNumber's fields, both as
    web3 hands them over and as raw JSON-RPC (hex strings)."""
    w3 = anvil_chain.w3
    number = w3.eth.block_number
    verify_header(w3.eth.get_block(number))
    raw = w3.provider.make_request("eth_getBlockByNumber", [hex(number), False])["result"]
    assert verify_header(raw) == fetch_header(w3, number)
    tampered = {**raw, "gasUsed": hex(int(raw["gasUsed"], 16) + 1)}
    with pytest.raises(VerificationFailed, match=f"header of block {number} hashes to 0x[0-9a-f]+, not its stated"):
        verify_header(tampered)
    with pytest.raises(VerificationFailed, match="has blobGasUsed but no withdrawalsRoot"):
        BlockHeader.from_rpc({k: v for k, v in raw.items() if k != "withdrawalsRoot"})


@pytest.mark.parametrize("field, value", [
    ("timestamp", lambda h: h.timestamp + 1), ("receiptsRoot", lambda h: b"\x01" * 32),
    ("extraData", lambda h: h.extraData + b"\x00"), ("logsBloom", lambda h: b"\x01" + h.logsBloom[1:]),
    ("gasUsed", lambda h: h.gasUsed - 1)])
def test_an_altered_header_breaks_the_link_to_its_child(run: tuple, field: str, value) -> None:  # noqa: ANN001
    _, headers, hashes = run
    altered = list(headers)
    altered[2] = replace(headers[2], **{field: value(headers[2])})
    with pytest.raises(VerificationFailed, match=f"block {headers[3].number}'s parentHash .* is not the hash of "
                                                 f"block {headers[2].number}"):
        verify_header_chain(altered, hashes[-1])
    altered = list(headers)
    altered[-1] = replace(headers[-1], **{field: value(headers[-1])})
    with pytest.raises(VerificationFailed, match=f"last header \\(block {headers[-1].number}\\) hashes to"):
        verify_header_chain(altered, hashes[-1])


def test_removed_reordered_or_untrusted_headers_are_refused(run: tuple) -> None:
    _, headers, hashes = run
    with pytest.raises(VerificationFailed, match=f"header {headers[3].number} follows header {headers[1].number}"):
        verify_header_chain(headers[:2] + headers[3:], hashes[-1])
    with pytest.raises(VerificationFailed, match="gap"):
        verify_header_chain([headers[1], headers[0], *headers[2:]], hashes[-1])
    with pytest.raises(VerificationFailed, match="not the trusted"):
        verify_header_chain(headers, hashes[-2])
    with pytest.raises(VerificationFailed, match="not the trusted"):
        verify_header_chain(headers[:-1], hashes[-1])  # the run stops short of the trusted block
    with pytest.raises(VerificationFailed, match="no headers"):
        verify_header_chain([], hashes[-1])


def test_malformed_header_rlp_is_refused(run: tuple) -> None:
    import rlp

    _, headers, _ = run
    items = rlp.decode(headers[0].rlp())
    with pytest.raises(VerificationFailed, match="not RLP"):
        BlockHeader.from_rlp(b"\xf9\xff")
    with pytest.raises(VerificationFailed, match="15 to 21"):
        BlockHeader.from_rlp(rlp.encode(items[:14]))
    with pytest.raises(VerificationFailed, match="number is not a minimal integer"):
        BlockHeader.from_rlp(rlp.encode(items[:8] + [b"\x00" + items[8]] + items[9:]))
    with pytest.raises(VerificationFailed, match="stateRoot is 31 bytes, not 32"):
        BlockHeader.from_rlp(rlp.encode(items[:3] + [items[3][1:]] + items[4:]))
