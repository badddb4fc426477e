"""Content storage: the embedded blockstore gives exactly the CIDs and bytes of a real IPFS node
(js-ipfs started by the session on loopback), streams in constant memory, never leaves a partial
block under a CID's name, exports CARs that IPFS nodes read, and says what went wrong."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullchain.errors import ContentNotFound, InvalidInput, StorageError, StorageUnreachable
from fullchain.storage import (
    CHUNK_SIZE, ContentStore, EmbeddedStore, IpfsHttpStore, compute_cid, normalize_cid, open_store, read_car,
)
from fullchain.storage.cid import DAG_PB, RAW, cid_of_block, codec_of, digest_of, parse, to_str
from fullchain.storage.unixfs import BalancedLayout, Link, _fields, chunked, decode_node, encode_file_node
from tests.ipfs_daemon import start_ipfs

KiB, MiB = 1024, 1024 * 1024
HELLO_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
EMPTY_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
SIZES = [0, 1, 256 * KiB, 256 * KiB + 1, 5 * MiB, 50 * MiB]


def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def pieces(data: bytes, seed: int = 0) -> Iterator[bytes]:
    """The data cut at irregular places, like the output of a streaming encryptor."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 17, 4096, 256 * KiB - 1, 256 * KiB, MiB + 16, rng.randint(1, 3 * MiB)])
        yield data[pos:pos + step]
        pos += step


@pytest.fixture
def embedded(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "blocks")


@pytest.fixture
def ipfs(ipfs_url: str) -> Iterator[IpfsHttpStore]:
    store = IpfsHttpStore(ipfs_url, lookup_timeout=1.0)
    yield store
    store.close()


@pytest.fixture(params=["embedded", "ipfs"])
def store(request: pytest.FixtureRequest) -> ContentStore:
    """Every test using this runs on the embedded store and on the real IPFS daemon."""
    return request.getfixturevalue(request.param)


def unused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# --- the same CIDs as an IPFS node --------------------------------------------------------------

def test_well_known_cids(embedded: EmbeddedStore) -> None:
    assert embedded.add([b"hello world\n"]) == HELLO_CID
    assert embedded.add([b"hello ", b"world", b"\n"]) == HELLO_CID
    assert embedded.add([]) == EMPTY_CID
    assert embedded.add([b""]) == EMPTY_CID
    assert compute_cid([b"hello world\n"]) == HELLO_CID
    assert b"".join(embedded.cat(HELLO_CID)) == b"hello world\n"
    assert b"".join(embedded.cat(EMPTY_CID)) == b""


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n}B")
def test_embedded_and_ipfs_daemon_agree(size: int, embedded: EmbeddedStore, ipfs: IpfsHttpStore) -> None:
    data = payload(size)
    cid = embedded.add(pieces(data, seed=1))
    assert ipfs.add(pieces(data, seed=2)) == cid
    assert compute_cid([data]) == cid
    assert cid.startswith("bafk" if size <= CHUNK_SIZE else "bafy")  # one raw block, else a dag-pb root
    assert b"".join(embedded.cat(cid)) == data
    assert b"".join(ipfs.cat(cid)) == data
    # the daemon holds byte-identical blocks: check the root (for dag-pb, our hand-written encoding)
    assert ipfs._get_block(parse(cid)) == embedded.block_path(cid).read_bytes()


def test_dag_pb_nodes_are_byte_exact(embedded: EmbeddedStore, ipfs: IpfsHttpStore) -> None:
    data = payload(5 * MiB + 3)
    cid = embedded.add([data])
    root_block = embedded.block_path(cid).read_bytes()
    node = decode_node(root_block)
    assert node.unixfs_type == 2 and node.filesize == len(data) and node.data == b""
    assert [tsize for _, tsize in node.links] == [CHUNK_SIZE] * 20 + [3]
    assert all(codec_of(child) == RAW for child, _ in node.links)
    # Links (field 2) come before Data (field 1): the canonical dag-pb order
    assert [number for number, _, _ in _fields(root_block)] == [2] * 21 + [1]
    assert ipfs.add([data]) == cid
    response = httpx.post(f"{ipfs.url}/api/v0/block/get", params={"arg": cid, "timeout": "5s"})
    assert response.status_code == 200 and response.content == root_block


def test_second_level_of_the_balanced_tree(embedded: EmbeddedStore) -> None:
    data = payload(50 * MiB)  # 200 leaves > 174: a root over two dag-pb nodes of 174 and 26 leaves
    cid = embedded.add(pieces(data))
    root = decode_node(embedded.block_path(cid).read_bytes())
    assert len(root.links) == 2 and root.filesize == len(data)
    children = [decode_node(embedded.block_path(c).read_bytes()) for c, _ in root.links]
    assert [len(child.links) for child in children] == [174, 26]
    assert [child.filesize for child in children] == [174 * CHUNK_SIZE, 26 * CHUNK_SIZE]
    first_tsize = root.links[0][1]
    assert first_tsize == 174 * CHUNK_SIZE + len(embedded.block_path(root.links[0][0]).read_bytes())


def _reference_root(leaves: list[Link], width: int) -> Link:
    """The IPFS importer's balanced builder as written: batch a row by `width`, repeat to one."""
    if len(leaves) == 1:
        return leaves[0]
    row = leaves
    while True:
        parents = []
        for i in range(0, len(row), width):
            links = row[i:i + width]
            block = encode_file_node(links)
            parents.append(Link(cid_of_block(DAG_PB, block), len(block) + sum(x.tsize for x in links),
                                sum(x.filesize for x in links)))
        row = parents
        if len(row) == 1:
            return row[0]


@settings(max_examples=60, deadline=None)
@given(leaves=st.integers(min_value=1, max_value=200), width=st.integers(min_value=2, max_value=6))
def test_streaming_layout_matches_the_importer_at_any_depth(leaves: int, width: int) -> None:
    links = [Link(cid_of_block(RAW, i.to_bytes(4, "big")), 1000 + i, 1000 + i) for i in range(leaves)]
    written: list[bytes] = []
    layout = BalancedLayout(lambda cid, block: written.append(cid), max_links=width)
    for link in links:
        layout.push(link)
    assert layout.finish() == _reference_root(links, width)
    assert len(written) == len(set(written))  # each node written once


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=70_000), max_size=12), size=st.sampled_from([1, 7, 4096]))
def test_chunking_ignores_how_the_input_is_cut(cuts: list[int], size: int) -> None:
    data = random.Random(len(cuts)).randbytes(sum(cuts))
    parts, pos = [], 0
    for n in cuts:
        parts.append(data[pos:pos + n])
        pos += n
    chunks = [bytes(c) for c in chunked(parts, size)]
    assert b"".join(chunks) == data
    if data:
        assert all(len(c) == size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= size
    else:
        assert chunks == [b""]  # the empty file is one empty raw block, as IPFS nodes make it


def test_a_reused_input_buffer_is_copied_not_aliased(embedded: EmbeddedStore) -> None:
    data = payload(3 * MiB + 5)

    def readinto_style() -> Iterator[bytearray]:  # one buffer, overwritten for every piece
        buf = bytearray(100_000)
        for pos in range(0, len(data), len(buf)):
            piece = data[pos:pos + len(buf)]
            buf[:len(piece)] = piece
            yield buf if len(piece) == len(buf) else buf[:len(piece)]

    assert embedded.add(readinto_style()) == compute_cid([data])
    assert b"".join(embedded.cat(compute_cid([data]))) == data


# --- pins, presence, errors ---------------------------------------------------------------------

def test_pin_unpin(store: ContentStore) -> None:
    pinned_cid = store.add([os.urandom(1000)])
    assert store.pinned(pinned_cid) and store.has(pinned_cid)
    store.unpin(pinned_cid)
    assert not store.pinned(pinned_cid)
    store.unpin(pinned_cid)  # unpinning twice is not an error
    loose = store.add([os.urandom(300 * KiB)], pin=False)
    assert store.has(loose) and not store.pinned(loose)


def test_missing_content_is_content_not_found(store: ContentStore) -> None:
    unknown = to_str(cid_of_block(RAW, os.urandom(16)))
    started = time.monotonic()
    with pytest.raises(ContentNotFound, match=unknown):
        store.cat(unknown)
    with pytest.raises(ContentNotFound):
        store.export_car(unknown, io.BytesIO())
    assert not store.has(unknown)
    assert not store.pinned(unknown)
    assert time.monotonic() - started < 15  # js-ipfs would wait forever without a timeout


def test_cids_are_compared_after_parsing(store: ContentStore, ipfs_url: str) -> None:
    cid = store.add([b"hello world\n"])
    base58 = "zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY"  # the same CID as js-ipfs prints it
    assert normalize_cid(base58) == cid == HELLO_CID
    assert store.pinned(base58) and store.has(base58)
    assert b"".join(store.cat(cid.upper())) == b"hello world\n"
    # a CIDv0 names the same block as the CIDv1 dag-pb CID with the same multihash
    v0 = httpx.post(f"{ipfs_url}/api/v0/add", params={"cid-version": "0", "pin": "false"},
                    files={"file": ("a", b"hello world\n")}).json()["Hash"]
    v1 = httpx.post(f"{ipfs_url}/api/v0/add", params={"cid-version": "1", "raw-leaves": "false",
                                                      "cid-base": "base32", "pin": "false"},
                    files={"file": ("a", b"hello world\n")}).json()["Hash"]
    assert v0.startswith("Qm") and v1.startswith("bafy") and normalize_cid(v0) == v1


@pytest.mark.parametrize("bad", ["", "hello", "Qm123", "bafy!!", "zzzz"])
def test_invalid_cids_are_rejected(bad: str, embedded: EmbeddedStore) -> None:
    with pytest.raises(InvalidInput):
        embedded.cat(bad)


def test_missing_block_in_the_middle(embedded: EmbeddedStore) -> None:
    data = payload(2 * MiB)
    cid = embedded.add([data])
    leaves = [c for c, _ in decode_node(embedded.block_path(cid).read_bytes()).links]
    embedded.block_path(leaves[5]).unlink()
    assert embedded.has(cid)  # the root is there...
    received = bytearray()
    with pytest.raises(ContentNotFound, match=to_str(leaves[5])):
        for piece in embedded.cat(cid):  # ...but the content cannot be read past the hole
            received += piece
    assert received == data[:5 * CHUNK_SIZE]
    with pytest.raises(ContentNotFound):
        embedded.export_car(cid, io.BytesIO())


def test_ipfs_missing_block_in_the_middle(tmp_path: Path) -> None:
    """A stream that stalls on a missing block ends in ContentNotFound instead of hanging. Its own
    daemon: js-ipfs crashes when a client gives up on such a stream (see tests/ipfs_daemon.py)."""
    url, stop = start_ipfs(tmp_path)
    try:
        store = IpfsHttpStore(url, lookup_timeout=1.0)
        data = payload(2 * MiB)
        cid = store.add([data])
        leaf = decode_node(store._get_block(parse(cid))).links[5][0]
        key = base64.b32encode(leaf[2:]).decode().rstrip("=")  # js-ipfs flatfs: base32 multihash
        (tmp_path / "repo" / "blocks" / key[-3:-1] / f"{key}.data").unlink()
        assert store.has(cid)
        started = time.monotonic()
        with pytest.raises(ContentNotFound, match=cid):
            b"".join(store.cat(cid))
        assert time.monotonic() - started < 20
    finally:
        stop()


def test_corrupt_block_is_detected(embedded: EmbeddedStore) -> None:
    data = payload(1 * MiB)
    cid = embedded.add([data])
    leaf = decode_node(embedded.block_path(cid).read_bytes()).links[2][0]
    path = embedded.block_path(leaf)
    block = bytearray(path.read_bytes())
    block[100] ^= 1
    path.write_bytes(bytes(block))
    with pytest.raises(StorageError, match="does not match its CID") as err:
        b"".join(embedded.cat(cid))
    assert not isinstance(err.value, ContentNotFound)


def test_unreachable_node_is_storage_unreachable() -> None:
    url = unused_url()
    store = IpfsHttpStore(url, connect_timeout=2)
    for call in (lambda: store.add([b"x"]), lambda: store.cat(HELLO_CID), lambda: store.has(HELLO_CID),
                 lambda: store.pinned(HELLO_CID), lambda: store.unpin(HELLO_CID),
                 lambda: store.export_car(HELLO_CID, io.BytesIO())):
        with pytest.raises(StorageUnreachable, match=url) as err:
            call()
        assert err.value.hint


def test_open_store(tmp_path: Path, ipfs_url: str) -> None:
    embedded = open_store("embedded", tmp_path)
    assert isinstance(embedded, EmbeddedStore)
    cid = embedded.add([b"hello world\n"])
    assert (tmp_path / "blocks").is_dir() and any((tmp_path / "blocks").rglob(cid))
    remote = open_store(ipfs_url + "/", tmp_path)
    assert isinstance(remote, IpfsHttpStore) and remote.add([b"hello world\n"]) == cid
    with pytest.raises(InvalidInput, match="ftp://x"):
        open_store("ftp://x", tmp_path)


# --- atomic writes ------------------------------------------------------------------------------

def test_a_failed_write_leaves_no_block_under_its_name(embedded: EmbeddedStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(1 * MiB)
    real_write = os.write
    calls = 0

    def failing_write(fd: int, buf: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:  # the third leaf: half of it reaches the disk, then the disk is full
            real_write(fd, memoryview(buf)[:len(buf) // 2])
            raise OSError(28, "No space left on device")
        return real_write(fd, buf)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(StorageError, match="No space left") as err:
        embedded.add([data])
    assert str(embedded.root) in str(err.value) and err.value.hint
    monkeypatch.undo()
    for path in embedded.root.rglob("*"):
        if path.is_file() and path.parent.name != "pins":
            assert not path.name.endswith(".tmp"), "temporary file left behind"
            assert cid_of_block(codec_of(parse(path.name)), path.read_bytes()) == parse(path.name)
    cid = embedded.add([data])
    assert b"".join(embedded.cat(cid)) == data


_CHILD = """
import os, random, sys, time
from pathlib import Path
from fullchain.storage import EmbeddedStore
real_write, calls = os.write, 0
def stalling_write(fd, buf):
    global calls
    calls += 1
    if calls == 6:  # half of the sixth block is written, then the process is killed
        real_write(fd, memoryview(buf)[:len(buf) // 2])
        Path(sys.argv[2]).touch()
        time.sleep(600)
    return real_write(fd, buf)
os.write = stalling_write
data = random.Random(7).randbytes(12 * 1024 * 1024)
EmbeddedStore(Path(sys.argv[1]), workers=1).add([data])
"""


def test_killed_while_writing_leaves_no_partial_block(tmp_path: Path) -> None:
    root, marker = tmp_path / "blocks", tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_CHILD), str(root), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline, "child never reached the write"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    partial = [p for p in root.rglob("*.tmp")]
    assert len(partial) == 1 and partial[0].stat().st_size == CHUNK_SIZE // 2  # the crash happened mid-block
    blocks = [p for p in root.rglob("baf*") if p.is_file() and p.parent.name != "pins"]
    assert len(blocks) == 5
    for path in blocks:
        assert cid_of_block(RAW, path.read_bytes()) == parse(path.name)
    data = random.Random(7).randbytes(12 * MiB)
    store = EmbeddedStore(root)
    assert not any(store.pinned(p.name) for p in blocks)
    cid = store.add([data])  # a rerun completes, whatever the crash left
    assert cid == compute_cid([data]) and b"".join(store.cat(cid)) == data


# --- CAR export ---------------------------------------------------------------------------------

def _reassemble(root: bytes, blocks: dict[bytes, bytes]) -> bytes:
    if codec_of(root) == RAW:
        return blocks[root]
    node = decode_node(blocks[root])
    return node.data + b"".join(_reassemble(child, blocks) for child, _ in node.links)


@pytest.mark.parametrize("size", [0, 100, 5 * MiB + 7, 46 * MiB], ids=lambda n: f"{n}B")
def test_car_export_round_trip(size: int, store: ContentStore, tmp_path: Path) -> None:
    data = payload(size)
    cid = store.add(pieces(data))
    out = io.BytesIO()
    store.export_car(cid, out)
    out.seek(0)
    roots, sections = read_car(out)
    assert [to_str(r) for r in roots] == [cid]
    blocks: dict[bytes, bytes] = {}
    for block_cid, block in sections:
        assert hashlib.sha256(block).digest() == digest_of(block_cid)
        assert block_cid not in blocks
        blocks[block_cid] = block
    assert _reassemble(parse(cid), blocks) == data
    expected_blocks = 1 if size <= CHUNK_SIZE else -(-size // CHUNK_SIZE) + 1 + (size > 174 * CHUNK_SIZE) * 2
    assert len(blocks) == expected_blocks
    # and it loads into a fresh store
    out.seek(0)
    fresh = EmbeddedStore(tmp_path / "fresh")
    assert fresh.import_car(out) == [cid]
    assert fresh.pinned(cid) and b"".join(fresh.cat(cid)) == data


def test_car_is_what_the_ipfs_node_exports_and_imports(embedded: EmbeddedStore, ipfs_url: str,
                                                       ipfs: IpfsHttpStore) -> None:
    data = payload(3 * MiB + 1)
    cid = embedded.add([data])
    ours = io.BytesIO()
    embedded.export_car(cid, ours)
    imported = httpx.post(f"{ipfs_url}/api/v0/dag/import", params={"pin-roots": "true"},
                          files={"file": ("x.car", ours.getvalue())}, timeout=60)
    assert imported.status_code == 200 and normalize_cid(imported.json()["Root"]["Cid"]["/"]) == cid
    assert ipfs.pinned(cid) and b"".join(ipfs.cat(cid)) == data
    theirs = httpx.post(f"{ipfs_url}/api/v0/dag/export", params={"arg": cid, "timeout": "10s"}, timeout=60)
    assert theirs.status_code == 200 and theirs.content == ours.getvalue()


# --- constant memory ----------------------------------------------------------------------------

def _generated(total: int, piece: int = MiB + 16) -> Iterator[bytes]:
    rng = random.Random(total)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield rng.randbytes(n)
        sent += n


def test_add_and_cat_stream_in_constant_memory(store: ContentStore) -> None:
    total = 48 * MiB
    tracemalloc.start()
    try:
        cid = store.add(_generated(total))
        _, add_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received = 0
        for piece in store.cat(cid):
            received += len(piece)
        _, cat_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == total and cid == compute_cid(_generated(total))
    assert add_peak < 12 * MiB, f"add held {add_peak / MiB:.1f} MiB"
    assert cat_peak < 12 * MiB, f"cat held {cat_peak / MiB:.1f} MiB"
