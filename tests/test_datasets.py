"""Datasets end to end through the SDK on the embedded chain and store: register, fetch,
verify, tampering, erasure, and finishing interrupted registrations."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import fullchain
from fullchain.crypto import CHUNK_SIZE
from fullchain.errors import DecryptionError, IntegrityError, NotAuthorized
from fullchain.metadata import build_metadata
from fullchain.models import Role

PW = "dataset-tests"


@pytest.fixture
def world(home: Path):  # noqa: ANN201
    """hospital (governor) and pharma (member) on a fresh embedded chain, plus an outsider."""
    for name in ("hospital", "pharma", "outsider"):
        fullchain.init(name, password=PW)
    hospital = fullchain.connect("hospital", password=PW)
    pharma = fullchain.connect("pharma", password=PW)
    key = lambda fc: bytes.fromhex(fc.profile.hpke_public_key[2:])  # noqa: E731
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA, key(pharma))], threshold=1)
    return hospital, pharma, fullchain.connect("outsider", password=PW)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    path = tmp_path / "files"
    path.mkdir()
    return path


def write(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_register_fetch_verify_round_trip(world, files: Path, size: int) -> None:  # noqa: ANN001
    hospital, _, _ = world
    src = write(files / "data.bin", size)
    reg = hospital.datasets.register(src, build_metadata(title="t", standard="sdtm"))
    assert (reg.dataset_id, reg.version, reg.size, reg.uploaded, reg.resumed) == (1, 1, size, True, False)
    assert reg.cid.startswith("bafy" if size > 256 * 1024 else "bafk")
    out = files / "out.bin"
    result = hospital.datasets.fetch(1, out)
    assert out.read_bytes() == src.read_bytes() and result.size == size
    assert hospital.datasets.verify(1, src).matches
    assert sorted(p.name for p in files.iterdir()) == ["data.bin", "out.bin"]  # no partial left over


def test_metadata_is_encrypted_unless_public(world, files: Path) -> None:  # noqa: ANN001
    hospital, pharma, _ = world
    src = write(files / "a.bin", 100)
    private = hospital.datasets.register(src, build_metadata(title="Oncology trial X", tier="restricted"))
    public = hospital.datasets.register(src, build_metadata(title="Open registry", tier="public"))
    stored = b"".join(hospital.store.cat(private.metadata_cid))
    assert b"Oncology" not in stored and stored.startswith(b"FCSE")
    assert hospital.datasets.metadata(private.dataset_id).title == "Oncology trial X"
    assert pharma.datasets.metadata(private.dataset_id) is None  # no key: cannot read it
    assert pharma.datasets.metadata(public.dataset_id).title == "Open registry"
    assert [d.info.title for d in pharma.datasets.list()] == [None, "Open registry"]


def test_versions_lineage_and_ownership(world, files: Path) -> None:  # noqa: ANN001
    hospital, pharma, outsider = world
    first = hospital.datasets.register(write(files / "v1", 10), build_metadata(title="t"))
    second = hospital.datasets.add_version(first.dataset_id, write(files / "v2", 20), build_metadata(title="t"))
    assert second.version == 2 and [v.size for v in hospital.datasets.versions(1)] == [10, 20]
    derived = pharma.datasets.register(write(files / "d", 5), build_metadata(title="derived"),
                                       derived_from=[first.dataset_id])
    assert pharma.datasets.get(derived.dataset_id).derived_from == [first.dataset_id]
    with pytest.raises(NotAuthorized, match="owned by"):
        pharma.datasets.add_version(first.dataset_id, files / "v1", build_metadata(title="t"))
    with pytest.raises(NotAuthorized, match="not an active member"):
        outsider.datasets.register(files / "v1", build_metadata(title="t"))
    with pytest.raises(NotAuthorized, match="holds no license for dataset 1"):
        pharma.datasets.fetch(1, files / "nope")
    assert not (files / "nope").exists()
    assert outsider.store.has(first.cid) and hospital.datasets.verify(1, files / "v1", version=1).matches
    assert not hospital.datasets.verify(1, files / "v1").matches  # latest is version 2


class TamperingStore:
    """The real store, with the ciphertext of one CID altered on the way out."""

    def __init__(self, store, cid: str, tamper) -> None:  # noqa: ANN001
        self._store, self._cid, self._tamper = store, cid, tamper

    def cat(self, cid: str) -> Iterator[bytes]:
        data = b"".join(self._store.cat(cid))
        yield self._tamper(data) if cid == self._cid else data

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._store, name)


SEALED = CHUNK_SIZE + 16
HEADER = 16


def flip(data: bytes) -> bytes:
    b = bytearray(data)
    b[HEADER + SEALED + 100] ^= 1
    return bytes(b)


def drop_second(data: bytes) -> bytes:
    return data[:HEADER + SEALED] + data[HEADER + 2 * SEALED:]


def swap(data: bytes) -> bytes:
    c0, c1 = data[HEADER:HEADER + SEALED], data[HEADER + SEALED:HEADER + 2 * SEALED]
    return data[:HEADER] + c1 + c0 + data[HEADER + 2 * SEALED:]


def truncate(data: bytes) -> bytes:
    return data[:HEADER + 2 * SEALED]


@pytest.mark.parametrize(("tamper", "chunk", "words"), [
    (flip, 1, "chunk 1 failed authentication"),
    (drop_second, 1, "chunk 1 failed authentication"),
    (swap, 0, "chunk 0 failed authentication"),
    (truncate, 2, "truncated after chunk 1"),
])
def test_tampered_payload_is_refused_and_nothing_written(world, files: Path, tamper, chunk, words) -> None:  # noqa: ANN001
    hospital, _, _ = world
    reg = hospital.datasets.register(write(files / "src", 3 * CHUNK_SIZE + 5), build_metadata(title="t"))
    hospital.datasets.store = TamperingStore(hospital.store, reg.cid, tamper)
    out = files / "out"
    with pytest.raises(DecryptionError, match=words) as info:
        hospital.datasets.fetch(reg.dataset_id, out)
    assert info.value.chunk_index == chunk
    assert sorted(p.name for p in files.iterdir()) == ["src"]


def test_chunk_from_another_file_and_wrong_key(world, files: Path) -> None:  # noqa: ANN001
    hospital, _, _ = world
    a = hospital.datasets.register(write(files / "a", 2 * CHUNK_SIZE + 1), build_metadata(title="a"))
    b = hospital.datasets.register(write(files / "b", 2 * CHUNK_SIZE + 1), build_metadata(title="b"))
    other = b"".join(hospital.store.cat(b.cid))
    splice = lambda data: data[:HEADER] + other[HEADER:HEADER + SEALED] + data[HEADER + SEALED:]  # noqa: E731
    real = hospital.store
    hospital.datasets.store = TamperingStore(real, a.cid, splice)
    with pytest.raises(DecryptionError, match="chunk 0 failed authentication"):
        hospital.datasets.fetch(a.dataset_id, files / "out")
    # The whole payload of another version under this version's key: the wrong key for it.
    hospital.datasets.store = TamperingStore(real, a.cid, lambda data: other)
    with pytest.raises(DecryptionError, match="chunk 0 failed authentication"):
        hospital.datasets.fetch(a.dataset_id, files / "out")
    assert not (files / "out").exists()


def test_replaced_content_fails_the_commitment(world, files: Path) -> None:  # noqa: ANN001
    """Well-formed ciphertext of other plaintext under the right key still fails: the commitment."""
    import io

    from fullchain.crypto import StreamEncryptor

    hospital, _, _ = world
    reg = hospital.datasets.register(write(files / "a", 1000), build_metadata(title="a"))
    v = hospital.datasets.version(reg.dataset_id)
    bundle = hospital.datasets._bundle(v)
    forged = b"".join(StreamEncryptor(bundle.data_key).encrypt(io.BytesIO(b"other data")))
    hospital.datasets.store = TamperingStore(hospital.store, reg.cid, lambda data: forged)
    with pytest.raises(IntegrityError, match="does not match the commitment on chain"):
        hospital.datasets.fetch(reg.dataset_id, files / "out")
    assert not (files / "out").exists()


def test_erase_tombstones_unpins_and_refuses_fetch(world, files: Path) -> None:  # noqa: ANN001
    hospital, _, _ = world
    reg = hospital.datasets.register(write(files / "a", 300_000), build_metadata(title="a"))
    assert hospital.store.pinned(reg.cid)
    bundle = hospital.datasets.contract.functions.keyBundle(1, 1, hospital.address).call()
    from fullchain.storage import cid as cids
    bundle_cid = cids.to_str(cids.make_cid(cids.RAW, bytes(bundle)))
    assert hospital.store.has(bundle_cid)
    erased = hospital.datasets.erase(reg.dataset_id, 1)
    assert erased.erased and not hospital.store.pinned(reg.cid)
    # The wrapped key and the ciphertext held here are destroyed, not just unpinned.
    assert not hospital.store.has(bundle_cid) and not hospital.store.has(reg.cid)
    with pytest.raises(NotAuthorized, match="was erased"):
        hospital.datasets.fetch(reg.dataset_id, files / "out")
    assert hospital.datasets.erase(reg.dataset_id, 1).erased  # running it again is harmless


def test_failed_transaction_is_finished_by_running_again(world, files: Path) -> None:  # noqa: ANN001
    """Upload succeeds, the transaction fails (no gas money): a rerun anchors without re-uploading."""
    hospital, pharma, _ = world
    src = write(files / "a", 2 * CHUNK_SIZE)
    meta = build_metadata(title="a")
    balance = pharma.w3.eth.get_balance(pharma.address)
    pharma.transactor.transfer(hospital.address, balance - 10**15)  # leave too little for a registration
    with pytest.raises(fullchain.InsufficientFunds):
        pharma.datasets.register(src, meta)
    assert pharma.datasets.contract.functions.datasetCount().call() == 0
    assert len(list((pharma.home / "journal" / "pharma").glob("*.json"))) == 1
    hospital.transactor.transfer(pharma.address, 10**18)
    again = fullchain.connect("pharma", password=PW).datasets.register(src, meta)
    assert (again.dataset_id, again.resumed, again.uploaded) == (1, True, False)
    assert pharma.datasets.contract.functions.datasetCount().call() == 1
    assert not list((pharma.home / "journal" / "pharma").glob("*.json"))
    third = fullchain.connect("pharma", password=PW).datasets.register(src, meta)
    assert third.dataset_id == 2  # once finished, the same command registers anew, as asked


def test_a_failing_disk_is_reported_and_leaves_nothing(world, files: Path, monkeypatch) -> None:  # noqa: ANN001
    """The output is written on a background thread: its errors must still reach the caller."""
    import errno

    from fullchain import datasets as datasets_module

    hospital, _, _ = world
    reg = hospital.datasets.register(write(files / "src", 3 * CHUNK_SIZE), build_metadata(title="t"))

    class FullDisk:
        def __init__(self, fh) -> None:  # noqa: ANN001
            self.fh, self.written = fh, 0

        def write(self, data: bytes) -> int:
            if self.written >= CHUNK_SIZE:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.fh.write(data)

    real = datasets_module.BackgroundWriter
    monkeypatch.setattr(datasets_module, "BackgroundWriter", lambda fh: real(FullDisk(fh)))
    with pytest.raises(OSError, match="No space left"):
        hospital.datasets.fetch(reg.dataset_id, files / "out")
    assert sorted(p.name for p in files.iterdir()) == ["src"]


def test_a_failed_key_delivery_is_finished_by_running_again(world, files: Path, monkeypatch) -> None:  # noqa: ANN001
    """The new version is anchored but delivering its key to a licensee fails: the same call
    again must deliver it, not register the file as one more version."""
    from fullchain.duo import parse_purpose
    from fullchain.licensing import LicensingClient

    hospital, pharma, _ = world
    first = hospital.datasets.register(write(files / "v1", 100), build_metadata(title="t"))
    lid = pharma.licensing.request(first.dataset_id, parse_purpose("GRU"), term_seconds=30 * 86400)
    hospital.licensing.grant(lid)
    v2, meta = write(files / "v2", 200), build_metadata(title="t")
    real = LicensingClient.deliver_keys

    def crash(self, dataset_id, version):  # noqa: ANN001, ANN202
        raise fullchain.ChainError("node went away", hint="retry")

    monkeypatch.setattr(LicensingClient, "deliver_keys", crash)
    with pytest.raises(fullchain.ChainError, match="node went away"):
        hospital.datasets.add_version(first.dataset_id, v2, meta)
    assert hospital.datasets.get(first.dataset_id).version_count == 2
    monkeypatch.setattr(LicensingClient, "deliver_keys", real)
    again = hospital.datasets.add_version(first.dataset_id, v2, meta)
    assert (again.version, again.resumed, again.uploaded) == (2, True, False)
    assert hospital.datasets.get(first.dataset_id).version_count == 2
    pharma.datasets.fetch(first.dataset_id, files / "pharma-v2", version=2)
    assert (files / "pharma-v2").read_bytes() == v2.read_bytes()
    left = hospital.licensing.deliver_keys(first.dataset_id, hospital.datasets.version(1, 2))
    assert (left.delivered, left.skipped) == ([], [])  # nothing left
