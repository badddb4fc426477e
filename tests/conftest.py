"""Shared fixtures: an isolated FULLCHAIN_HOME per test, a real anvil node per session, and
chain "backends" that run the same contract tests on the embedded chain and on anvil."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from fullchain.backends.embedded import open_embedded
from fullchain.backends.rpc import open_rpc
from fullchain.transactions import Transactor
from scripts.devnodes import ANVIL_MNEMONIC, Anvil, free_port  # noqa: F401 (re-exported to tests)

from .ipfs_daemon import start_ipfs

ROOT = Path(__file__).resolve().parent.parent

# Profiles made by the tests get a light scrypt (N=2^12): the suite creates and unlocks
# hundreds, at ~1 s each with the real work factor. tests/test_keys.py checks the default.
os.environ.setdefault("FULLCHAIN_INSECURE_LIGHT_KDF", "1")


AnvilNode = Anvil


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    node = AnvilNode()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def ipfs_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The RPC API URL of a real js-ipfs daemon (offline, loopback), started once per session."""
    url, stop = start_ipfs(tmp_path_factory.mktemp("ipfs"))
    yield url
    stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("FULLCHAIN_HOME", str(path))
    for var in ("FULLCHAIN_PASSWORD", "FULLCHAIN_PROFILE", "FULLCHAIN_LOCK_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    return path


@dataclass
class Chain:
    """A chain under test and a way to make funded accounts on it."""

    kind: str
    w3: Web3
    funder: LocalAccount

    def __post_init__(self) -> None:
        self._funding = Transactor(self.w3, lambda: self.funder, self.funder.address)

    def advance_time(self, seconds: int) -> None:
        """Let at least `seconds` pass on chain before the next block."""
        if self.kind == "anvil":
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.w3.provider.make_request("evm_mine", [])
        else:  # the embedded chain stamps each block at least one second after its parent
            for _ in range(seconds + 1):
                self._funding.transfer(self.funder.address, 0)

    def account(self, ether: int = 10) -> tuple[LocalAccount, Transactor]:
        """A fresh funded account and its transactor: tests never share nonces."""
        acct = Account.from_key(secrets.token_bytes(32))
        self._funding.transfer(acct.address, ether * 10**18)
        return acct, Transactor(self.w3, lambda: acct, acct.address)


@pytest.fixture(scope="session")
def embedded_chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    w3, keys = open_embedded(tmp_path_factory.mktemp("embedded"))
    return Chain("embedded", w3, Account.from_key(keys[0]))


@pytest.fixture(scope="session")
def anvil_chain(anvil: AnvilNode) -> Chain:
    Account.enable_unaudited_hdwallet_features()
    return Chain("anvil", open_rpc(anvil.url), Account.from_mnemonic(ANVIL_MNEMONIC))


@pytest.fixture(params=["embedded", "anvil"])
def chain(request: pytest.FixtureRequest) -> Chain:
    """Every test using this runs twice: on the embedded chain and on a real anvil node."""
    return request.getfixturevalue(f"{request.param}_chain")


def fullchain_cli() -> list[str]:
    """The installed `fullchain` command next to this interpreter."""
    exe = Path(sys.executable).with_name("fullchain")
    found = str(exe) if exe.exists() else shutil.which("fullchain")
    if not found:
        raise RuntimeError("the `fullchain` command is not installed: pip install -e .")
    return [found]


# `run_cli` runs the command in this process (click's isolation: its own stdin/stdout/stderr and
# environment), as `fullchain.cli.main.main` does for the installed command: a subprocess would
# pay ~1 s of imports per command, and the CLI tests run several hundred commands. Tests about
# processes themselves (kills, concurrent writers, start-up imports) run `fullchain_cli()` in a
# subprocess; FULLCHAIN_TEST_CLI=subprocess runs every command that way.
_SUBPROCESS_CLI = os.environ.get("FULLCHAIN_TEST_CLI") == "subprocess"


def run_cli(*args: str, env: dict[str, str | None] | None = None, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`fullchain ARGS`; `env` overrides the environment (None: unset)."""
    if _SUBPROCESS_CLI:
        full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
        return subprocess.run([*fullchain_cli(), *args], capture_output=True, text=True, env=full_env,
                              timeout=timeout, input=input)
    from click.testing import CliRunner

    from fullchain.cli.main import main

    runner = CliRunner()
    code = 0
    with runner.isolation(input=input, env=env) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return subprocess.CompletedProcess(["fullchain", *args], code, stdout, stderr)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, str]]:
    """`fullchain demo` run once per worker and password (it takes ~25 s); tests get a copy."""
    made: dict[str, tuple[Path, str]] = {}

    def make(password: str) -> tuple[Path, str]:
        if password not in made:
            home = tmp_path_factory.mktemp("demo-template") / "home"
            out = run_cli("demo", env={"FULLCHAIN_HOME": str(home), "FULLCHAIN_PASSWORD": password})
            assert out.returncode == 0, out.stderr
            made[password] = (home, out.stdout)
        return made[password]

    return make


DEMO_PASSWORD = "correct horse battery staple"  # one password for every demo-based module: one demo per worker


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory, demo_template: Callable[[str], tuple[Path, str]]) -> Path:
    """A module's own copy of the finished demo (profiles protected by DEMO_PASSWORD)."""
    template, _ = demo_template(DEMO_PASSWORD)
    home = tmp_path_factory.mktemp("demo") / "home"
    shutil.copytree(template, home, symlinks=True)
    return home


@pytest.fixture
def demo_copy(home: Path, demo_template: Callable[[str], tuple[Path, str]]) -> Callable[[str], str]:
    """Put a finished demo's state (profiles, chain, store, index) in this test's home; returns
    the demo's output. Nothing in a home names its own path, so a copy is the same world."""
    def copy(password: str) -> str:
        template, stdout = demo_template(password)
        shutil.copytree(template, home, symlinks=True)
        return stdout

    return copy
