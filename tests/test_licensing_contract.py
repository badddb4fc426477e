"""DataUseLicensing behaviour on the embedded chain and on anvil (the `chain` fixture): requests,
grants that narrow but never widen a DUO purpose, the DUO matching of `isAuthorized`, revocation,
renewal, expiry, delegates, key delivery for future versions, patient consent, and every
restricted function called by a non-owner member, a non-member and a (revoked) licensee.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD

from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
from fullchain.contracts import DATASET_REGISTRY, bind, deploy_contract
from fullchain.errors import TransactionReverted
from fullchain.models import Role
from fullchain.transactions import Transactor

LICENSING = "DataUseLicensing"
NRES, GRU, HMB, DS, POA = 4, 42, 6, 7, 11
ZERO32 = b"\0" * 32
DAY = 86400
TERM = 90 * DAY
# Status enum of IDataUseLicensing
NONE, REQUESTED, GRANTED, REJECTED, REVOKED = range(5)
# License struct field positions
REQUESTER, PURPOSE, STATUS, FUTURE, BATCHED, FROM_VERSION, DATASET, LTERM, REQUESTED_AT, EXPIRES, MODIFIERS, \
    DISEASE, JUSTIFICATION = range(13)


def disease(curie: str) -> bytes:
    return curie.encode().ljust(32, b"\0")


DIABETES = disease("MONDO:0005015")
CANCER = disease("MONDO:0004992")


def version_input() -> tuple:
    return (secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32), 1234, 0x70, 0x55, 1, 2,
            secrets.token_bytes(32))


@dataclass
class Lic:
    w3: Web3
    hospital: Transactor  # governor, dataset owner
    pharma: Transactor  # member, the usual licensee
    cro: Transactor  # member, not the owner
    patient: Transactor  # member with the patient role
    stranger: Transactor  # funded, not a member
    consortium: ConsortiumClient  # signed by the hospital (threshold 1)
    registry: str
    address: str
    dataset: int

    @property
    def contract(self) -> Any:
        return bind(self.w3, LICENSING, self.address)

    def call(self, tx: Transactor, fn: str, *args: object) -> Any:
        return tx.call_function(getattr(self.contract.functions, fn)(*args), contract=LICENSING)

    def view(self, fn: str, *args: object) -> Any:
        return getattr(self.contract.functions, fn)(*args).call()

    def events(self, receipt: Any, name: str) -> list[dict]:
        return [e["args"] for e in getattr(self.contract.events, name)().process_receipt(receipt, errors=DISCARD)]

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def register(self, tx: Transactor | None = None, parents: list[int] | None = None) -> int:
        registry = bind(self.w3, DATASET_REGISTRY, self.registry)
        receipt = (tx or self.hospital).call_function(
            registry.functions.registerDataset(version_input(), parents or []), contract=DATASET_REGISTRY)
        return registry.events.DatasetRegistered().process_receipt(receipt, errors=DISCARD)[0]["args"]["datasetId"]

    def add_version(self, dataset: int | None = None) -> None:
        registry = bind(self.w3, DATASET_REGISTRY, self.registry)
        self.hospital.call_function(registry.functions.registerVersion(dataset or self.dataset, version_input()),
                                    contract=DATASET_REGISTRY)

    def request(self, tx: Transactor | None = None, purpose: int = GRU, dis: bytes = ZERO32, modifiers: int = 0,
                term: int = TERM, dataset: int | None = None, justification: bytes = b"\x33" * 32) -> int:
        receipt = self.call(tx or self.pharma, "request", dataset or self.dataset, purpose, dis, modifiers, term,
                            justification)
        return self.events(receipt, "LicenseRequested")[0]["licenseId"]

    def terms(self, purpose: int = GRU, dis: bytes = ZERO32, modifiers: int = 0, expires_in: int = 30 * DAY,
              future: bool = True, expires_at: int | None = None, batched: bool = False) -> tuple:
        return (expires_at if expires_at is not None else self.now() + expires_in, purpose, dis, modifiers, future,
                batched)

    def grant(self, license_id: int, tx: Transactor | None = None, digest: bytes = b"\x44" * 32, **terms: Any) -> Any:
        return self.call(tx or self.hospital, "grant", license_id, self.terms(**terms), digest)

    def licensed(self, tx: Transactor | None = None, purpose: int = GRU, dis: bytes = ZERO32, **kw: Any) -> int:
        """A license requested by `tx` (pharma) and granted by the hospital as requested."""
        dataset = kw.pop("dataset", None)
        lid = self.request(tx, purpose, dis, dataset=dataset)
        self.grant(lid, purpose=purpose, dis=dis, **kw)
        return lid

    def authorized(self, tx: Transactor, purpose: int, dis: bytes = ZERO32, dataset: int | None = None) -> bool:
        return self.view("isAuthorized", tx.address, dataset or self.dataset, purpose, dis)

    def reverts(self, error: str, tx: Transactor, fn: str, *args: object) -> dict:
        with pytest.raises(TransactionReverted) as info:
            self.call(tx, fn, *args)
        assert info.value.error_name == error, info.value
        return info.value.error_args

    def remove_member(self, account: str) -> None:
        self.consortium.execute(self.consortium.propose_remove(account))

    def readmit(self, account: str, roles: Role) -> None:
        self.consortium.execute(self.consortium.propose_admit(account, roles, secrets.token_bytes(32)))

    def erase(self, version: int, dataset: int | None = None) -> None:
        registry = bind(self.w3, DATASET_REGISTRY, self.registry)
        self.hospital.call_function(registry.functions.eraseVersion(dataset or self.dataset, version),
                                    contract=DATASET_REGISTRY)


@pytest.fixture
def lic(chain) -> Lic:  # noqa: ANN001
    actors = {name: chain.account() for name in ("hospital", "pharma", "cro", "patient", "stranger")}
    roles = {"hospital": Role.HOSPITAL | Role.GOVERNOR, "pharma": Role.PHARMA, "cro": Role.CRO,
             "patient": Role.PATIENT}
    founders = [Founder(actors[n][0].address, r, bytes([i + 1]) * 32) for i, (n, r) in enumerate(roles.items())]
    hospital_tx = actors["hospital"][1]
    consortium, _ = deploy_consortium(hospital_tx, chain.w3, founders, threshold=1)
    registry, _ = deploy_contract(hospital_tx, chain.w3, DATASET_REGISTRY, consortium)
    address, _ = deploy_contract(hospital_tx, chain.w3, LICENSING, consortium, registry)
    setup = Lic(chain.w3, hospital_tx, actors["pharma"][1], actors["cro"][1], actors["patient"][1],
                actors["stranger"][1], ConsortiumClient(chain.w3, consortium, hospital_tx), registry, address, 0)
    setup.dataset = setup.register()
    return setup


# ---- the happy path and DUO matching ----

def test_request_grant_authorize_record_and_key(lic: Lic) -> None:
    justification = secrets.token_bytes(32)
    receipt = lic.call(lic.pharma, "request", lic.dataset, GRU, ZERO32, 0b101, TERM, justification)
    requested = lic.events(receipt, "LicenseRequested")[0]
    lid = requested["licenseId"]
    assert lid == 1 and lic.view("licenseCount") == 1
    assert (requested["datasetId"], requested["requester"], requested["purpose"], requested["modifiers"],
            requested["term"], requested["justificationHash"]) == (lic.dataset, lic.pharma.address, GRU, 0b101,
                                                                   TERM, justification)
    record = lic.view("license", lid)
    assert record[REQUESTER] == lic.pharma.address and record[STATUS] == REQUESTED and record[EXPIRES] == 0
    assert record[JUSTIFICATION] == justification and record[LTERM] == TERM
    assert not lic.view("isValid", lid) and not lic.authorized(lic.pharma, GRU)

    digest = secrets.token_bytes(32)
    expires = lic.now() + 30 * DAY
    receipt = lic.call(lic.hospital, "grant", lid, (expires, GRU, ZERO32, 0b111, True, False), digest)
    granted = lic.events(receipt, "LicenseGranted")[0]
    assert (granted["licenseId"], granted["licensee"], granted["purpose"], granted["modifiers"],
            granted["expiresAt"], granted["fromVersion"], granted["futureVersions"], granted["batchedAccess"]) == (
        lid, lic.pharma.address, GRU, 0b111, expires, 1, True, False)
    delivered = lic.events(receipt, "KeyDelivered")[0]
    assert (delivered["licenseId"], delivered["version"], delivered["bundleDigest"]) == (lid, 1, digest)
    record = lic.view("license", lid)
    assert record[STATUS] == GRANTED and record[EXPIRES] == expires and record[FROM_VERSION] == 1
    assert record[MODIFIERS] == 0b111 and record[FUTURE] is True and record[BATCHED] is False
    assert lic.view("isValid", lid)
    assert lic.view("keyBundle", lid, 1) == digest and lic.view("keyBundle", lid, 2) == ZERO32

    assert lic.authorized(lic.pharma, GRU)
    assert not lic.authorized(lic.cro, GRU)  # licenses are personal
    assert not lic.authorized(lic.pharma, GRU, dataset=lic.register())  # ... and per dataset

    receipt = lic.call(lic.pharma, "recordAccess", lid, 1, 0)
    access = lic.events(receipt, "AccessRecorded")[0]
    assert (access["licenseId"], access["datasetId"], access["licensee"], access["version"], access["kind"]) == (
        lid, lic.dataset, lic.pharma.address, 1, 0)


# granted purpose -> {(asked purpose, disease): authorized}
ASKED = [(NRES, ZERO32), (GRU, ZERO32), (HMB, ZERO32), (DS, DIABETES), (DS, CANCER), (POA, ZERO32)]
MATRIX = {
    (NRES, ZERO32): [True, True, True, True, True, True],
    (GRU, ZERO32): [False, True, True, True, True, True],
    (HMB, ZERO32): [False, False, True, True, True, False],
    (DS, DIABETES): [False, False, False, True, False, False],
    (POA, ZERO32): [False, False, False, False, False, True],
}


def test_is_authorized_follows_the_duo_hierarchy(lic: Lic) -> None:
    datasets = {granted: lic.register() for granted in MATRIX}  # one dataset per granted purpose
    for (purpose, dis), dataset in datasets.items():
        lic.licensed(purpose=purpose, dis=dis, dataset=dataset)
    table = {granted: [lic.authorized(lic.pharma, p, d, dataset) for p, d in ASKED]
             for granted, dataset in datasets.items()}
    assert table == MATRIX
    # the other member holds none of these
    assert not any(lic.authorized(lic.cro, p, d, ds) for ds in datasets.values() for p, d in ASKED)


# ---- grant terms ----

def test_grants_narrow_but_never_widen_the_purpose(lic: Lic) -> None:
    hmb = lic.request(purpose=HMB)
    for wider in (GRU, NRES, POA):
        args = lic.reverts("DataUseLicensingPurposeWidened", lic.hospital, "grant", hmb, lic.terms(purpose=wider),
                           ZERO32)
        assert args == {"requested": HMB, "granted": wider}
    ds = lic.request(purpose=DS, dis=DIABETES)
    lic.reverts("DataUseLicensingPurposeWidened", lic.hospital, "grant", ds, lic.terms(purpose=DS, dis=CANCER),
                ZERO32)
    lic.reverts("DataUseLicensingPurposeWidened", lic.hospital, "grant", ds, lic.terms(purpose=HMB), ZERO32)
    poa = lic.request(purpose=POA)
    lic.reverts("DataUseLicensingPurposeWidened", lic.hospital, "grant", poa, lic.terms(purpose=GRU), ZERO32)
    # malformed granted purposes are refused as such
    lic.reverts("DataUseLicensingInvalidPurpose", lic.hospital, "grant", hmb, lic.terms(purpose=DS), ZERO32)
    lic.reverts("DataUseLicensingInvalidPurpose", lic.hospital, "grant", hmb, lic.terms(purpose=99), ZERO32)

    # narrowing HMB to DS(diabetes): the license is for DS(diabetes) only
    lic.grant(hmb, purpose=DS, dis=DIABETES)
    record = lic.view("license", hmb)
    assert record[PURPOSE] == DS and record[DISEASE] == DIABETES
    assert lic.authorized(lic.pharma, DS, DIABETES)
    assert not lic.authorized(lic.pharma, HMB) and not lic.authorized(lic.pharma, DS, CANCER)
    # narrowing GRU to POA
    gru = lic.request(purpose=GRU)
    lic.grant(gru, purpose=POA)
    assert lic.authorized(lic.pharma, POA) and not lic.authorized(lic.pharma, GRU)


def test_grants_never_drop_requested_modifiers(lic: Lic) -> None:
    lid = lic.request(modifiers=0b101)
    for fewer in (0, 0b100, 0b001, 0b010):
        args = lic.reverts("DataUseLicensingModifiersDropped", lic.hospital, "grant", lid,
                           lic.terms(modifiers=fewer), ZERO32)
        assert args == {"requested": 0b101, "granted": fewer}
    lic.grant(lid, modifiers=0b1101)  # adding conditions is allowed
    assert lic.view("license", lid)[MODIFIERS] == 0b1101


def test_grants_need_an_expiry_within_the_term(lic: Lic) -> None:
    lid = lic.request(term=10 * DAY)
    now = lic.now()
    for expires in (0, now - 1, now):  # not in the future
        args = lic.reverts("DataUseLicensingInvalidExpiry", lic.hospital, "grant", lid,
                           lic.terms(expires_at=expires), ZERO32)
        assert args["expiresAt"] == expires
    args = lic.reverts("DataUseLicensingInvalidExpiry", lic.hospital, "grant", lid,
                       lic.terms(expires_at=now + 11 * DAY), ZERO32)
    assert args["expiresAt"] == now + 11 * DAY and now + 10 * DAY <= args["latest"] < now + 10 * DAY + 600
    assert lic.view("license", lid)[STATUS] == REQUESTED
    lic.grant(lid, expires_in=10 * DAY - 600)
    assert lic.view("isValid", lid)


def test_request_validation(lic: Lic) -> None:
    def bad(error: str, *args: object, tx: Transactor | None = None) -> dict:
        return lic.reverts(error, tx or lic.pharma, "request", *args)

    for purpose, dis in ((99, ZERO32), (1, ZERO32), (17, ZERO32), (0, ZERO32),  # not permissions
                         (DS, ZERO32),  # disease-specific without its disease
                         (GRU, DIABETES), (HMB, DIABETES), (NRES, DIABETES), (POA, DIABETES)):  # disease elsewhere
        args = bad("DataUseLicensingInvalidPurpose", lic.dataset, purpose, dis, 0, TERM, ZERO32)
        assert args == {"purpose": purpose, "disease": dis}
    assert bad("DataUseLicensingInvalidTerm", lic.dataset, GRU, ZERO32, 0, 0, ZERO32) == {"term": 0}
    assert bad("DataUseLicensingOwnDataset", lic.dataset, GRU, ZERO32, 0, TERM, ZERO32,
               tx=lic.hospital) == {"datasetId": lic.dataset}
    for unknown in (0, lic.dataset + 1, 2**64):
        assert bad("DataUseLicensingUnknownDataset", unknown, GRU, ZERO32, 0, TERM, ZERO32) == {"datasetId": unknown}
    assert bad("DataUseLicensingNotMember", lic.dataset, GRU, ZERO32, 0, TERM, ZERO32,
               tx=lic.stranger) == {"account": lic.stranger.address}
    assert lic.view("licenseCount") == 0


# ---- who may do what ----

def test_restricted_functions_refuse_non_owners_non_members_and_licensees(lic: Lic) -> None:
    pending = lic.request()  # pharma's, not decided
    granted = lic.licensed(purpose=HMB)  # pharma's, granted
    other_member, stranger, licensee = lic.cro, lic.stranger, lic.pharma
    digest = b"\x55" * 32
    later = lic.now() + 60 * DAY

    def refused(error: str, tx: Transactor, fn: str, *args: object) -> None:
        args_ = lic.reverts(error, tx, fn, *args)
        if error == "DataUseLicensingNotOwnerOrDelegate":
            assert args_ == {"datasetId": lic.dataset, "caller": tx.address}
        elif error == "DataUseLicensingNotMember":
            assert args_ == {"account": tx.address}

    cases = {  # function, args, error for (non-owner member, non-member, licensee)
        "grant": ((pending, lic.terms(), digest),
                  ("NotOwnerOrDelegate", "NotMember", "NotOwnerOrDelegate")),
        "reject": ((pending,), ("NotOwnerOrDelegate", "NotOwnerOrDelegate", "NotOwnerOrDelegate")),
        "revoke": ((granted,), ("NotOwnerOrDelegate", "NotOwnerOrDelegate", "NotOwnerOrDelegate")),
        "renew": ((granted, later), ("NotOwnerOrDelegate", "NotMember", "NotOwnerOrDelegate")),
        "deliverKey": ((granted, 1, digest), ("NotOwnerOrDelegate", "NotMember", "NotOwnerOrDelegate")),
    }
    for fn, (args, errors) in cases.items():
        for tx, error in zip((other_member, stranger, licensee), errors):
            refused(f"DataUseLicensing{error}", tx, fn, *args)

    for tx in (other_member, stranger, lic.hospital):  # only the licensee records its uses
        assert lic.reverts("DataUseLicensingNotLicensee", tx, "recordAccess", granted, 1, 0) == {
            "licenseId": granted, "caller": tx.address}
    for tx in (other_member, licensee):
        assert lic.reverts("DataUseLicensingNotOwner", tx, "setDelegate", lic.dataset, tx.address, True) == {
            "datasetId": lic.dataset, "caller": tx.address}
    assert lic.reverts("DataUseLicensingNotMember", stranger, "setDelegate", lic.dataset, stranger.address,
                       True) == {"account": stranger.address}
    for tx in (other_member, stranger, licensee):
        lic.reverts("DataUseLicensingNotOwner", tx, "requireConsent", lic.dataset, lic.patient.address)
    for tx in (other_member, stranger, lic.hospital, lic.patient):  # consent not required yet: nobody's to give
        lic.reverts("DataUseLicensingNotPatient", tx, "setConsent", lic.dataset, False)
    lic.call(lic.hospital, "requireConsent", lic.dataset, lic.patient.address)
    for tx in (other_member, stranger, lic.hospital, licensee):
        assert lic.reverts("DataUseLicensingNotPatient", tx, "setConsent", lic.dataset, False) == {
            "datasetId": lic.dataset, "caller": tx.address}
    assert tuple(lic.view("consent", lic.dataset)) == (True, lic.patient.address, True)

    # nothing changed
    assert lic.view("license", pending)[STATUS] == REQUESTED
    assert lic.view("license", granted)[STATUS] == GRANTED and lic.view("isValid", granted)
    assert lic.view("keyBundle", granted, 1) == b"\x44" * 32

    # a revoked licensee: still a member, so the owner-only functions refuse it as a non-owner,
    # and its own license can no longer be used
    lic.call(lic.hospital, "revoke", granted)
    own_pending = lic.request(licensee, purpose=POA)
    for fn, args in (("grant", (own_pending, lic.terms(purpose=POA), digest)), ("reject", (own_pending,)),
                     ("revoke", (granted,)), ("renew", (granted, later)), ("deliverKey", (granted, 1, digest))):
        refused("DataUseLicensingNotOwnerOrDelegate", licensee, fn, *args)
    assert lic.reverts("DataUseLicensingNotValid", licensee, "recordAccess", granted, 1, 0) == {"licenseId": granted}
    lic.reverts("DataUseLicensingNotOwner", licensee, "setDelegate", lic.dataset, licensee.address, True)
    lic.reverts("DataUseLicensingNotOwner", licensee, "requireConsent", lic.dataset, lic.patient.address)
    lic.reverts("DataUseLicensingNotPatient", licensee, "setConsent", lic.dataset, True)
    assert lic.view("license", granted)[STATUS] == REVOKED and lic.view("license", own_pending)[STATUS] == REQUESTED


def test_unknown_licenses(lic: Lic) -> None:
    missing = 77
    for tx, fn, args in ((lic.hospital, "grant", (missing, lic.terms(), ZERO32)), (lic.hospital, "reject", (missing,)),
                         (lic.hospital, "revoke", (missing,)), (lic.hospital, "renew", (missing, lic.now() + DAY)),
                         (lic.hospital, "deliverKey", (missing, 1, ZERO32)),
                         (lic.pharma, "recordAccess", (missing, 1, 0))):
        assert lic.reverts("DataUseLicensingUnknownLicense", tx, fn, *args) == {"licenseId": missing}
    assert not lic.view("isValid", missing) and lic.view("keyBundle", missing, 1) == ZERO32


def test_wrong_status(lic: Lic) -> None:
    def wrong(fn: str, lid: int, status: int, *args: object) -> None:
        assert lic.reverts("DataUseLicensingWrongStatus", lic.hospital, fn, lid, *args) == {
            "licenseId": lid, "status": status}

    granted = lic.licensed()
    wrong("grant", granted, GRANTED, lic.terms(), ZERO32)  # grant twice
    wrong("reject", granted, GRANTED)  # reject a grant

    requested = lic.request(purpose=HMB)
    wrong("revoke", requested, REQUESTED)  # revoke a request
    wrong("renew", requested, REQUESTED, lic.now() + DAY)
    assert lic.reverts("DataUseLicensingNotValid", lic.hospital, "deliverKey", requested, 1, ZERO32) == {
        "licenseId": requested}
    assert lic.reverts("DataUseLicensingNotValid", lic.pharma, "recordAccess", requested, 1, 0) == {
        "licenseId": requested}

    lic.call(lic.hospital, "reject", requested)
    wrong("grant", requested, REJECTED, lic.terms(purpose=HMB), ZERO32)
    wrong("reject", requested, REJECTED)
    wrong("revoke", requested, REJECTED)
    wrong("renew", requested, REJECTED, lic.now() + DAY)

    lic.call(lic.hospital, "revoke", granted)
    wrong("revoke", granted, REVOKED)
    wrong("renew", granted, REVOKED, lic.now() + DAY)
    wrong("grant", granted, REVOKED, lic.terms(), ZERO32)
    wrong("reject", granted, REVOKED)
    assert lic.view("license", granted)[STATUS] == REVOKED and lic.view("license", requested)[STATUS] == REJECTED


# ---- revocation, renewal, expiry ----

def test_revoke_is_immediate(lic: Lic) -> None:
    lid = lic.licensed(purpose=HMB)
    lic.call(lic.pharma, "recordAccess", lid, 1, 0)
    lic.add_version()
    receipt = lic.call(lic.hospital, "revoke", lid)
    assert lic.events(receipt, "LicenseRevoked") == [{"licenseId": lid, "by": lic.hospital.address}]
    assert not lic.view("isValid", lid)
    assert not lic.authorized(lic.pharma, HMB) and not lic.authorized(lic.pharma, DS, DIABETES)
    assert lic.reverts("DataUseLicensingNotValid", lic.pharma, "recordAccess", lid, 1, 0) == {"licenseId": lid}
    assert lic.reverts("DataUseLicensingNotValid", lic.hospital, "deliverKey", lid, 2, b"\x66" * 32) == {
        "licenseId": lid}
    assert lic.view("keyBundle", lid, 2) == ZERO32


def test_expiry_and_renewal(lic: Lic, chain) -> None:  # noqa: ANN001
    expiring = lic.licensed(purpose=HMB, expires_in=30)
    renewed = lic.licensed(purpose=POA, expires_in=30)
    lic.call(lic.pharma, "recordAccess", expiring, 1, 1)
    new_expiry = lic.now() + 10 * DAY
    receipt = lic.call(lic.hospital, "renew", renewed, new_expiry)
    assert lic.events(receipt, "LicenseRenewed") == [{"licenseId": renewed, "expiresAt": new_expiry}]
    assert lic.view("license", renewed)[EXPIRES] == new_expiry

    chain.advance_time(40)
    assert not lic.view("isValid", expiring) and not lic.authorized(lic.pharma, HMB)
    assert lic.view("license", expiring)[STATUS] == GRANTED  # expired, not revoked
    assert lic.reverts("DataUseLicensingNotValid", lic.pharma, "recordAccess", expiring, 1, 0) == {
        "licenseId": expiring}
    lic.reverts("DataUseLicensingNotValid", lic.hospital, "deliverKey", expiring, 1, b"\x66" * 32)
    assert lic.view("isValid", renewed) and lic.authorized(lic.pharma, POA)  # renewal extended it
    lic.call(lic.pharma, "recordAccess", renewed, 1, 2)

    for past in (0, lic.now()):
        assert lic.reverts("DataUseLicensingInvalidExpiry", lic.hospital, "renew", expiring, past)["expiresAt"] == past
    lic.call(lic.hospital, "renew", expiring, lic.now() + DAY)  # an expired grant can be renewed
    assert lic.view("isValid", expiring) and lic.authorized(lic.pharma, HMB)


def test_delegates_grant_and_revoke_until_removed(lic: Lic) -> None:
    delegate = lic.cro
    first, second, third = lic.request(), lic.request(purpose=HMB), lic.request(purpose=POA)
    lic.reverts("DataUseLicensingNotOwnerOrDelegate", delegate, "grant", first, lic.terms(), ZERO32)
    receipt = lic.call(lic.hospital, "setDelegate", lic.dataset, delegate.address, True)
    assert lic.events(receipt, "DelegateSet") == [
        {"datasetId": lic.dataset, "delegate": delegate.address, "allowed": True}]

    receipt = lic.grant(first, tx=delegate)
    assert lic.events(receipt, "LicenseGranted")[0]["licensee"] == lic.pharma.address
    assert lic.authorized(lic.pharma, GRU)
    receipt = lic.call(delegate, "revoke", first)
    assert lic.events(receipt, "LicenseRevoked") == [{"licenseId": first, "by": delegate.address}]
    assert not lic.authorized(lic.pharma, GRU)
    receipt = lic.call(delegate, "reject", third)
    assert lic.events(receipt, "LicenseRejected") == [{"licenseId": third, "by": delegate.address}]
    lic.grant(second, tx=delegate, purpose=HMB)
    lic.call(delegate, "renew", second, lic.now() + 40 * DAY)
    lic.call(delegate, "deliverKey", second, 1, b"\x77" * 32)
    assert lic.view("keyBundle", second, 1) == b"\x77" * 32

    # the delegation is per dataset
    elsewhere = lic.request(dataset=lic.register())
    lic.reverts("DataUseLicensingNotOwnerOrDelegate", delegate, "grant", elsewhere, lic.terms(), ZERO32)

    receipt = lic.call(lic.hospital, "setDelegate", lic.dataset, delegate.address, False)
    assert lic.events(receipt, "DelegateSet")[0]["allowed"] is False
    fourth = lic.request(purpose=GRU)
    for fn, args in (("grant", (fourth, lic.terms(), ZERO32)), ("revoke", (second,)), ("reject", (fourth,)),
                     ("renew", (second, lic.now() + DAY))):
        lic.reverts("DataUseLicensingNotOwnerOrDelegate", delegate, fn, *args)
    assert lic.view("isValid", second) and lic.view("license", fourth)[STATUS] == REQUESTED


# ---- versions ----

def test_future_versions_and_key_delivery(lic: Lic) -> None:
    covering = lic.licensed(purpose=HMB, future=True)
    current_only = lic.licensed(purpose=POA, future=False)
    digest = b"\x88" * 32
    for lid in (covering, current_only):  # version 2 does not exist yet
        assert lic.reverts("DataUseLicensingVersionNotCovered", lic.hospital, "deliverKey", lid, 2, digest) == {
            "licenseId": lid, "version": 2}
        lic.reverts("DataUseLicensingVersionNotCovered", lic.pharma, "recordAccess", lid, 2, 0)
        lic.reverts("DataUseLicensingVersionNotCovered", lic.hospital, "deliverKey", lid, 0, digest)

    lic.add_version()
    receipt = lic.call(lic.hospital, "deliverKey", covering, 2, digest)
    assert lic.events(receipt, "KeyDelivered") == [{"licenseId": covering, "version": 2, "bundleDigest": digest}]
    assert lic.view("keyBundle", covering, 2) == digest
    lic.call(lic.pharma, "recordAccess", covering, 2, 0)
    lic.reverts("DataUseLicensingVersionNotCovered", lic.hospital, "deliverKey", covering, 3, digest)

    assert lic.reverts("DataUseLicensingVersionNotCovered", lic.hospital, "deliverKey", current_only, 2, digest) == {
        "licenseId": current_only, "version": 2}
    lic.reverts("DataUseLicensingVersionNotCovered", lic.pharma, "recordAccess", current_only, 2, 0)
    lic.call(lic.pharma, "recordAccess", current_only, 1, 0)
    assert lic.view("keyBundle", current_only, 2) == ZERO32

    # a license granted now starts at version 2: version 1 is not part of it
    later = lic.licensed(tx=lic.cro, purpose=GRU)
    assert lic.view("license", later)[FROM_VERSION] == 2 and lic.view("keyBundle", later, 2) == b"\x44" * 32
    lic.reverts("DataUseLicensingVersionNotCovered", lic.hospital, "deliverKey", later, 1, digest)
    lic.reverts("DataUseLicensingVersionNotCovered", lic.cro, "recordAccess", later, 1, 0)


# ---- consent ----

def test_consent_needs_a_patient(lic: Lic) -> None:
    for account in (lic.cro.address, lic.stranger.address, lic.hospital.address):
        assert lic.reverts("DataUseLicensingNoPatient", lic.hospital, "requireConsent", lic.dataset, account) == {
            "patient": account}
    assert tuple(lic.view("consent", lic.dataset)) == (False, "0x" + "00" * 20, False)
    receipt = lic.call(lic.hospital, "requireConsent", lic.dataset, lic.patient.address)
    assert lic.events(receipt, "ConsentRequired") == [{"datasetId": lic.dataset, "patient": lic.patient.address}]
    assert tuple(lic.view("consent", lic.dataset)) == (True, lic.patient.address, True)


def test_withdrawn_consent_blocks_grants_and_uses(lic: Lic) -> None:
    lic.call(lic.hospital, "requireConsent", lic.dataset, lic.patient.address)
    lid = lic.licensed(purpose=HMB)
    lic.call(lic.pharma, "recordAccess", lid, 1, 0)

    receipt = lic.call(lic.patient, "setConsent", lic.dataset, False)
    assert lic.events(receipt, "ConsentChanged") == [
        {"datasetId": lic.dataset, "patient": lic.patient.address, "given": False}]
    assert tuple(lic.view("consent", lic.dataset)) == (True, lic.patient.address, False)
    assert not lic.view("isValid", lid) and not lic.authorized(lic.pharma, HMB)
    assert lic.reverts("DataUseLicensingConsentWithdrawn", lic.pharma, "recordAccess", lid, 1, 0) == {
        "datasetId": lic.dataset}
    pending = lic.request(tx=lic.cro, purpose=GRU)  # asking is still possible ...
    assert lic.reverts("DataUseLicensingConsentWithdrawn", lic.hospital, "grant", pending, lic.terms(),
                       ZERO32) == {"datasetId": lic.dataset}  # ... licensing is not
    lic.reverts("DataUseLicensingNotValid", lic.hospital, "deliverKey", lid, 1, ZERO32)
    # other datasets of the owner are not affected
    free = lic.register()
    lic.licensed(purpose=HMB, dataset=free)
    assert lic.authorized(lic.pharma, HMB, dataset=free)

    receipt = lic.call(lic.patient, "setConsent", lic.dataset, True)
    assert lic.events(receipt, "ConsentChanged")[0]["given"] is True
    assert lic.view("isValid", lid) and lic.authorized(lic.pharma, HMB)
    lic.call(lic.pharma, "recordAccess", lid, 1, 0)
    lic.grant(pending)
    assert lic.authorized(lic.cro, GRU)


# ---- membership ----

def test_a_removed_licensee_loses_validity(lic: Lic) -> None:
    lid = lic.licensed(purpose=GRU)
    assert lic.view("isValid", lid)
    lic.remove_member(lic.pharma.address)
    assert not lic.view("isValid", lid) and not lic.authorized(lic.pharma, GRU)
    assert lic.reverts("DataUseLicensingNotValid", lic.pharma, "recordAccess", lid, 1, 0) == {"licenseId": lid}
    lic.reverts("DataUseLicensingNotMember", lic.pharma, "request", lic.dataset, HMB, ZERO32, 0, TERM, ZERO32)
    assert lic.view("license", lid)[STATUS] == GRANTED  # the record stays


def test_a_removed_owner_can_still_revoke_but_not_grant(lic: Lic) -> None:
    owner = lic.cro
    dataset = lic.register(owner)
    granted = lic.request(purpose=GRU, dataset=dataset)
    lic.grant(granted, tx=owner)
    pending = lic.request(purpose=HMB, dataset=dataset)
    lic.remove_member(owner.address)
    assert lic.reverts("DataUseLicensingNotMember", owner, "grant", pending, lic.terms(purpose=HMB), ZERO32) == {
        "account": owner.address}
    lic.reverts("DataUseLicensingNotMember", owner, "renew", granted, lic.now() + DAY)
    lic.reverts("DataUseLicensingNotMember", owner, "deliverKey", granted, 1, ZERO32)
    assert lic.authorized(lic.pharma, GRU, dataset=dataset)
    lic.call(owner, "revoke", granted)  # stopping a use never needs membership
    assert not lic.authorized(lic.pharma, GRU, dataset=dataset)


# ---- events ----

def test_every_change_emits_its_event(lic: Lic) -> None:
    lid = lic.request(purpose=DS, dis=CANCER, modifiers=3, term=DAY)
    receipt = lic.call(lic.hospital, "reject", lid)
    assert lic.events(receipt, "LicenseRejected") == [{"licenseId": lid, "by": lic.hospital.address}]
    lid = lic.request(purpose=DS, dis=CANCER, modifiers=3, term=DAY)
    receipt = lic.grant(lid, digest=ZERO32, purpose=DS, dis=CANCER, modifiers=3, expires_in=DAY // 2)
    assert lic.events(receipt, "LicenseGranted")[0]["disease"] == CANCER
    assert lic.events(receipt, "KeyDelivered") == []  # no key bundle given, none recorded
    assert lic.view("keyBundle", lid, 1) == ZERO32
    receipt = lic.call(lic.hospital, "renew", lid, lic.now() + DAY)
    assert lic.events(receipt, "LicenseRenewed")[0]["licenseId"] == lid
    receipt = lic.call(lic.pharma, "recordAccess", lid, 1, 1)
    assert lic.events(receipt, "AccessRecorded")[0]["kind"] == 1
    receipt = lic.call(lic.hospital, "revoke", lid)
    assert lic.events(receipt, "LicenseRevoked")[0]["licenseId"] == lid


# ---- defects found while writing these tests, fixed in the contract ----

def test_a_new_grant_for_the_same_purpose_supersedes_the_old_one(lic: Lic) -> None:
    """One valid license per (licensee, dataset, purpose, disease): nothing can hide behind it."""
    older = lic.licensed(purpose=HMB, expires_in=60 * DAY)
    newer = lic.licensed(purpose=HMB, expires_in=10 * DAY)
    assert lic.view("license", older)[STATUS] == 5  # Status.Superseded
    assert not lic.view("isValid", older) and lic.view("isValid", newer)
    lic.call(lic.hospital, "revoke", newer)
    assert not lic.authorized(lic.pharma, HMB)  # and no stale "valid" license claims otherwise
    assert not lic.view("isValid", older)


def test_the_owner_cannot_override_a_withdrawn_consent(lic: Lic) -> None:
    lic.call(lic.hospital, "requireConsent", lic.dataset, lic.patient.address)
    lid = lic.licensed(purpose=HMB)
    lic.call(lic.patient, "setConsent", lic.dataset, False)
    assert not lic.view("isValid", lid)
    with pytest.raises(TransactionReverted) as info:
        lic.call(lic.hospital, "requireConsent", lic.dataset, lic.patient.address)
    assert info.value.error_name == "DataUseLicensingConsentAlreadyRequired"
    assert tuple(lic.view("consent", lic.dataset)) == (True, lic.patient.address, False)
    assert not lic.view("isValid", lid)


def test_terms_beyond_a_century_are_refused_up_front(lic: Lic) -> None:
    with pytest.raises(TransactionReverted) as info:
        lic.request(term=2**64 - 1)
    assert info.value.error_name == "DataUseLicensingInvalidTerm"
    lid = lic.request(term=100 * 365 * DAY)  # the longest accepted term can be granted
    lic.grant(lid, expires_in=30 * DAY)
    assert lic.view("isValid", lid)


def test_delegation_and_self_dealing_rules(lic: Lic) -> None:
    lic.reverts("DataUseLicensingNotMember", lic.hospital, "setDelegate", lic.dataset, lic.stranger.address, True)
    lic.call(lic.hospital, "setDelegate", lic.dataset, lic.pharma.address, True)
    own = lic.request(lic.pharma)  # pharma, a delegate, asks for itself...
    with pytest.raises(TransactionReverted) as info:
        lic.grant(own, tx=lic.pharma)  # ...and may not grant itself
    assert info.value.error_name == "DataUseLicensingSelfGrant"
    leaver = lic.request(lic.cro)
    lic.remove_member(lic.cro.address)
    with pytest.raises(TransactionReverted) as info:
        lic.grant(leaver)
    assert info.value.error_name == "DataUseLicensingNotMember" and info.value.error_args == {
        "account": lic.cro.address}


def test_renewal_never_exceeds_the_requested_term(lic: Lic) -> None:
    lid = lic.licensed(purpose=HMB, expires_in=10 * DAY)
    args = lic.reverts("DataUseLicensingInvalidExpiry", lic.hospital, "renew", lid, 2**64 - 1)
    assert args["latest"] <= lic.now() + TERM + 60
    lic.call(lic.hospital, "renew", lid, lic.now() + TERM - 60)
    assert lic.view("license", lid)[EXPIRES] > lic.now() + 80 * DAY


def test_access_records_are_checked(lic: Lic) -> None:
    lid = lic.licensed(purpose=HMB)
    lic.reverts("DataUseLicensingInvalidKind", lic.pharma, "recordAccess", lid, 1, 3)
    registry = bind(lic.w3, DATASET_REGISTRY, lic.registry)
    lic.hospital.call_function(registry.functions.eraseVersion(lic.dataset, 1), contract=DATASET_REGISTRY)
    assert lic.reverts("DataUseLicensingVersionErased", lic.pharma, "recordAccess", lid, 1, 0) == {
        "datasetId": lic.dataset, "version": 1}


def test_is_authorized_is_false_for_malformed_purposes(lic: Lic) -> None:
    lic.licensed(purpose=4)  # NRES covers every well-formed purpose...
    assert lic.authorized(lic.pharma, GRU)
    assert not lic.authorized(lic.pharma, 99)  # ...but not an unknown code
    assert not lic.authorized(lic.pharma, 7)  # nor disease-specific research without a disease


# ---- issue 7: membership ends delegations and licenses for good ----

def test_a_delegation_ends_when_the_owner_is_removed(lic: Lic) -> None:
    """Item 1: the removed owner can no longer withdraw it, so it must stop counting by itself."""
    owner, delegate = lic.cro, lic.hospital
    dataset = lic.register(owner)
    lic.call(owner, "setDelegate", dataset, delegate.address, True)
    assert lic.view("isDelegate", dataset, delegate.address)
    pending = lic.request(purpose=GRU, dataset=dataset)
    granted = lic.request(purpose=HMB, dataset=dataset)
    lic.grant(granted, tx=delegate, purpose=HMB)
    lic.remove_member(owner.address)
    assert not lic.view("isDelegate", dataset, delegate.address)
    for fn, args in (("grant", (pending, lic.terms(), ZERO32)), ("reject", (pending,)), ("revoke", (granted,)),
                     ("renew", (granted, lic.now() + DAY)), ("deliverKey", (granted, 1, b"\x61" * 32))):
        assert lic.reverts("DataUseLicensingDelegationEnded", delegate, fn, *args) == {
            "datasetId": dataset, "delegate": delegate.address}
    assert lic.view("license", pending)[STATUS] == REQUESTED and lic.view("license", granted)[STATUS] == GRANTED
    lic.call(owner, "revoke", granted)  # the owner that left may still stop a use
    # re-admitting the owner does not revive the delegation either
    lic.readmit(owner.address, Role.CRO)
    assert not lic.view("isDelegate", dataset, delegate.address)
    lic.reverts("DataUseLicensingDelegationEnded", delegate, "grant", pending, lic.terms(), ZERO32)
    lic.call(owner, "setDelegate", dataset, delegate.address, True)  # only a new delegation counts
    lic.grant(pending, tx=delegate)
    assert lic.authorized(lic.pharma, GRU, dataset=dataset)


def test_an_expelled_delegate_can_neither_revoke_nor_reject(lic: Lic) -> None:
    """Item 2: stopping a use after leaving is the owner's exception, not a delegate's."""
    delegate = lic.cro
    lic.call(lic.hospital, "setDelegate", lic.dataset, delegate.address, True)
    granted = lic.licensed(purpose=HMB)
    pending = lic.request(purpose=GRU)
    lic.remove_member(delegate.address)
    for fn, args in (("revoke", (granted,)), ("reject", (pending,))):
        assert lic.reverts("DataUseLicensingNotMember", delegate, fn, *args) == {"account": delegate.address}
    assert lic.view("isValid", granted) and lic.view("license", pending)[STATUS] == REQUESTED
    # re-admitted, it is not a delegate again until the owner says so
    lic.readmit(delegate.address, Role.CRO)
    for fn, args in (("revoke", (granted,)), ("reject", (pending,))):
        assert lic.reverts("DataUseLicensingDelegationEnded", delegate, fn, *args) == {
            "datasetId": lic.dataset, "delegate": delegate.address}
    assert lic.view("isValid", granted)


def test_readmission_revives_no_license_or_request(lic: Lic) -> None:
    """Item 3: a removal ends the licensee's licenses and requests for good."""
    granted = lic.licensed(purpose=GRU)
    pending = lic.request(purpose=HMB)
    lic.remove_member(lic.pharma.address)
    lic.readmit(lic.pharma.address, Role.PHARMA)
    assert lic.view("license", granted)[STATUS] == GRANTED  # the record stays ...
    assert not lic.view("isValid", granted) and not lic.authorized(lic.pharma, GRU)  # ... and is dead
    assert lic.reverts("DataUseLicensingNotValid", lic.pharma, "recordAccess", granted, 1, 0) == {
        "licenseId": granted}
    lic.reverts("DataUseLicensingNotValid", lic.hospital, "deliverKey", granted, 1, b"\x62" * 32)
    assert lic.reverts("DataUseLicensingMembershipEnded", lic.hospital, "grant", pending, lic.terms(purpose=HMB),
                       ZERO32) == {"account": lic.pharma.address, "recordedAdmission": 1, "currentAdmission": 2}
    lic.call(lic.hospital, "renew", granted, lic.now() + DAY)  # even renewed, it stays dead
    assert not lic.view("isValid", granted)
    # a request of the new membership is granted and valid as usual
    fresh = lic.licensed(purpose=GRU)
    assert lic.view("isValid", fresh) and lic.authorized(lic.pharma, GRU)


def test_readmission_revives_no_delegation(lic: Lic) -> None:
    """Item 3: the delegate's removal ends its delegation, re-admitted or not."""
    delegate = lic.cro
    lic.call(lic.hospital, "setDelegate", lic.dataset, delegate.address, True)
    pending = lic.request(purpose=GRU)
    lic.remove_member(delegate.address)
    lic.readmit(delegate.address, Role.CRO)
    assert not lic.view("isDelegate", lic.dataset, delegate.address)
    assert lic.reverts("DataUseLicensingDelegationEnded", delegate, "grant", pending, lic.terms(), ZERO32) == {
        "datasetId": lic.dataset, "delegate": delegate.address}
    assert lic.view("license", pending)[STATUS] == REQUESTED
    lic.call(lic.hospital, "setDelegate", lic.dataset, delegate.address, True)
    assert lic.view("isDelegate", lic.dataset, delegate.address)
    lic.grant(pending, tx=delegate)


def test_a_delegate_neither_renews_nor_keys_its_own_license(lic: Lic, chain) -> None:  # noqa: ANN001
    """Item 4: the self-grant rule applies to renew and deliverKey too."""
    lic.call(lic.hospital, "setDelegate", lic.dataset, lic.pharma.address, True)
    own = lic.licensed(purpose=HMB, expires_in=30)  # granted by the owner
    lic.add_version()
    assert lic.reverts("DataUseLicensingSelfGrant", lic.pharma, "deliverKey", own, 2, b"\x63" * 32) == {
        "licenseId": own}
    assert lic.view("keyBundle", own, 2) == ZERO32
    chain.advance_time(40)
    assert not lic.view("isValid", own)
    assert lic.reverts("DataUseLicensingSelfGrant", lic.pharma, "renew", own, lic.now() + 10 * DAY) == {
        "licenseId": own}
    assert not lic.view("isValid", own)
    # for others' licenses the delegate keeps its powers
    other = lic.licensed(tx=lic.cro, purpose=HMB, expires_in=30)
    lic.call(lic.pharma, "renew", other, lic.now() + DAY)
    lic.call(lic.pharma, "deliverKey", other, 2, b"\x64" * 32)


def test_no_grant_or_key_delivery_for_an_erased_version(lic: Lic) -> None:
    """Item 6: as publishKeyBundle, grant and deliverKey refuse an erased version."""
    covering = lic.licensed(purpose=HMB, future=True)
    lic.add_version()
    lic.erase(2)
    assert lic.reverts("DataUseLicensingVersionErased", lic.hospital, "deliverKey", covering, 2, b"\x65" * 32) == {
        "datasetId": lic.dataset, "version": 2}
    assert lic.view("keyBundle", covering, 2) == ZERO32
    pending = lic.request(tx=lic.cro, purpose=GRU)
    assert lic.reverts("DataUseLicensingVersionErased", lic.hospital, "grant", pending, lic.terms(),
                       b"\x66" * 32) == {"datasetId": lic.dataset, "version": 2}
    assert lic.reverts("DataUseLicensingVersionErased", lic.hospital, "grant", pending, lic.terms(),
                       ZERO32) == {"datasetId": lic.dataset, "version": 2}
    assert lic.view("license", pending)[STATUS] == REQUESTED
    lic.add_version()  # a live version again: granting resumes, from version 3
    lic.grant(pending)
    assert lic.view("license", pending)[FROM_VERSION] == 3


# ---- issue 7 item 7: consent follows the lineage ----

def test_consent_binds_copies_and_copies_of_copies(lic: Lic) -> None:
    original = lic.dataset
    lic.call(lic.hospital, "requireConsent", original, lic.patient.address)
    copy = lic.register(parents=[original])
    copy_of_copy = lic.register(lic.cro, parents=[copy])  # another member's derived work
    lid = lic.request(purpose=HMB, dataset=copy_of_copy)
    lic.grant(lid, tx=lic.cro, purpose=HMB)
    lic.call(lic.pharma, "recordAccess", lid, 1, 0)

    lic.call(lic.patient, "setConsent", original, False)
    assert not lic.view("isValid", lid) and not lic.authorized(lic.pharma, HMB, dataset=copy_of_copy)
    assert lic.reverts("DataUseLicensingConsentWithdrawn", lic.pharma, "recordAccess", lid, 1, 0) == {
        "datasetId": original}
    for dataset, owner in ((copy, lic.hospital), (copy_of_copy, lic.cro)):
        pending = lic.request(purpose=GRU, dataset=dataset)
        assert lic.reverts("DataUseLicensingConsentWithdrawn", owner, "grant", pending, lic.terms(), ZERO32) == {
            "datasetId": original}
    lic.reverts("DataUseLicensingNotValid", lic.cro, "deliverKey", lid, 1, ZERO32)
    # an unrelated dataset of the same owner is not affected
    unrelated = lic.register(lic.cro)
    free = lic.request(purpose=HMB, dataset=unrelated)
    lic.grant(free, tx=lic.cro, purpose=HMB)
    assert lic.authorized(lic.pharma, HMB, dataset=unrelated)

    lic.call(lic.patient, "setConsent", original, True)
    assert lic.view("isValid", lid) and lic.authorized(lic.pharma, HMB, dataset=copy_of_copy)
    lic.call(lic.pharma, "recordAccess", lid, 1, 0)


def test_consent_required_after_the_copy_still_binds_it(lic: Lic) -> None:
    copy = lic.register(lic.cro, parents=[lic.dataset])
    lid = lic.request(purpose=GRU, dataset=copy)
    lic.grant(lid, tx=lic.cro)
    lic.call(lic.hospital, "requireConsent", lic.dataset, lic.patient.address)
    lic.call(lic.patient, "setConsent", lic.dataset, False)
    assert not lic.view("isValid", lid)
    assert lic.reverts("DataUseLicensingConsentWithdrawn", lic.pharma, "recordAccess", lid, 1, 0) == {
        "datasetId": lic.dataset}
    # one of several parents withdrawn is enough
    merged = lic.register(lic.cro, parents=[lic.register(), copy])
    pending = lic.request(purpose=GRU, dataset=merged)
    assert lic.reverts("DataUseLicensingConsentWithdrawn", lic.cro, "grant", pending, lic.terms(), ZERO32) == {
        "datasetId": lic.dataset}
