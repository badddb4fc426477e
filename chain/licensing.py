"""Data-use licensing: requests with a DUO purpose, grants that deliver the data key wrapped
to the licensee, revocation, renewal, consent, and the checks a licensee's fetch goes through.

Revocation stops future reads through fullchain (no new keys, no recorded access) but cannot
recall plaintext a licensee already downloaded; the AccessRecorded events say who read which
version when, which is what an auditor gets instead.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import BlockNotFound, ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from .addresses import to_account
from .consortium import ConsortiumClient
from .contracts import DATA_USE_LICENSING, DATASET_REGISTRY, bind, decode_revert, revert_bytes
from .crypto import KeyBundle, unwrap_key, wrap_key_for
from .duo import Purpose, modifier_codes, modifier_mask
from .errors import InvalidInput, NotAuthorized, TransactionReverted, UnknownDataset
from .models import DatasetVersion, KeyDelivery, License, SkippedDelivery
from .storage import ContentStore
from .storage import cid as cids
from .transactions import ERROR_HINTS, Transactor

if TYPE_CHECKING:
    from .index import EventIndex

_STATUS = {1: "requested", 2: "granted", 3: "rejected", 4: "revoked", 5: "superseded"}
ACCESS_FETCH = 0
ZERO32 = b"\0" * 32
# DataUseLicensing's MIN_PRIORITY_WINDOW, MAX_PRIORITY_WINDOW and MAX_PRIORITY_PARENTS: a
# registration checks them before anything is uploaded, so that its second transaction (the
# declaration) cannot be refused after the first (the dataset) went through.
MIN_PRIORITY_WINDOW = 86400
MAX_PRIORITY_WINDOW = 365 * 86400
MAX_PRIORITY_PARENTS = 16


class PriorityWindowOpen(NotAuthorized):
    """A request refused because the dataset is in its priority window: until ``closes_at``
    only owners of its parent datasets (``parents``) may request it."""

    error_name = "DataUseLicensingPriorityWindow"

    def __init__(self, dataset_id: int, closes_at: datetime, parents: list[int]) -> None:
        when = f"{closes_at:%Y-%m-%d %H:%M} UTC"
        named = ", ".join(map(str, parents))
        super().__init__(f"dataset {dataset_id} is in its priority window until {when}: until then only the owners "
                         f"of the datasets it derives from ({named}) may request it",
                         hint=f"ask the owner of a parent dataset, or request after {when}")
        self.dataset_id = dataset_id
        self.closes_at = closes_at
        self.parents = parents
        # As TransactionReverted's, so that `--json` carries the contract's own error too.
        self.error_args = {"datasetId": dataset_id, "closesAt": int(closes_at.timestamp())}


def check_priority_window(duration_seconds: int, derived_from: list[int] | tuple[int, ...]) -> None:
    """What the contract would refuse in a declaration, for a dataset with these parents."""
    if not derived_from:
        raise InvalidInput("a priority window needs parent datasets: only a dataset derived from others has one",
                           hint="register it with its parents (--derived-from ID), or without --priority")
    if len(derived_from) > MAX_PRIORITY_PARENTS:
        raise InvalidInput(f"a dataset with a priority window has at most {MAX_PRIORITY_PARENTS} parents, "
                           f"not {len(derived_from)}", hint="name each parent once, or register without --priority")
    if not MIN_PRIORITY_WINDOW <= duration_seconds <= MAX_PRIORITY_WINDOW:
        raise InvalidInput(f"a priority window of {duration_seconds / 86400:g} days ({duration_seconds} s) is out of "
                           "range: it lasts from 1 day to 365 days", hint="e.g. --priority 90d")


class LicensingClient:
    def __init__(self, *, w3: Web3, address: str, transactor: Transactor, store: ContentStore,
                 consortium: ConsortiumClient, owner_bundle: Callable[[DatasetVersion], KeyBundle],
                 dataset_owner: Callable[[int], str], latest_version: Callable[[int], DatasetVersion],
                 hpke_private_key: Callable[[], X25519PrivateKey],
                 index: Callable[[], EventIndex] | None = None) -> None:
        self._w3 = w3
        self._index = index
        self.contract = bind(w3, DATA_USE_LICENSING, address)
        self._tx = transactor
        self._store = store
        self._consortium = consortium
        self._owner_bundle = owner_bundle
        self._dataset_owner = dataset_owner
        self._latest = latest_version
        self._private_key = hpke_private_key

    # ---- requests and decisions ----

    def request(self, dataset_id: int, purpose: Purpose, *, modifiers: int = 0, term_seconds: int,
                justification: Path | None = None) -> int:
        self._dataset_owner(dataset_id)  # a clear "no such dataset" before any transaction
        self._tx.unlock()  # a wrong password is reported before the justification file is read
        digest = hashlib.sha256(justification.read_bytes()).digest() if justification else ZERO32
        fn = self.contract.functions.request(dataset_id, purpose.number, purpose.disease_bytes, modifiers,
                                             term_seconds, digest)
        try:
            receipt = self._tx.call_function(fn, contract=DATA_USE_LICENSING)
        except TransactionReverted as exc:
            if exc.error_name == PriorityWindowOpen.error_name:
                closes = int(exc.error_args["closesAt"])
                raise PriorityWindowOpen(dataset_id, _utc(closes), self._parents(dataset_id)) from None
            raise
        return self.contract.events.LicenseRequested().process_receipt(receipt, errors=DISCARD)[0]["args"]["licenseId"]

    def grant(self, license_id: int, *, expires_in: int | None = None, purpose: Purpose | None = None,
              extra_modifiers: int = 0, future_versions: bool = True, batched_access: bool = False) -> License:
        """Grant a request: the current version's key is unwrapped here and wrapped again to the
        licensee's registered public key, stored, and its location recorded with the grant.
        `batched_access`: the licensee may record its uses in Merkle batches through the
        ProvenanceAnchor (`fc.anchor.record_access_batch`) instead of one transaction each.

        Who may grant (the dataset's owner or a delegate it named, never the requester) is
        checked first, so a refusal says that rather than something about keys."""
        req = self.get(license_id)
        if req.status != "requested":
            raise InvalidInput(f"license {license_id} is {req.status}, not a pending request",
                               hint="only pending requests can be granted")
        me = self._tx.address
        owner = self._dataset_owner(req.dataset_id)
        if req.requester == me:
            raise NotAuthorized(f"license {license_id} is your own request for dataset {req.dataset_id}: "
                                "a request cannot be granted by its requester",
                                hint="the dataset's owner or a delegate it named grants it")
        term = req.term_seconds if expires_in is None else expires_in
        if term > req.term_seconds:
            raise InvalidInput(f"the expiry asked for ({term} s) is longer than the term requested ({req.term_seconds} s)",
                               hint="a grant may shorten the requested term, never lengthen it")
        self._tx.unlock()
        granted = purpose or Purpose(req.purpose, req.disease)
        mask = modifier_mask(req.modifiers) | extra_modifiers
        terms = (self._expiry(term), granted.number, granted.disease_bytes, mask, future_versions, batched_access)
        # The contract's own answer, before a key is unwrapped or anything stored: a delegate is
        # known only to the contract, and it has the last word on the terms too.
        self._preflight(self.contract.functions.grant(license_id, terms, ZERO32), "grant",
                        license_id=license_id, dataset_id=req.dataset_id, owner=owner)
        current = self._latest(req.dataset_id)
        try:
            bundle = self._owner_bundle(current)
        except NotAuthorized:
            if owner == me:
                raise
            raise NotAuthorized(f"you may grant license {license_id} as a delegate, but the owner of dataset "
                                f"{req.dataset_id} has not shared the key of version {current.version} with you",
                                hint="ask the owner to share the version's key with you, or to grant it") from None
        digest = self._wrap_for(req.requester, current, bundle)
        self._tx.call_function(self.contract.functions.grant(license_id, terms, digest), contract=DATA_USE_LICENSING)
        return self.get(license_id)

    def _preflight(self, fn: ContractFunction, what: str, *, license_id: int, dataset_id: int, owner: str) -> None:
        try:
            # At the pending block: the time the transaction will be checked at (an eth_call at
            # "latest" runs at the latest block's time on some nodes, which lags while idle).
            fn.call({"from": self._tx.address}, block_identifier="pending")
        except ContractLogicError as exc:
            data = revert_bytes(exc)
            name, args = decode_revert(DATA_USE_LICENSING, data) if data else ("Reverted", {"message": exc.message})
            if name == "DataUseLicensingNotOwnerOrDelegate":
                raise NotAuthorized(f"only the owner of dataset {dataset_id} ({owner}) or a delegate it named may "
                                    f"{what} license {license_id}, and {self._tx.address} is neither",
                                    hint="ask the dataset's owner") from None
            if name == "DataUseLicensingNotMember" and args.get("account") == self._tx.address:
                raise NotAuthorized(f"{self._tx.address} is not an active member of the consortium",
                                    hint="only members grant licenses; ask the governors to admit this account") from None
            raise TransactionReverted(name, args, contract=DATA_USE_LICENSING, function=what,
                                      hint=ERROR_HINTS.get(name)) from None

    def reject(self, license_id: int) -> License:
        self._tx.call_function(self.contract.functions.reject(license_id), contract=DATA_USE_LICENSING)
        return self.get(license_id)

    def revoke(self, license_id: int) -> License:
        self._tx.call_function(self.contract.functions.revoke(license_id), contract=DATA_USE_LICENSING)
        return self.get(license_id)

    def renew(self, license_id: int, *, term_seconds: int) -> License:
        fn = self.contract.functions.renew(license_id, self._expiry(term_seconds))
        self._tx.call_function(fn, contract=DATA_USE_LICENSING)
        return self.get(license_id)

    def deliver_keys(self, dataset_id: int, version: DatasetVersion) -> KeyDelivery:
        """After the owner adds `version`: wrap its key for every licensee whose license is valid
        and covers later versions. Revoked and expired licensees get nothing (and no transaction
        is sent for them). Keys already delivered are skipped, so running it again after a
        failure finishes the job. A licensee whose key cannot be wrapped to (a malformed
        registered key) or whose delivery the contract refuses is skipped and reported in
        `skipped` with the reason; everyone else still gets the key."""
        delivered: list[int] = []
        skipped: list[SkippedDelivery] = []
        bundle: KeyBundle | None = None
        # From the event index (synced by `list`): a dataset with thousands of licenses costs no
        # call per license. Should one change meanwhile, the contract refuses its delivery.
        candidates = [lic for lic in self.list(dataset_id=dataset_id)
                      if lic.status == "granted" and lic.valid and lic.future_versions
                      and lic.from_version is not None and version.version > lic.from_version]
        done = (self._index().delivered_versions([lic.id for lic in candidates], version.version)
                if self._index is not None else
                {lic.id for lic in candidates
                 if bytes(self.contract.functions.keyBundle(lic.id, version.version).call()) != ZERO32})
        for lic in candidates:
            if lic.id in done:
                continue
            bundle = bundle or self._owner_bundle(version)  # a failure here concerns every licensee: raised
            try:
                digest = self._wrap_for(lic.requester, version, bundle)
                fn = self.contract.functions.deliverKey(lic.id, version.version, digest)
                self._tx.call_function(fn, contract=DATA_USE_LICENSING)
            except (InvalidInput, NotAuthorized, TransactionReverted) as exc:
                skipped.append(SkippedDelivery(license_id=lic.id, account=lic.requester, reason=exc.message))
                continue
            delivered.append(lic.id)
        return KeyDelivery(dataset_id=dataset_id, version=version.version, delivered=delivered, skipped=skipped)

    def _wrap_for(self, account: str, version: DatasetVersion, bundle: KeyBundle | None = None) -> bytes:
        member = self._consortium.member(account)
        if member.status != "active":
            raise NotAuthorized(f"{account} is not an active member", hint="licenses go to consortium members only")
        public = bytes.fromhex(member.hpke_public_key[2:])
        bundle = bundle or self._owner_bundle(version)
        try:
            wrapped = wrap_key_for(public, bundle)
        except (InvalidInput, ValueError) as exc:
            # X25519 refuses keys of the wrong size and the low-order points (all-zero shared secret).
            detail = exc.message if isinstance(exc, InvalidInput) else str(exc).rstrip(".")
            raise InvalidInput(f"the HPKE public key registered for {account} is not a usable X25519 key ({detail})",
                               hint="that member must register its profile's key again (Consortium.rotateKey)") from None
        return cids.digest_of(cids.parse(self._store.add([wrapped])))

    # ---- consent ----

    def require_consent(self, dataset_id: int, patient: str) -> None:
        fn = self.contract.functions.requireConsent(dataset_id, to_account(patient, what="patient account"))
        self._tx.call_function(fn, contract=DATA_USE_LICENSING)

    def set_consent(self, dataset_id: int, *, given: bool) -> None:
        self._tx.call_function(self.contract.functions.setConsent(dataset_id, given), contract=DATA_USE_LICENSING)

    def consent(self, dataset_id: int) -> tuple[bool, str, bool]:
        required, patient, given = self.contract.functions.consent(dataset_id).call()
        return required, patient, given

    # ---- priority use ----

    def declare_priority_window(self, dataset_id: int, duration_seconds: int) -> datetime:
        """Open the priority window of `dataset_id` (owned by this profile, derived from other
        datasets), for `duration_seconds` (1 to 365 days) from now: until it closes, only owners
        of its parent datasets may request it. Once per dataset. Returns when it closes."""
        parents = self._parents(dataset_id)  # also a clear "no such dataset"
        owner = self._dataset_owner(dataset_id)
        if owner != self._tx.address:
            raise NotAuthorized(f"dataset {dataset_id} is owned by {owner}, not by this profile ({self._tx.address})",
                                hint="only the owner declares a dataset's priority window")
        check_priority_window(duration_seconds, parents)
        declared = self.priority_window(dataset_id)
        if declared is not None:
            raise InvalidInput(f"dataset {dataset_id} already declared its priority window (closing "
                               f"{declared:%Y-%m-%d %H:%M} UTC)",
                               hint="a window is declared once: it is neither extended nor opened again")
        receipt = self._tx.call_function(self.contract.functions.declarePriorityWindow(dataset_id, duration_seconds),
                                         contract=DATA_USE_LICENSING)
        event = self.contract.events.PriorityWindowDeclared().process_receipt(receipt, errors=DISCARD)[0]["args"]
        return _utc(event["closesAt"])

    def priority_window(self, dataset_id: int) -> datetime | None:
        """When the priority window of `dataset_id` closes (it may have closed already); None if
        it never declared one. Open while the chain's time is before it."""
        closes = self.contract.functions.priorityWindow(dataset_id).call()
        return _utc(closes) if closes else None

    def _parents(self, dataset_id: int) -> list[int]:
        self._dataset_owner(dataset_id)
        registry = bind(self._w3, DATASET_REGISTRY, self.contract.functions.registry().call())
        return list(registry.functions.derivedFrom(dataset_id).call())

    # ---- reads ----

    def get(self, license_id: int) -> License:
        if license_id < 1 or license_id > self.contract.functions.licenseCount().call():
            raise UnknownDataset(f"there is no license or request {license_id}",
                                 hint="list them with `fullchain license list`")
        raw = self.contract.functions.license(license_id).call()
        (requester, purpose, status, future, batched, from_version, dataset_id, term, requested_at, expires_at,
         modifiers, disease, justification) = raw
        p = Purpose.from_chain(purpose, disease)
        label = _STATUS[status]
        valid = False
        if label == "granted":
            valid = self.contract.functions.isValid(license_id).call()
            if expires_at < self._now():
                label, valid = "expired", False
        return License(
            id=license_id, dataset_id=dataset_id, requester=requester, status=label, valid=valid,  # type: ignore[arg-type]
            purpose=p.code, purpose_label=p.label(), disease=p.disease, modifiers=modifier_codes(modifiers),
            term_seconds=term, requested_at=_utc(requested_at), expires_at=_utc(expires_at) if expires_at else None,
            from_version=from_version if status in (2, 4, 5) else None, future_versions=future,
            batched_access=batched, justification_hash="0x" + bytes(justification).hex())

    def list(self, *, limit: int | None = None, offset: int = 0, dataset_id: int | None = None,
             status: str | None = None, licensee: str | None = None, owner: str | None = None) -> list[License]:
        """A page of licenses and requests in id order, from the event index (no call per
        license). `owner` is the dataset's owner (incoming requests), `licensee` the requester."""
        if self._index is None:
            return [lic for lic in self.all() if (dataset_id is None or lic.dataset_id == dataset_id)
                    and (status is None or lic.status == status)
                    and (licensee is None or lic.requester == to_account(licensee))
                    and (owner is None or self._dataset_owner(lic.dataset_id) == to_account(owner))][offset:][:limit]
        return self._index().licenses(limit=limit, offset=offset, dataset_id=dataset_id, status=status,
                                      licensee=licensee, owner=owner)

    def count(self, *, dataset_id: int | None = None, status: str | None = None, licensee: str | None = None,
              owner: str | None = None) -> int:
        if self._index is None:
            return len(self.list(dataset_id=dataset_id, status=status, licensee=licensee, owner=owner))
        return self._index().count_licenses(dataset_id=dataset_id, status=status, licensee=licensee, owner=owner)

    def all(self) -> list[License]:
        """Every license, each read from the contract (one call each: prefer `list`)."""
        return [self.get(i) for i in range(1, self.contract.functions.licenseCount().call() + 1)]

    def mine(self) -> list[License]:
        return self.list(licensee=self._tx.address)

    def incoming(self) -> list[License]:
        return self.list(owner=self._tx.address)

    def for_dataset(self, dataset_id: int) -> list[License]:
        """The licenses of a dataset, each read from the contract (the index finds which)."""
        return [self.get(lic.id) for lic in self.list(dataset_id=dataset_id)]

    def is_authorized(self, dataset_id: int, purpose: Purpose, account: str | None = None) -> bool:
        who = to_account(account) if account else self._tx.address
        return self.contract.functions.isAuthorized(who, dataset_id, purpose.number, purpose.disease_bytes).call()

    # ---- a licensee's read ----

    def licensee_bundle(self, version: DatasetVersion, purpose: Purpose | None, *, record: bool = True) -> KeyBundle:
        """Find this profile's license for `version`, check it (purpose, validity, consent),
        record the access on chain (unless `record` is false: verifying a file reads nothing
        new), and unwrap the delivered key. Each refusal says why."""
        # The index says which licenses are ours; each is then read from the contract itself.
        mine = [self.get(lic.id) for lic in self.list(licensee=self._tx.address, dataset_id=version.dataset_id)
                if lic.status != "requested"]
        if not mine:
            raise NotAuthorized(f"{self._tx.address} holds no license for dataset {version.dataset_id}",
                                hint=f"request one: `fullchain license request {version.dataset_id} --purpose DUO:... --term 90d`")
        granted = [lic for lic in mine if lic.status == "granted"]
        if purpose is not None:
            covering = [lic for lic in granted if self._covers(lic, purpose, version.dataset_id)]
            if granted and not covering:
                held = ", ".join(f"license {lic.id} for {lic.purpose_label}" for lic in granted)
                raise NotAuthorized(f"no license of yours covers {purpose.label()} on dataset {version.dataset_id} "
                                    f"({held})", hint="request a license for this purpose")
            granted = covering
        if not granted:
            latest = max(mine, key=lambda lic: lic.id)
            if latest.status == "revoked":
                raise NotAuthorized(f"license {latest.id} for dataset {version.dataset_id} was revoked by the owner",
                                    hint="request a new license")
            if latest.status == "expired":
                raise NotAuthorized(f"license {latest.id} for dataset {version.dataset_id} expired at "
                                    f"{latest.expires_at:%Y-%m-%d %H:%M} UTC", hint="ask the owner to renew it")
            raise NotAuthorized(f"license {latest.id} for dataset {version.dataset_id} was {latest.status}",
                                hint="request a new license")
        required, _, given = self.consent(version.dataset_id)
        if required and not given:
            raise NotAuthorized(f"the patient withdrew consent for dataset {version.dataset_id}",
                                hint="no license is usable until consent is given again")
        lic = max(granted, key=lambda item: item.id)
        if not lic.valid:
            raise NotAuthorized(f"license {lic.id} is not valid now", hint="ask the owner")
        digest = bytes(self.contract.functions.keyBundle(lic.id, version.version).call())
        if digest == ZERO32:
            raise NotAuthorized(f"license {lic.id} does not cover dataset {version.dataset_id} version {version.version}",
                                hint=f"it covers version {lic.from_version}"
                                     + (" and later ones, once the owner delivers their keys" if lic.future_versions else ""))
        if record:
            self._tx.call_function(self.contract.functions.recordAccess(lic.id, version.version, ACCESS_FETCH),
                                   contract=DATA_USE_LICENSING)
        wrapped = b"".join(self._store.cat(cids.to_str(cids.make_cid(cids.RAW, digest))))
        return unwrap_key(self._private_key(), wrapped, commitment=bytes.fromhex(version.commitment[2:]))

    def _covers(self, lic: License, purpose: Purpose, dataset_id: int) -> bool:
        return self.is_authorized(dataset_id, purpose) and _duo_covers(Purpose(lic.purpose, lic.disease), purpose)

    def _chain_times(self) -> tuple[int, int]:
        """The latest block's timestamp and the one the node would give the next block."""
        latest = int(self._w3.eth.get_block("latest")["timestamp"])
        try:
            pending = int(self._w3.eth.get_block("pending")["timestamp"])
        except (Web3RPCError, BlockNotFound, ValueError):  # a node without a pending block
            pending = latest
        return latest, max(latest, pending)

    def _expiry(self, term: int) -> int:
        """An expiry `term` seconds from now in chain time, never the wall clock: the contract
        checks it against the timestamp of the block that includes the call, and the gas
        estimate that precedes every transaction runs (on anvil, among others) at the latest
        block's, which lags the wall clock while the chain is idle. Counting from the latest
        block fits both, unless the chain has been idle for a good part of the term (a short
        term): then the latest block says nothing about the next, and the pending block's time
        is the better guess."""
        latest, pending = self._chain_times()
        return latest + term if pending - latest < term // 2 else pending + term

    def _now(self) -> int:
        # Whether a license has expired, as the next block will see it.
        return self._chain_times()[1]

    def chain_time(self) -> datetime:
        """The time the next block will be checked at (expiry, priority windows): the chain's
        clock, not this machine's."""
        return _utc(self._now())


def _duo_covers(granted: Purpose, wanted: Purpose) -> bool:
    """The contract's DUO matching, so a refusal can name the license that does not fit."""
    g, w = granted.number, wanted.number
    if g == 4:
        return True
    if g == 42:
        return w != 4
    if g == 6:
        return w in (6, 7)
    if g == 7:
        return w == 7 and granted.disease == wanted.disease
    return g == w


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)
