"""Priority-use rights in DataUseLicensing, on the embedded chain and on anvil (the `chain`
fixture): a dataset derived from others declares a window once; until it closes only owners of
its DIRECT parents may request it, whoever calls the contract and however (the refusal is the
contract's, not the SDK's); after it, anyone may. Every way to declare wrongly is refused."""
from __future__ import annotations

from typing import Any

import pytest
from web3.exceptions import ContractLogicError

from fullchain.contracts import decode_revert, revert_bytes

from . import test_licensing_contract
from .test_licensing_contract import DAY, GRU, LICENSING, TERM, ZERO32, Lic

MIN_WINDOW, MAX_WINDOW = DAY, 365 * DAY
# test_licensing_contract's fixture: hospital owns `lic.dataset`; pharma, cro and patient are
# members; stranger is funded but no member.
lic = test_licensing_contract.lic


def travel_to(chain, timestamp: int) -> None:  # noqa: ANN001
    """Move a development chain's clock forward to `timestamp`. On anvil a block is mined at that
    time, since anvil checks (estimates) calls against the latest block."""
    if chain.kind == "anvil":
        answer = chain.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
        assert not answer.get("error"), answer
        answer = chain.w3.provider.make_request("evm_mine", [])
    else:
        answer = chain.w3.provider.make_request("testing_timeTravel", [timestamp])
    assert not answer.get("error"), answer


def refusal(lic: Lic, sender: str, fn: Any) -> tuple[str, dict]:
    """The custom error of a plain web3 eth_call of `fn` from `sender` (no SDK in between)."""
    with pytest.raises(ContractLogicError) as info:
        fn.call({"from": sender}, block_identifier="pending")
    return decode_revert(LICENSING, revert_bytes(info.value))


def test_only_owners_of_direct_parents_request_until_the_window_closes(lic: Lic, chain) -> None:  # noqa: ANN001
    # cro's dataset -> hospital's derived dataset -> pharma's result (derived from it and from
    # hospital's first dataset): cro owns a grandparent only, which gives no priority.
    grandparent = lic.register(lic.cro)
    parent = lic.register(lic.hospital, [grandparent])
    result = lic.register(lic.pharma, [parent, lic.dataset])
    early = lic.request(lic.cro, dataset=result)  # asked before the window: untouched by it

    receipt = lic.call(lic.pharma, "declarePriorityWindow", result, MIN_WINDOW)
    closes = lic.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + MIN_WINDOW
    assert lic.events(receipt, "PriorityWindowDeclared") == [
        {"datasetId": result, "owner": lic.pharma.address, "closesAt": closes}]
    assert lic.view("priorityWindow", result) == closes
    assert lic.view("priorityWindow", parent) == 0

    request = lic.contract.functions.request(result, GRU, ZERO32, 0, TERM, ZERO32)
    for outsider in (lic.cro, lic.patient):
        # A plain eth_call, and a transaction sent with its own gas (no estimate to stop it):
        # the contract itself refuses, whatever the client.
        assert refusal(lic, outsider.address, request) == (
            "DataUseLicensingPriorityWindow", {"datasetId": result, "closesAt": closes})
        sent = outsider.send({"from": outsider.address, "to": lic.address, "gas": 500_000,
                              "data": request._encode_transaction_data()})
        assert sent["status"] == 0
        assert lic.reverts("DataUseLicensingPriorityWindow", outsider, "request", result, GRU, ZERO32, 0, TERM,
                           ZERO32) == {"datasetId": result, "closesAt": closes}
    assert lic.view("licenseCount") == early

    by_parent_owner = lic.request(lic.hospital, dataset=result)  # hospital owns `parent`
    assert lic.view("license", by_parent_owner)[0] == lic.hospital.address
    lic.grant(by_parent_owner, tx=lic.pharma)
    lic.grant(early, tx=lic.pharma)  # a request made before the declaration is granted as usual
    assert lic.authorized(lic.hospital, GRU, dataset=result) and lic.authorized(lic.cro, GRU, dataset=result)

    travel_to(chain, closes)  # the window is open while the block time is before `closes`
    after = lic.request(lic.patient, dataset=result)
    assert lic.w3.eth.get_block("latest")["timestamp"] >= closes
    assert lic.view("license", after)[0] == lic.patient.address
    assert lic.view("priorityWindow", result) == closes  # kept: the window is over, not undeclared
    lic.reverts("DataUseLicensingPriorityAlreadyDeclared", lic.pharma, "declarePriorityWindow", result, MIN_WINDOW)


def test_declaring_a_window_wrongly_is_refused(lic: Lic) -> None:
    result = lic.register(lic.pharma, [lic.dataset])
    for caller in (lic.hospital, lic.stranger):  # the parent's owner, a non-member: not the owner
        assert lic.reverts("DataUseLicensingNotOwner", caller, "declarePriorityWindow", result, MIN_WINDOW) == {
            "datasetId": result, "caller": caller.address}
    assert lic.reverts("DataUseLicensingUnknownDataset", lic.pharma, "declarePriorityWindow", 99, MIN_WINDOW) == {
        "datasetId": 99}
    assert lic.reverts("DataUseLicensingNoParents", lic.hospital, "declarePriorityWindow", lic.dataset,
                       MIN_WINDOW) == {"datasetId": lic.dataset}
    for duration in (0, MIN_WINDOW - 1, MAX_WINDOW + 1, 2**64 - 1):
        assert lic.reverts("DataUseLicensingInvalidPriorityWindow", lic.pharma, "declarePriorityWindow", result,
                           duration) == {"duration": duration, "min": MIN_WINDOW, "max": MAX_WINDOW}
    assert (lic.view("MIN_PRIORITY_WINDOW"), lic.view("MAX_PRIORITY_WINDOW")) == (MIN_WINDOW, MAX_WINDOW)

    # The registry keeps derivedFrom as given (repeats included); the request's loop over it is
    # bounded by refusing a window to a dataset with more parents than MAX_PRIORITY_PARENTS.
    most = lic.view("MAX_PRIORITY_PARENTS")
    crowded = lic.register(lic.pharma, [lic.dataset] * (most + 1))
    assert lic.reverts("DataUseLicensingTooManyParents", lic.pharma, "declarePriorityWindow", crowded,
                       MIN_WINDOW) == {"datasetId": crowded, "parents": most + 1, "max": most}
    full = lic.register(lic.pharma, [lic.dataset] * most)
    lic.call(lic.pharma, "declarePriorityWindow", full, MAX_WINDOW)

    receipt = lic.call(lic.pharma, "declarePriorityWindow", result, 90 * DAY)
    closes = lic.events(receipt, "PriorityWindowDeclared")[0]["closesAt"]
    for duration in (MIN_WINDOW, 90 * DAY):  # once: neither shortened, extended nor renewed
        assert lic.reverts("DataUseLicensingPriorityAlreadyDeclared", lic.pharma, "declarePriorityWindow", result,
                           duration) == {"datasetId": result, "closesAt": closes}
    assert lic.view("priorityWindow", result) == closes
