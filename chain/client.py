"""The facade for partner applications: ``fc = fullchain.connect("hospital")``."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from .addresses import to_account
from .backends import ChainConnection, open_chain
from .consortium import DEFAULT_VOTING_PERIOD, ConsortiumClient, Founder, deploy_consortium
from .deployments import chain_identity, load_deployment, save_deployment
from .errors import NotDeployed, PasswordRequired
from .home import fullchain_home
from .keys import load_signer
from .models import ChainStatus, Deployment, ProfileConfig
from .profiles import create_profile, list_profiles, load_profile, profile_dir, resolve_name
from .transactions import Transactor

PASSWORD_ENV = "FULLCHAIN_PASSWORD"
# What `fullchain init` gives a new account on the embedded chain, from the development funds.
EMBEDDED_FUNDING_WEI = 1_000 * 10**18

PasswordSource = str | Callable[[], str] | None


class Fullchain:
    """One profile connected to its chain. Keys are decrypted only when something is signed."""

    def __init__(self, *, home: Path, profile: ProfileConfig, connection: ChainConnection,
                 password: PasswordSource = None) -> None:
        self.home = home
        self.profile = profile
        self.connection = connection
        self.w3: Web3 = connection.w3
        self._password = password
        self._signer: LocalAccount | None = None
        self.transactor = Transactor(self.w3, self._load_signer, profile.address,
                                     confirmations=profile.confirmations, receipt_timeout=profile.receipt_timeout)

    @property
    def address(self) -> str:
        return self.profile.address

    def _load_signer(self) -> LocalAccount:
        if self._signer is None:
            self._signer = load_signer(profile_dir(self.home, self.profile.name),
                                       resolve_password(self._password), profile=self.profile.name)
        return self._signer

    def unlock(self) -> None:
        """Decrypt the signing key now (fails early on a wrong password)."""
        self._load_signer()

    # ---- deployment ----

    def deployment(self) -> Deployment | None:
        chain_id, genesis = chain_identity(self.w3)
        return load_deployment(self.home, chain_id, genesis)

    def consortium_address(self) -> str:
        if self.profile.consortium:
            return self.profile.consortium
        deployment = self.deployment()
        if deployment is None:
            raise NotDeployed(
                f"no Consortium contract is recorded for the chain of profile '{self.profile.name}' "
                f"({self.connection.endpoint})",
                hint="deploy one with `fullchain chain deploy`, or set the address of an existing one "
                     "with `fullchain init --consortium ADDRESS`")
        return deployment.consortium

    @cached_property
    def consortium(self) -> ConsortiumClient:
        address = self.consortium_address()
        if not self.w3.eth.get_code(Web3.to_checksum_address(address)):
            raise NotDeployed(f"there is no contract at {address} on {self.connection.endpoint}",
                              hint="the chain was reset or the address is wrong; deploy again with "
                                   "`fullchain chain deploy`")
        return ConsortiumClient(self.w3, address, self.transactor)

    def deploy(self, founders: Sequence[Founder], *, threshold: int,
               voting_period: int = DEFAULT_VOTING_PERIOD) -> Deployment:
        """Deploy the Consortium with its founders and record it for every profile on this chain."""
        address, block = deploy_consortium(self.transactor, self.w3, founders, threshold=threshold,
                                           voting_period=voting_period)
        chain_id, genesis = chain_identity(self.w3)
        deployment = Deployment(chain_id=chain_id, genesis_hash=genesis, consortium=address,
                                deployed_at=datetime.now(timezone.utc), deployer=self.address,
                                block_number=block)
        save_deployment(self.home, deployment)
        self.__dict__.pop("consortium", None)
        return deployment

    # ---- status ----

    def status(self) -> ChainStatus:
        chain_id, genesis = chain_identity(self.w3)
        deployment = load_deployment(self.home, chain_id, genesis)
        address = self.profile.consortium or (deployment.consortium if deployment else None)
        member = threshold = governors = members = None
        if address and self.w3.eth.get_code(Web3.to_checksum_address(address)):
            consortium = self.consortium
            me = consortium.member(self.address)
            member = me if me.status != "none" else None
            threshold, governors = consortium.threshold(), consortium.governor_count()
            members = sum(1 for m in consortium.members() if m.status == "active")
        else:
            address = None
        return ChainStatus(
            backend=self.connection.kind, endpoint=self.connection.endpoint, chain_id=chain_id,
            block_number=self.w3.eth.block_number, genesis_hash=genesis, consortium=address,
            account=self.address, balance_wei=self.w3.eth.get_balance(self.address), member=member,
            threshold=threshold, governors=governors, members=members)

    def local_names(self) -> dict[str, str]:
        """Address -> profile name for the profiles on this machine (for human-readable output)."""
        names: dict[str, str] = {}
        for name in list_profiles(self.home):
            try:
                names[load_profile(self.home, name).address] = name
            except Exception:  # a broken neighbour profile must not break this one's output
                continue
        return names


def resolve_password(source: PasswordSource) -> str:
    """The password from `source` (a string or a callable), else $FULLCHAIN_PASSWORD."""
    if callable(source):
        return source()
    if source is not None:
        return source
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    raise PasswordRequired("a password is needed to decrypt the keys and none was given",
                           hint=f"set {PASSWORD_ENV}, pass --password-file, or run in a terminal to be asked")


def connect(profile: str | None = None, *, home: str | os.PathLike[str] | None = None,
            password: PasswordSource = None, chain: str | None = None) -> Fullchain:
    """Open `profile` (default: $FULLCHAIN_PROFILE or "default") on its chain.

    `chain` overrides the profile's chain ("embedded" or a JSON-RPC URL) for this connection.
    """
    root = fullchain_home(home)
    config = load_profile(root, resolve_name(profile))
    connection = open_chain(chain or config.chain, root)
    return Fullchain(home=root, profile=config, connection=connection, password=password)


def init(profile: str | None = None, *, home: str | os.PathLike[str] | None = None,
         password: PasswordSource = None, chain: str = "embedded",
         consortium: str | None = None) -> ProfileConfig:
    """Create a profile (keys encrypted under the password). On the embedded chain the new
    account is funded from the development accounts, so it can send transactions at once."""
    root = fullchain_home(home)
    name = resolve_name(profile)
    secret = resolve_password(password)
    consortium_address = to_account(consortium, what="consortium address") if consortium else None
    # Fail before creating keys for a chain that does not answer.
    connection = open_chain(chain, root)
    config = create_profile(root, name, secret, chain=chain, consortium=consortium_address)
    if connection.kind == "embedded":
        funder = Account.from_key(connection.dev_keys[0])
        Transactor(connection.w3, lambda: funder, funder.address).transfer(config.address, EMBEDDED_FUNDING_WEI)
    return config
