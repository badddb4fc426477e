"""DatasetRegistry behaviour on the embedded chain and on anvil: who may register, version,
publish keys and erase, lineage, and input checks."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.contracts import DATASET_REGISTRY, bind, deploy_contract
from fullchain.errors import TransactionReverted
from fullchain.models import Role
from fullchain.transactions import Transactor

RAW, DAG_PB = 0x55, 0x70


def version_input(*, commitment: bytes | None = None, payload_codec: int = DAG_PB, metadata_codec: int = RAW,
                  owner_key: bytes = b"\x07" * 32) -> tuple:
    return (commitment or secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32), 1234,
            payload_codec, metadata_codec, 1, 1, owner_key)


@dataclass
class Registry:
    owner: Transactor
    other: Transactor  # a member, not the owner
    stranger: Transactor  # not a member
    consortium: ConsortiumClient
    address: str
    w3: object

    def call(self, tx: Transactor, fn: str, *args: object):  # noqa: ANN201
        contract = bind(self.w3, DATASET_REGISTRY, self.address)
        return tx.call_function(getattr(contract.functions, fn)(*args), contract=DATASET_REGISTRY)

    def view(self, fn: str, *args: object):  # noqa: ANN201
        return getattr(bind(self.w3, DATASET_REGISTRY, self.address).functions, fn)(*args).call()

    def register(self, tx: Transactor | None = None, parents: list[int] | None = None, **kw: object) -> int:
        receipt = self.call(tx or self.owner, "registerDataset", version_input(**kw), parents or [])
        events = bind(self.w3, DATASET_REGISTRY, self.address).events.DatasetRegistered().process_receipt(
            receipt, errors=DISCARD)
        return events[0]["args"]["datasetId"]


@pytest.fixture
def reg(chain) -> Registry:  # noqa: ANN001
    (owner, owner_tx), (other, other_tx), (_, stranger_tx) = chain.account(), chain.account(), chain.account()
    founders = [Founder(owner.address, Role.HOSPITAL | Role.GOVERNOR, b"\x01" * 32),
                Founder(other.address, Role.PHARMA, b"\x02" * 32)]
    consortium, _ = deploy_consortium(owner_tx, chain.w3, founders, threshold=1)
    address, _ = deploy_contract(owner_tx, chain.w3, DATASET_REGISTRY, consortium)
    return Registry(owner_tx, other_tx, stranger_tx, ConsortiumClient(chain.w3, consortium, owner_tx), address, chain.w3)


def reverts(error: str, reg: Registry, tx: Transactor, fn: str, *args: object) -> dict:
    with pytest.raises(TransactionReverted) as info:
        reg.call(tx, fn, *args)
    assert info.value.error_name == error, info.value
    return info.value.error_args


def test_register_and_version(reg: Registry) -> None:
    commitment = secrets.token_bytes(32)
    dataset_id = reg.register(commitment=commitment)
    assert dataset_id == 1 and reg.view("datasetCount") == 1
    owner, _, count = reg.view("dataset", dataset_id)
    assert owner == reg.owner.address and count == 1
    reg.call(reg.owner, "registerVersion", dataset_id, version_input())
    assert reg.view("dataset", dataset_id)[2] == 2
    v1 = reg.view("version", dataset_id, 1)
    assert bytes(v1[0]) == commitment and v1[3] == 1234 and v1[9] is False
    assert bytes(reg.view("keyBundle", dataset_id, 1, reg.owner.address)) == b"\x07" * 32


def test_only_members_register(reg: Registry) -> None:
    args = reverts("DatasetRegistryNotMember", reg, reg.stranger, "registerDataset", version_input(), [])
    assert args == {"account": reg.stranger.address}


def test_only_the_owner_versions_publishes_and_erases(reg: Registry) -> None:
    dataset_id = reg.register()
    for tx in (reg.other, reg.stranger):
        expected = "DatasetRegistryNotOwner" if tx is reg.other else "DatasetRegistryNotMember"
        reverts(expected, reg, tx, "registerVersion", dataset_id, version_input())
        reverts(expected, reg, tx, "publishKeyBundle", dataset_id, 1, tx.address, b"\x09" * 32)
        args = reverts("DatasetRegistryNotOwner", reg, tx, "eraseVersion", dataset_id, 1)
        assert args == {"datasetId": dataset_id, "caller": tx.address}


def test_a_removed_member_keeps_history_but_cannot_add(reg: Registry) -> None:
    other_dataset = reg.register(tx=reg.other)
    pid = reg.consortium.propose_remove(reg.other.address)
    reg.consortium.execute(pid)
    reverts("DatasetRegistryNotMember", reg, reg.other, "registerVersion", other_dataset, version_input())
    reverts("DatasetRegistryNotMember", reg, reg.other, "registerDataset", version_input(), [])
    assert reg.view("dataset", other_dataset)[0] == reg.other.address
    reg.call(reg.other, "eraseVersion", other_dataset, 1)  # erasure requests must still be honoured
    assert reg.view("version", other_dataset, 1)[9] is True


def test_lineage_and_unknown_parents(reg: Registry) -> None:
    parent = reg.register()
    child = reg.register(tx=reg.other, parents=[parent])
    assert list(reg.view("derivedFrom", child)) == [parent]
    args = reverts("DatasetRegistryUnknownDataset", reg, reg.owner, "registerDataset", version_input(), [parent, 99])
    assert args == {"datasetId": 99}


def test_erasure_is_a_tombstone(reg: Registry) -> None:
    dataset_id = reg.register()
    reg.call(reg.owner, "eraseVersion", dataset_id, 1)
    assert reg.view("version", dataset_id, 1)[9] is True
    reverts("DatasetRegistryVersionErased", reg, reg.owner, "eraseVersion", dataset_id, 1)
    reverts("DatasetRegistryVersionErased", reg, reg.owner, "publishKeyBundle", dataset_id, 1, reg.other.address,
            b"\x01" * 32)
    reverts("DatasetRegistryUnknownVersion", reg, reg.owner, "eraseVersion", dataset_id, 2)


def test_malformed_versions_are_refused(reg: Registry) -> None:
    assert reverts("DatasetRegistryInvalidVersion", reg, reg.owner, "registerDataset",
                   version_input(commitment=b"\0" * 32), []) == {"field": "commitment"}
    assert reverts("DatasetRegistryInvalidVersion", reg, reg.owner, "registerDataset",
                   version_input(payload_codec=0x71), []) == {"field": "payload"}
    assert reverts("DatasetRegistryInvalidVersion", reg, reg.owner, "registerDataset",
                   version_input(metadata_codec=0), []) == {"field": "metadata"}
    dataset_id = reg.register()
    reverts("DatasetRegistryInvalidRecipient", reg, reg.owner, "publishKeyBundle", dataset_id, 1,
            "0x" + "00" * 20, b"\x01" * 32)


def test_events_for_every_change(reg: Registry) -> None:
    contract = bind(reg.w3, DATASET_REGISTRY, reg.address)
    commitment = secrets.token_bytes(32)
    receipt = reg.call(reg.owner, "registerDataset", version_input(commitment=commitment), [])
    registered = contract.events.VersionRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert registered["commitment"] == commitment and registered["version"] == 1
    published = contract.events.KeyBundlePublished().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert published["recipient"] == reg.owner.address
    receipt = reg.call(reg.owner, "eraseVersion", registered["datasetId"], 1)
    assert contract.events.VersionErased().process_receipt(receipt, errors=DISCARD)[0]["args"]["version"] == 1


def test_ancestors_are_resolved_at_registration(reg: Registry) -> None:
    """Issue 7 item 7: the whole lineage (copy of a copy), each ancestor once, for consent checks."""
    a, b = reg.register(), reg.register()
    child = reg.register(tx=reg.other, parents=[a, a])  # a parent named twice is one ancestor
    grandchild = reg.register(parents=[child, b])
    great = reg.register(tx=reg.other, parents=[grandchild, a])  # a reached twice, listed once
    assert list(reg.view("ancestors", a)) == []
    assert list(reg.view("ancestors", child)) == [a]
    assert list(reg.view("ancestors", grandchild)) == [child, a, b]
    assert sorted(reg.view("ancestors", great)) == sorted([grandchild, child, a, b])
    assert list(reg.view("derivedFrom", great)) == [grandchild, a]  # the direct parents, as given
    with pytest.raises(ContractLogicError):
        reg.view("ancestors", 99)


def test_lineage_is_bounded(reg: Registry) -> None:
    limit = reg.view("MAX_ANCESTORS")
    assert limit == 16
    roots = [reg.register() for _ in range(limit + 1)]
    assert reverts("DatasetRegistryLineageTooLarge", reg, reg.owner, "registerDataset", version_input(),
                   roots) == {"maxAncestors": limit}
    wide = reg.register(parents=roots[:limit])  # exactly the limit is fine...
    assert len(reg.view("ancestors", wide)) == limit
    reverts("DatasetRegistryLineageTooLarge", reg, reg.owner, "registerDataset", version_input(),
            [wide])  # ...but a child of it would have limit + 1


def test_is_erased(reg: Registry) -> None:
    dataset_id = reg.register()
    assert reg.view("isErased", dataset_id, 1) is False
    reg.call(reg.owner, "eraseVersion", dataset_id, 1)
    assert reg.view("isErased", dataset_id, 1) is True
    with pytest.raises(ContractLogicError):  # an unknown version
        reg.view("isErased", dataset_id, 2)
