"""Reading a profile's chain from its event index, without opening the chain library.

    view = fullchain.view.open_view("hospital")      # None: the index is behind, use connect()
    view = view or fullchain.connect("hospital").view()
    for entry in view.datasets(limit=50): ...

`open_view` answers only when it can prove the index already holds every block up to the
chain's head (the head's hash, read with a cheap probe, is the one the index stored), so what a
view shows is exactly what a synced index would show. It never imports web3, eth-account or
py-evm: a list or a member table then costs what SQLite costs, not the seconds those take to
load. Titles of encrypted datasets need the profile's HPKE key; when the password is known
without asking (a string or $FULLCHAIN_PASSWORD) its scrypt starts at once in a thread, which
releases the GIL, so unlocking overlaps the rest of the work.
"""
from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .agent import AgentKey, find_agent, open_bundle
from .errors import FullchainError
from .home import PASSWORD_ENV, fullchain_home
from .models import ProfileConfig
from .profiles import load_profile, local_names, profile_dir, resolve_name
from .storage import ContentStore, open_store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from .index import DatasetEntry, EventIndex
    from .models import DatasetVersion

PasswordSource = str | Callable[[], str] | None


class View:
    """One profile's read-only view of its chain: the event index, the content store for
    metadata documents, and (only if a title needs it) the profile's HPKE key."""

    def __init__(self, *, home: Path, profile: ProfileConfig, index: EventIndex, contracts: dict[str, str],
                 store: Callable[[], ContentStore], hpke_key: Callable[[], X25519PrivateKey | AgentKey]) -> None:
        self.home = home
        self.profile = profile
        self.index = index
        self.contracts = contracts
        self._store = store
        self._hpke_key = hpke_key

    @property
    def address(self) -> str:
        return self.profile.address

    @property
    def consortium_address(self) -> str:
        return self.contracts["Consortium"]  # fullchain.contracts.CONSORTIUM, whose module loads web3

    def local_names(self) -> dict[str, str]:
        """Address -> profile name for the profiles on this machine (for human-readable output)."""
        return local_names(self.home)

    def datasets(self, *, titles: bool = True, **filters: Any) -> list[DatasetEntry]:
        """A page of datasets (see EventIndex.datasets), with the titles this profile can read."""
        entries = self.index.datasets(**filters)
        return with_titles(entries, self.index, self._store, self.address, self._hpke_key) if titles else entries

    def count_datasets(self, **filters: Any) -> int:
        return self.index.count_datasets(**filters)

    def history(self, dataset_id: int) -> list[DatasetVersion]:
        return history_of(self.index, dataset_id)


def history_of(index: EventIndex, dataset_id: int) -> list[DatasetVersion]:
    """Every version of a dataset, in order; UnknownDataset if there is none."""
    from .errors import UnknownDataset

    versions = index.versions(dataset_id)
    if not versions:
        raise UnknownDataset(f"there is no dataset {dataset_id}", hint="list them with `fullchain dataset list`")
    return versions


def with_titles(entries: list[DatasetEntry], index: EventIndex, store: Callable[[], ContentStore], reader: str,
                hpke_key: Callable[[], X25519PrivateKey | AgentKey]) -> list[DatasetEntry]:
    """`entries` with the title of each encrypted latest version `reader` can open: its own, or
    one it holds a valid license key for (found in the index: no chain call per dataset).
    Public titles are already in the index."""
    return [_with_title(e, index, store, reader, hpke_key) for e in entries]


def _with_title(entry: DatasetEntry, index: EventIndex, store: Callable[[], ContentStore], reader: str,
                hpke_key: Callable[[], X25519PrivateKey | AgentKey]) -> DatasetEntry:
    from .crypto import decrypt
    from .metadata import DatasetMetadata
    from .storage import cid as cids

    v = entry.latest
    if entry.info.title is not None or v is None or v.erased or v.tier == "public":
        return entry
    digest = index.readable_bundle(v.dataset_id, v.version, reader)
    if digest is None:
        return entry
    try:
        wrapped = b"".join(store().cat(cids.to_str(cids.make_cid(cids.RAW, digest))))
        bundle = open_bundle(hpke_key(), wrapped, commitment=bytes.fromhex(v.commitment[2:]))
        out = io.BytesIO()
        decrypt([b"".join(store().cat(v.metadata_cid))], bundle.data_key, out)
        meta = DatasetMetadata.from_bytes(out.getvalue())
    except (FullchainError, ValueError):  # one unreadable document must not break a list
        return entry
    return entry.model_copy(update={"info": entry.info.model_copy(update={"title": meta.title})})


def open_view(profile: str | None = None, *, home: str | os.PathLike[str] | None = None,
              password: PasswordSource = None, storage: str | None = None,
              prefetch_keys: bool = False) -> View | None:
    """A view of `profile`'s chain if its event index is provably up to date, else None (then
    `fullchain.connect(...).view()` syncs the index first). Errors (no such profile...) are
    left to that full path, which reports them. With `prefetch_keys` (a caller about to show
    encrypted titles) and a password known without asking, unlocking starts at once."""
    from .backends.head import probe_head
    from .deployments import load_deployment

    try:
        root = fullchain_home(home)
        config = load_profile(root, resolve_name(profile))
    except (FullchainError, OSError, ValueError):
        return None
    hpke_key = _unlocker(profile_dir(root, config.name), password, config.name, start=prefetch_keys,
                         agent=lambda: find_agent(root, config.name, _public_key(config.hpke_public_key)))
    from .index import EventIndex, index_path  # after the unlock started: the import overlaps it

    head = probe_head(config.chain, root)
    if head is None:
        return None
    chain_id = head.chain_id if head.chain_id is not None else _recorded_chain_id(root, head.genesis_hash)
    if chain_id is None:
        return None
    try:
        deployment = load_deployment(root, chain_id, head.genesis_hash)
    except FullchainError:
        return None
    contracts = {**(deployment.contracts if deployment else {}), **config.contracts}
    path = index_path(root, chain_id, head.genesis_hash)
    if not contracts or not path.exists():
        return None
    index = EventIndex(path, contracts=contracts)
    depth = 0 if config.chain == "embedded" else max(0, config.confirmations - 1)
    target = head.number - depth
    if target < 0 or not index.holds_exactly(target, head.block_hash(target), contracts):
        index.close()
        return None
    spec = storage or config.storage
    stores: list[ContentStore] = []

    def store() -> ContentStore:
        if not stores:
            stores.append(open_store(spec, root))
        return stores[0]

    return View(home=root, profile=config, index=index, contracts=contracts, store=store, hpke_key=hpke_key)


def _recorded_chain_id(home: Path, genesis_hash: str) -> int | None:
    """The chain id under which this genesis was recorded (deployments are named by both)."""
    from .home import deployments_dir

    found = {p.name.split("-", 1)[0] for p in deployments_dir(home).glob(f"*-{genesis_hash[2:18]}.json")}
    if len(found) != 1:
        return None
    value = found.pop()
    return int(value) if value.isdigit() else None


def _public_key(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text.removeprefix("0x")) or None
    except ValueError:
        return None


def _unlocker(directory: Path, password: PasswordSource, profile: str, *, start: bool,
              agent: Callable[[], AgentKey | None] = lambda: None) -> Callable[[], X25519PrivateKey | AgentKey]:
    """The HPKE key on demand: the profile's running key agent (fullchain.agent) if there is
    one, else the key itself, unlocked. With `start`, that is decided now and a password known
    without asking starts its scrypt at once, in a daemon thread (a command that ends up needing
    no key does not wait for it)."""
    from .keys import resolve_password, unlock_identity

    known = password if isinstance(password, str) else (os.environ.get(PASSWORD_ENV) if password is None else None)
    result: dict[str, Any] = {}
    thread: threading.Thread | None = None
    if start and (running := agent()) is not None:
        return lambda: running

    def unlock(secret: str) -> None:
        try:
            result["key"] = unlock_identity(directory, secret, profile=profile).hpke
        except BaseException as exc:  # handed to the caller that asks for the key
            result["error"] = exc

    if start and known is not None:
        thread = threading.Thread(target=unlock, args=(known,), name="fullchain-unlock", daemon=True)
        thread.start()

    def key() -> X25519PrivateKey | AgentKey:
        if thread is not None:
            thread.join()
        elif not result:
            if (running := agent()) is not None:
                result["key"] = running
                return running
            unlock(resolve_password(password))
        if "error" in result:
            raise result["error"]
        return result["key"]

    return key
