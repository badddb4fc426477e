"""Licensing through the SDK: key delivery for new versions (who gets a key, who is skipped and
why, and that no transaction is sent for those who get nothing), who may grant, erasure of the
licensees' key bundles, and expiries computed in chain time."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from eth_account import Account

import fullchain
from fullchain.backends.rpc import open_rpc
from fullchain.crypto import wrap_key_for
from fullchain.duo import parse_purpose
from fullchain.errors import NotAuthorized, TransactionReverted
from fullchain.metadata import build_metadata
from fullchain.models import Role
from fullchain.storage import cid as cids
from fullchain.transactions import Transactor

from .conftest import ANVIL_MNEMONIC, AnvilNode

PW = "licensing-sdk-tests"
DAY = 86400
GRU = parse_purpose("GRU")
# A 32-byte X25519 public key of small order: the right size, but no shared secret can be
# computed with it (X25519 refuses the all-zero result), so nothing can be wrapped to it.
LOW_ORDER_KEY = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
NAMES = ("hospital", "pharma", "cro", "lab", "biobank")
ROLES = {"hospital": Role.HOSPITAL | Role.GOVERNOR, "pharma": Role.PHARMA, "cro": Role.CRO,
         "lab": Role.CRO, "biobank": Role.HOSPITAL}


def _key(fc: fullchain.Fullchain) -> bytes:
    return bytes.fromhex(fc.profile.hpke_public_key[2:])


def _world(chain: str = "embedded", fund=None) -> dict[str, fullchain.Fullchain]:  # noqa: ANN001
    for name in NAMES:
        config = fullchain.init(name, password=PW, chain=chain)
        if fund is not None:
            fund(config.address)
    fcs = {name: fullchain.connect(name, password=PW) for name in NAMES}
    fcs["hospital"].deploy([fullchain.Founder(fc.address, ROLES[name], _key(fc)) for name, fc in fcs.items()],
                           threshold=1)
    return fcs


@pytest.fixture
def world(home: Path) -> dict[str, fullchain.Fullchain]:
    """Five founding members on a fresh embedded chain; hospital owns dataset 1."""
    return _world()


@pytest.fixture
def dataset(world, tmp_path: Path) -> int:  # noqa: ANN001
    src = tmp_path / "v1.bin"
    src.write_bytes(os.urandom(1000))
    return world["hospital"].datasets.register(src, build_metadata(title="trial")).dataset_id


def _licensed(world, name: str, dataset_id: int, **grant) -> int:  # noqa: ANN001
    lid = world[name].licensing.request(dataset_id, GRU, term_seconds=30 * DAY)
    world["hospital"].licensing.grant(lid, **grant)
    return lid


def _new_version(fc: fullchain.Fullchain, dataset_id: int, tmp_path: Path, name: str = "v2.bin"):  # noqa: ANN202
    src = tmp_path / name
    src.write_bytes(os.urandom(500))
    return fc.datasets.add_version(dataset_id, src, build_metadata(title="trial")), src


def _nonce(fc: fullchain.Fullchain) -> int:
    return fc.w3.eth.get_transaction_count(fc.address)


def _delivered_events(fc: fullchain.Fullchain, version: int) -> list[int]:
    logs = fc.licensing.contract.events.KeyDelivered().get_logs(from_block=0, argument_filters={"version": version})
    return sorted(log["args"]["licenseId"] for log in logs)


def test_a_licensee_whose_key_cannot_be_wrapped_to_is_skipped_and_reported(world, dataset: int,
                                                                          tmp_path: Path) -> None:  # noqa: ANN001
    """Item 7.5: one licensee with an unusable registered key no longer stops the delivery to
    those after it; it is reported with the reason, and a rerun finishes without error."""
    first = _licensed(world, "pharma", dataset)
    broken = _licensed(world, "cro", dataset)
    last = _licensed(world, "lab", dataset)
    world["cro"].consortium.rotate_key(LOW_ORDER_KEY)  # 32 bytes, accepted as registered

    reg, v2 = _new_version(world["hospital"], dataset, tmp_path)
    assert reg.version == 2 and reg.deliveries is not None
    assert reg.deliveries.delivered == [first, last]
    [skipped] = reg.deliveries.skipped
    assert skipped.license_id == broken and skipped.account == world["cro"].address
    assert "not a usable X25519 key" in skipped.reason
    assert _delivered_events(world["hospital"], 2) == [first, last]
    for name in ("pharma", "lab"):
        out = tmp_path / f"{name}.bin"
        world[name].datasets.fetch(dataset, out, version=2)
        assert out.read_bytes() == v2.read_bytes()

    # Running the delivery again: no error, nothing sent again, the same licensee reported.
    before = _nonce(world["hospital"])
    again = world["hospital"].licensing.deliver_keys(dataset, world["hospital"].datasets.version(dataset, 2))
    assert again.delivered == [] and [s.license_id for s in again.skipped] == [broken]
    assert _nonce(world["hospital"]) == before

    # Once the licensee registers a usable key again, the same call delivers to it.
    world["cro"].consortium.rotate_key(_key(world["cro"]))
    done = world["hospital"].licensing.deliver_keys(dataset, world["hospital"].datasets.version(dataset, 2))
    assert done.delivered == [broken] and done.skipped == []


def test_revoked_and_expired_licensees_get_no_transaction(world, dataset: int, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 13.4b: the SDK itself leaves out revoked and expired licensees: no transaction is
    sent for them (the owner's nonce moves by exactly one per delivery, the only KeyDelivered
    events are the valid licensee's), and they are not reported as skipped either, which is
    what a refused attempt would look like."""
    hospital = world["hospital"]
    valid = _licensed(world, "pharma", dataset)
    revoked = _licensed(world, "cro", dataset)
    hospital.licensing.revoke(revoked)
    expired = _licensed(world, "lab", dataset, expires_in=20)
    for _ in range(21):  # the embedded chain stamps each block at least a second after its parent
        hospital.transactor.transfer(hospital.address, 0)
    assert hospital.licensing.get(expired).status == "expired"
    assert [lic.status for lic in hospital.licensing.for_dataset(dataset)] == ["granted", "revoked", "expired"]

    src = tmp_path / "v2.bin"
    src.write_bytes(os.urandom(300))
    before = _nonce(hospital)
    reg = hospital.datasets.add_version(dataset, src, build_metadata(title="trial"))
    assert _nonce(hospital) == before + 2  # registerVersion, then one deliverKey
    assert reg.deliveries.delivered == [valid] and reg.deliveries.skipped == []
    assert _delivered_events(hospital, 2) == [valid]
    for lid in (revoked, expired):
        assert bytes(hospital.licensing.contract.functions.keyBundle(lid, 2).call()) == b"\0" * 32


def test_only_the_owner_or_a_delegate_may_grant_and_never_the_requester(world, dataset: int) -> None:  # noqa: ANN001
    """Item 7.25: the refusal names who may grant, not a missing key; nothing is sent or stored."""
    hospital, pharma, cro = world["hospital"], world["pharma"], world["cro"]
    rid = pharma.licensing.request(dataset, GRU, term_seconds=30 * DAY)
    blocks = sorted(p.name for p in (hospital.home / "blocks").rglob("*"))
    nonces = _nonce(pharma), _nonce(cro)

    with pytest.raises(NotAuthorized, match=f"only the owner of dataset {dataset} .* or a delegate it named may "
                                            f"grant license {rid}"):
        cro.licensing.grant(rid)
    with pytest.raises(NotAuthorized, match=f"license {rid} is your own request"):
        pharma.licensing.grant(rid)
    assert (_nonce(pharma), _nonce(cro)) == nonces
    assert sorted(p.name for p in (hospital.home / "blocks").rglob("*")) == blocks

    # A delegate passes the check; it then needs the owner to have shared the key with it.
    hospital.transactor.call_function(hospital.licensing.contract.functions.setDelegate(dataset, cro.address, True),
                                      contract="DataUseLicensing")
    with pytest.raises(NotAuthorized, match="as a delegate, but the owner of dataset .* has not shared the key"):
        cro.licensing.grant(rid)
    # Other refusals still come from the contract, decoded, before any key is wrapped.
    with pytest.raises(TransactionReverted, match="DataUseLicensingPurposeWidened"):
        hospital.licensing.grant(pharma.licensing.request(dataset, parse_purpose("HMB"), term_seconds=DAY),
                                 purpose=GRU)
    assert hospital.licensing.grant(rid).status == "granted"


def test_erasing_a_version_deletes_the_licensees_key_bundles(world, dataset: int, tmp_path: Path) -> None:  # noqa: ANN001
    """Item 7.13: every key bundle of the erased version held by this store goes, the
    licensees' included; those of other versions stay."""
    hospital = world["hospital"]
    pharma_license = _licensed(world, "pharma", dataset)
    cro_license = _licensed(world, "cro", dataset)
    _new_version(hospital, dataset, tmp_path)
    # A licensee whose v2 key was delivered twice (the second replaces the first on chain).
    bundle = hospital.datasets.own_bundle(hospital.datasets.version(dataset, 2))
    wrapped = wrap_key_for(_key(world["cro"]), bundle)
    redelivered = cids.digest_of(cids.parse(hospital.store.add([wrapped])))
    hospital.transactor.call_function(hospital.licensing.contract.functions.deliverKey(cro_license, 2, redelivered),
                                      contract="DataUseLicensing")

    def bundle_cid(digest) -> str:  # noqa: ANN001
        return cids.to_str(cids.make_cid(cids.RAW, bytes(digest)))

    lic = hospital.licensing.contract.functions
    v1 = [bundle_cid(lic.keyBundle(i, 1).call()) for i in (pharma_license, cro_license)]
    v2 = [bundle_cid(lic.keyBundle(pharma_license, 2).call()), bundle_cid(redelivered)]
    first_cro_v2 = [log["args"]["bundleDigest"] for log in hospital.licensing.contract.events.KeyDelivered().get_logs(
        from_block=0, argument_filters={"licenseId": cro_license, "version": 2})][0]
    v2.append(bundle_cid(first_cro_v2))
    v2.append(bundle_cid(hospital.datasets.contract.functions.keyBundle(dataset, 2, hospital.address).call()))
    assert len(set(v2)) == 4 and all(hospital.store.has(c) for c in v1 + v2)

    hospital.datasets.erase(dataset, 2)
    assert not any(hospital.store.has(c) for c in v2)
    assert all(hospital.store.has(c) for c in v1)
    world["pharma"].datasets.fetch(dataset, tmp_path / "v1-again", version=1)  # untouched


def test_a_wrong_password_is_refused_before_the_file_is_read(world, dataset: int, tmp_path: Path) -> None:  # noqa: ANN001
    """Items 7.16 / 7.27: nothing hashed, encrypted, uploaded or sent with a wrong password; the
    right one is asked once for both keys."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 << 20))
    blocks = sorted(p.name for p in (world["hospital"].home / "blocks").rglob("*"))
    for call in ("register", "add_version"):
        wrong = fullchain.connect("hospital", password="wrong")
        seen: list[str] = []
        progress = lambda phase, n, total: seen.append(phase)  # noqa: E731
        with pytest.raises(fullchain.WrongPassword):
            if call == "register":
                wrong.datasets.register(src, build_metadata(title="t"), progress=progress)
            else:
                wrong.datasets.add_version(dataset, src, build_metadata(title="t"), progress=progress)
        assert seen == []
    assert sorted(p.name for p in (world["hospital"].home / "blocks").rglob("*")) == blocks
    assert world["hospital"].datasets.contract.functions.datasetCount().call() == 1
    assert not list((world["hospital"].home / "journal").rglob("*.json"))

    asked: list[int] = []
    right = fullchain.connect("hospital", password=lambda: asked.append(1) or PW)
    assert right.datasets.add_version(dataset, src, build_metadata(title="t")).version == 2
    assert asked == [1]


@pytest.fixture
def lagging_anvil() -> AnvilNode:
    node = AnvilNode()
    yield node
    node.stop()


def test_default_expiry_is_computed_in_chain_time(home: Path, lagging_anvil: AnvilNode, tmp_path: Path) -> None:
    """Item 7.14: a node whose clock is behind the wall clock (anvil idle between blocks; here an
    hour behind, so that it does not depend on how long the test takes) still accepts grants and
    renewals at the full term."""
    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC)
    w3 = open_rpc(lagging_anvil.url)
    funding = Transactor(w3, lambda: funder, funder.address)
    world = _world(lagging_anvil.url, fund=lambda address: funding.transfer(address, 10**18))
    w3.provider.make_request("anvil_setTime", [int(time.time()) - 3600])
    w3.provider.make_request("evm_mine", [])
    src = tmp_path / "v1.bin"
    src.write_bytes(os.urandom(100))
    dataset = world["hospital"].datasets.register(src, build_metadata(title="t")).dataset_id
    for name in ("pharma", "cro"):
        lid = world[name].licensing.request(dataset, GRU, term_seconds=30 * DAY)
        lic = world["hospital"].licensing.grant(lid)  # the default expiry: the full term
        latest = w3.eth.get_block("latest")["timestamp"]
        assert lic.status == "granted" and lic.valid
        assert latest < lic.expires_at.timestamp() <= latest + 30 * DAY
    renewed = world["hospital"].licensing.renew(lid, term_seconds=30 * DAY)
    assert renewed.valid and renewed.expires_at.timestamp() <= w3.eth.get_block("latest")["timestamp"] + 30 * DAY
