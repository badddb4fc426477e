"""The facade for partner applications: ``fc = fullchain.connect("hospital")``."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from web3 import Web3

from .addresses import to_account
from .backends import ChainConnection, open_chain
from .consortium import DEFAULT_VOTING_PERIOD, ConsortiumClient, Founder, deploy_consortium
from .contracts import (
    BENEFIT_DISTRIBUTOR,
    CONSORTIUM,
    CONTRIBUTION_METER,
    DATA_USE_LICENSING,
    DATASET_REGISTRY,
    SETTLEMENT_TOKEN,
    deploy_contract,
)
from .deployments import chain_identity, load_deployment, save_deployment
from .errors import ConfigError, NotDeployed
from .home import fullchain_home
from .keys import Identity, resolve_password, unlock_identity
from .datasets import DatasetsClient
from .journal import Journal
from .licensing import LicensingClient
from .storage import ContentStore, open_store
from .models import ChainStatus, Deployment, MeterParameters, ProfileConfig
from .profiles import create_profile, load_profile, local_names, profile_dir, resolve_name
from .transactions import Transactor

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from .index import EventIndex
    from .view import View
    from .audit.anchor import AnchorClient
    from .distribution import PoolClient
    from .metering.meter import MeterClient

# What `fullchain init` gives a new account on the embedded chain, from the development funds.
EMBEDDED_FUNDING_WEI = 1_000 * 10**18

PasswordSource = str | Callable[[], str] | None

# BenefitDistributor's starting split, in basis points (governance changes it later); the
# operations share goes to the deployer's account.
DEFAULT_SPLIT_BPS = {"operations": 1_000, "patients": 1_000, "data": 4_000, "algorithm": 2_500, "compute": 1_500}
DEFAULT_CLAIM_WINDOW = 90 * 24 * 3600
# As fullchain.audit.anchor.PROVENANCE_ANCHOR: that package loads the event index, too much for
# every command that opens a profile.
PROVENANCE_ANCHOR = "ProvenanceAnchor"
# anvil's and hardhat's chain id: a development chain, where a settlement token may be minted.
DEV_CHAIN_ID = 31337


class Fullchain:
    """One profile connected to its chain. Keys are decrypted only when something is signed."""

    def __init__(self, *, home: Path, profile: ProfileConfig, connection: ChainConnection,
                 password: PasswordSource = None, storage: str | None = None) -> None:
        self.home = home
        self.profile = profile
        self.storage = storage or profile.storage
        self.connection = connection
        self.w3: Web3 = connection.w3
        self._password = password
        self._keys: Identity | None = None
        self._index: EventIndex | None = None
        self._secret: str | None = None
        self.transactor = Transactor(self.w3, self._load_signer, profile.address,
                                     confirmations=profile.confirmations, receipt_timeout=profile.receipt_timeout)

    @property
    def address(self) -> str:
        return self.profile.address

    def _password_once(self) -> str:
        # Asked at most once per connection, even when both keys are needed.
        if self._secret is None:
            self._secret = resolve_password(self._password)
        return self._secret

    def _identity(self) -> Identity:
        # One password stretch opens both keys (see fullchain.keys).
        if self._keys is None:
            self._keys = unlock_identity(profile_dir(self.home, self.profile.name), self._password_once(),
                                         profile=self.profile.name)
        return self._keys

    def _load_signer(self) -> LocalAccount:
        return self._identity().signer

    def _load_hpke_key(self) -> X25519PrivateKey:
        return self._identity().hpke

    def unlock(self) -> None:
        """Decrypt the keys now (fails early on a wrong password)."""
        self._identity()

    # ---- deployment ----

    def deployment(self) -> Deployment | None:
        chain_id, genesis = chain_identity(self.w3)
        return load_deployment(self.home, chain_id, genesis)

    def contracts(self) -> dict[str, str]:
        """Contract name -> address: the recorded deployment, overridden by the profile's own."""
        deployment = self.deployment()
        return {**(deployment.contracts if deployment else {}), **self.profile.contracts}

    def contract_address(self, name: str) -> str:
        address = self.contracts().get(name)
        if address is None:
            raise NotDeployed(
                f"no {name} contract is recorded for the chain of profile '{self.profile.name}' "
                f"({self.connection.endpoint})",
                hint="deploy with `fullchain chain deploy`, or join an existing deployment with "
                     "`fullchain init --deployment FILE`")
        if not self.w3.eth.get_code(Web3.to_checksum_address(address)):
            raise NotDeployed(f"there is no {name} contract at {address} on {self.connection.endpoint}",
                              hint="the chain was reset or the address is wrong; deploy again with "
                                   "`fullchain chain deploy`")
        return address

    def view(self) -> View:
        """A read-only view over the event index, synced first (see fullchain.view)."""
        from .view import View

        return View(home=self.home, profile=self.profile, index=self.read_index(), contracts=self.contracts(),
                    store=lambda: self.store, hpke_key=self._load_hpke_key)

    def read_index(self) -> EventIndex:
        """The event index of this chain, brought up to date first (cheap when nothing is new).
        Every list, history and search view reads it instead of one call per item."""
        from .index import open_index

        if self._index is None:
            self.contract_address(CONSORTIUM)  # no deployment here: say so, not an empty list
            self._index = open_index(self)
        self._index.sync()
        return self._index

    @cached_property
    def consortium(self) -> ConsortiumClient:
        return ConsortiumClient(self.w3, self.contract_address(CONSORTIUM), self.transactor)

    @cached_property
    def store(self) -> ContentStore:
        return open_store(self.storage, self.home)

    @cached_property
    def datasets(self) -> DatasetsClient:
        return DatasetsClient(
            w3=self.w3, address=self.contract_address(DATASET_REGISTRY), transactor=self.transactor,
            store=self.store, consortium=self.consortium,
            journal=Journal(self.home / "journal" / self.profile.name),
            hpke_public_key=bytes.fromhex(self.profile.hpke_public_key[2:]), hpke_private_key=self._load_hpke_key,
            licensing=lambda: self.licensing, index=self.read_index)

    @cached_property
    def licensing(self) -> LicensingClient:
        datasets = self.datasets
        return LicensingClient(
            w3=self.w3, address=self.contract_address(DATA_USE_LICENSING), transactor=self.transactor,
            store=self.store, consortium=self.consortium, owner_bundle=datasets.own_bundle,
            dataset_owner=datasets.owner_of, latest_version=datasets.version, hpke_private_key=self._load_hpke_key,
            index=self.read_index)

    @cached_property
    def meter(self) -> MeterClient:
        """The ContributionMeter: submit, attest, dispute, resolve (by proposal), finalize."""
        from .metering.meter import MeterClient

        if CONTRIBUTION_METER not in self.contracts() and CONSORTIUM in self.contracts():
            raise NotDeployed(
                f"the deployment recorded for the chain of profile '{self.profile.name}' has no ContributionMeter "
                "(it predates contribution metering)",
                hint="redeploy with `fullchain chain deploy`, or add the meter to this deployment with "
                     "`fullchain chain deploy --meter-only`")
        return MeterClient(w3=self.w3, address=self.contract_address(CONTRIBUTION_METER), transactor=self.transactor,
                           store=self.store, consortium=self.consortium, index=self.read_index,
                           datasets=lambda: self.datasets)

    @cached_property
    def pool(self) -> PoolClient:
        """The BenefitDistributor: fund epochs' pools, claim shares, show them; split and sweep by proposal."""
        from .distribution import PoolClient

        return PoolClient(w3=self.w3, address=self.contract_address(BENEFIT_DISTRIBUTOR), transactor=self.transactor,
                          consortium=self.consortium, index=self.read_index,
                          settlement_token=self.contracts().get(SETTLEMENT_TOKEN), dev_chain=self._is_dev_chain(),
                          signer=self._load_signer)

    @cached_property
    def anchor(self) -> AnchorClient:
        """The ProvenanceAnchor: anchor batches of records (a licensee's access batches among
        them, `record_access_batch`), read and verify them."""
        from .audit.anchor import AnchorClient

        if PROVENANCE_ANCHOR not in self.contracts() and CONSORTIUM in self.contracts():
            raise NotDeployed(
                f"the deployment recorded for the chain of profile '{self.profile.name}' has no ProvenanceAnchor "
                "(it predates batched records)",
                hint="redeploy with `fullchain chain deploy`, or add it to this deployment with "
                     "`fullchain chain deploy --meter-only`")
        return AnchorClient(self.w3, self.contract_address(PROVENANCE_ANCHOR), self.transactor, store=self.store,
                            records_dir=self.home / "access-batches" / self.profile.name)

    def deploy(self, founders: Sequence[Founder], *, threshold: int,
               voting_period: int = DEFAULT_VOTING_PERIOD, meter: MeterParameters | None = None) -> Deployment:
        """Deploy the contracts, the Consortium with its founders first, and record their
        addresses for every profile on this chain. `meter`: the ContributionMeter's starting
        parameters (default: 30-day epochs, a 7-day dispute window, one attestation). The
        BenefitDistributor paying out the meter's epochs starts with DEFAULT_SPLIT_BPS (the
        operations share to this account) and a 90-day claim window; on a development chain
        (embedded, or chain id 31337) a SettlementToken is deployed too. A ProvenanceAnchor takes
        the Merkle roots of batched records (licensees' access batches among them)."""
        consortium, block = deploy_consortium(self.transactor, self.w3, founders, threshold=threshold,
                                              voting_period=voting_period)
        contracts = {CONSORTIUM: consortium}
        contracts[DATASET_REGISTRY], block = deploy_contract(self.transactor, self.w3, DATASET_REGISTRY, consortium)
        contracts[DATA_USE_LICENSING], block = deploy_contract(self.transactor, self.w3, DATA_USE_LICENSING,
                                                               consortium, contracts[DATASET_REGISTRY])
        contracts[CONTRIBUTION_METER], block = self._deploy_meter(consortium, contracts[DATA_USE_LICENSING], meter)
        block = self._deploy_distribution(contracts) or block
        contracts[PROVENANCE_ANCHOR], block = self._deploy_anchor(contracts)
        return self._record_deployment(contracts, block)

    def deploy_meter(self, meter: MeterParameters | None = None) -> Deployment:
        """Add a ContributionMeter to the recorded deployment (one made before metering existed),
        governed by its Consortium, with the BenefitDistributor that pays out its epochs (and a
        SettlementToken on a development chain, unless there is one); the deployment record is
        updated. A ProvenanceAnchor is added too if the deployment has none."""
        consortium = self.contract_address(CONSORTIUM)
        existing = self.deployment()
        contracts = dict(self.contracts())
        contracts[CONTRIBUTION_METER], block = self._deploy_meter(
            consortium, self.contract_address(DATA_USE_LICENSING), meter)
        self._deploy_distribution(contracts)
        if PROVENANCE_ANCHOR not in contracts:
            contracts[PROVENANCE_ANCHOR], _ = self._deploy_anchor(contracts)
        return self._record_deployment(contracts, existing.block_number if existing else block)

    def _deploy_meter(self, consortium: str, licensing: str, meter: MeterParameters | None) -> tuple[str, int]:
        from .metering.meter import deploy_meter

        p = meter or MeterParameters()
        return deploy_meter(self.transactor, self.w3, consortium, licensing, epoch_length=p.epoch_length,
                            dispute_window=p.dispute_window, attestations=p.attestations)

    def _deploy_anchor(self, contracts: dict[str, str]) -> tuple[str, int]:
        from .audit.anchor import deploy_anchor

        return deploy_anchor(self.transactor, self.w3, contracts[CONSORTIUM], contracts[DATA_USE_LICENSING])

    def _deploy_distribution(self, contracts: dict[str, str]) -> int:
        """Deploy a BenefitDistributor for `contracts`' meter, and a SettlementToken if this is a
        development chain without one, into `contracts`; the last block written to."""
        b = DEFAULT_SPLIT_BPS
        split = (self.address, b["operations"], b["patients"], b["data"], b["algorithm"], b["compute"])
        contracts[BENEFIT_DISTRIBUTOR], block = deploy_contract(
            self.transactor, self.w3, BENEFIT_DISTRIBUTOR, contracts[CONSORTIUM], contracts[CONTRIBUTION_METER],
            split, DEFAULT_CLAIM_WINDOW)
        if SETTLEMENT_TOKEN not in contracts and self._is_dev_chain():
            contracts[SETTLEMENT_TOKEN], block = deploy_contract(self.transactor, self.w3, SETTLEMENT_TOKEN,
                                                                 contracts[CONSORTIUM])
        return block

    def _is_dev_chain(self) -> bool:
        return self.connection.kind == "embedded" or self.w3.eth.chain_id == DEV_CHAIN_ID

    def _record_deployment(self, contracts: dict[str, str], block: int) -> Deployment:
        chain_id, genesis = chain_identity(self.w3)
        deployment = Deployment(chain_id=chain_id, genesis_hash=genesis, contracts=contracts,
                                deployed_at=datetime.now(timezone.utc), deployer=self.address,
                                block_number=block)
        save_deployment(self.home, deployment)
        for cached in ("consortium", "datasets", "licensing", "meter", "pool", "anchor"):
            self.__dict__.pop(cached, None)
        self._index = None  # the index follows the contracts it was opened for
        return deployment

    # ---- status ----

    def status(self) -> ChainStatus:
        chain_id, genesis = chain_identity(self.w3)
        contracts = {name: address for name, address in self.contracts().items()
                     if self.w3.eth.get_code(Web3.to_checksum_address(address))}
        member = threshold = governors = members = None
        if CONSORTIUM in contracts:
            consortium = self.consortium
            me = consortium.member(self.address)
            member = me if me.status != "none" else None
            threshold, governors = consortium.threshold(), consortium.governor_count()
            members = len(self.read_index().members(status="active"))
        return ChainStatus(
            backend=self.connection.kind, endpoint=self.connection.endpoint, chain_id=chain_id,
            block_number=self.w3.eth.block_number, genesis_hash=genesis, contracts=contracts,
            account=self.address, balance_wei=self.w3.eth.get_balance(self.address), member=member,
            threshold=threshold, governors=governors, members=members)

    def local_names(self) -> dict[str, str]:
        """Address -> profile name for the profiles on this machine (for human-readable output)."""
        return local_names(self.home)


def connect(profile: str | None = None, *, home: str | os.PathLike[str] | None = None,
            password: PasswordSource = None, chain: str | None = None, storage: str | None = None) -> Fullchain:
    """Open `profile` (default: $FULLCHAIN_PROFILE or "default") on its chain.

    `chain` ("embedded" or a JSON-RPC URL) and `storage` ("embedded" or an IPFS RPC API URL)
    override the profile's settings for this connection.
    """
    root = fullchain_home(home)
    config = load_profile(root, resolve_name(profile))
    connection = open_chain(chain or config.chain, root)
    return Fullchain(home=root, profile=config, connection=connection, password=password, storage=storage)


def init(profile: str | None = None, *, home: str | os.PathLike[str] | None = None,
         password: PasswordSource = None, chain: str = "embedded", storage: str = "embedded",
         deployment: Deployment | None = None) -> ProfileConfig:
    """Create a profile (keys encrypted under the password). On the embedded chain the new
    account is funded from the development accounts, so it can send transactions at once.
    `deployment` joins contracts deployed elsewhere (as printed by `fullchain chain deploy --json`)."""
    root = fullchain_home(home)
    name = resolve_name(profile)
    secret = resolve_password(password)
    contracts = {n: to_account(a, what=f"{n} address") for n, a in (deployment.contracts if deployment else {}).items()}
    # Fail before creating keys for a chain that does not answer.
    connection = open_chain(chain, root)
    if deployment is not None and deployment.chain_id != connection.w3.eth.chain_id:
        raise ConfigError(f"the deployment is for chain id {deployment.chain_id}, but {chain} is chain id "
                          f"{connection.w3.eth.chain_id}", hint="use the deployment file of this network")
    config = create_profile(root, name, secret, chain=chain, storage=storage, contracts=contracts)
    if connection.kind == "embedded":
        from eth_account import Account

        funder = Account.from_key(connection.dev_keys[0])
        Transactor(connection.w3, lambda: funder, funder.address).transfer(config.address, EMBEDDED_FUNDING_WEI)
    return config
