"""The key agent: one unlock serves reading commands without the password; the key stays in the
agent's memory, reachable only through a private socket, and is gone when the agent ends."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import fullchain
from fullchain import agent
from fullchain.errors import ConfigError, WrongPassword
from fullchain.metadata import build_metadata
from fullchain.models import Role
from fullchain.view import open_view

from .conftest import run_cli

PW = "agent-tests"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("agent-world")
    home = root / "home"
    fullchain.init("hospital", home=home, password=PW)
    fullchain.init("pharma", home=home, password=PW)
    hospital = fullchain.connect("hospital", home=home, password=PW)
    pharma = fullchain.connect("pharma", home=home, password=PW)
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR,
                                       bytes.fromhex(hospital.profile.hpke_public_key[2:]))], threshold=1)
    data = root / "trial.bin"
    data.write_bytes(os.urandom(64))
    hospital.datasets.register(data, build_metadata(title="sealed trial", standard="sdtm", tier="restricted"))
    hospital.read_index()
    yield {"home": home, "hospital": hospital, "pharma": pharma}
    for name in ("hospital", "pharma"):
        agent.stop(home, name)


def titles(home: Path, profile: str) -> list[str | None]:
    view = open_view(profile, home=home, password=None, prefetch_keys=True)
    assert view is not None
    return [e.info.title for e in view.datasets()]


def test_without_password_or_agent_an_encrypted_title_stays_hidden(world: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FULLCHAIN_PASSWORD", raising=False)
    agent.stop(world["home"], "hospital")
    assert titles(world["home"], "hospital") == [None]


def test_the_agent_opens_titles_without_the_password_and_stops(world: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FULLCHAIN_PASSWORD", raising=False)
    home = world["home"]
    started = agent.start_agent("hospital", home=home, password=PW, ttl=300)
    assert started.public_key == world["hospital"].profile.hpke_public_key[2:]
    assert time.time() < started.expires_at <= time.time() + 300
    assert titles(home, "hospital") == ["sealed trial"]
    # Private: a 0700 directory of ours, a 0600 socket; nothing else of the key is on disk.
    assert stat.S_IMODE(started.socket.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(started.socket.stat().st_mode) == 0o600
    assert agent.stop(home, "hospital") is True
    assert agent.status(home, "hospital") is None
    assert not started.socket.exists()
    assert titles(home, "hospital") == [None]


def test_a_wrong_password_starts_no_agent(world: dict[str, Any]) -> None:
    with pytest.raises(WrongPassword):
        agent.start_agent("pharma", home=world["home"], password="not it", ttl=60)
    assert agent.status(world["home"], "pharma") is None


def test_an_agent_holding_another_key_is_not_used(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # pharma's key served under hospital's name (e.g. a profile re-created since): hospital's
    # reads must not go to it, and its public key is what tells them apart.
    monkeypatch.delenv("FULLCHAIN_PASSWORD", raising=False)
    home = world["home"]
    pharma_key = world["pharma"]._identity().hpke.private_bytes_raw()
    agent.start(home, "hospital", pharma_key, ttl=60)
    try:
        assert agent.find_agent(home, "hospital", bytes.fromhex(world["hospital"].profile.hpke_public_key[2:])) is None
        assert titles(home, "hospital") == [None]
    finally:
        agent.stop(home, "hospital")


def test_the_agent_ends_when_its_time_is_up(world: dict[str, Any]) -> None:
    home = world["home"]
    started = agent.start_agent("pharma", home=home, password=PW, ttl=1)
    deadline = time.monotonic() + 30
    while agent.status(home, "pharma") is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert agent.status(home, "pharma") is None
    assert not started.socket.exists()


def test_a_directory_others_can_enter_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 request: pytest.FixtureRequest) -> None:
    shared = Path(tempfile.mkdtemp(prefix="fcrt", dir="/tmp"))  # short: a deep one is not used at all
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    (shared / f"fullchain-agent-{os.getuid()}").mkdir(mode=0o777)
    os.chmod(shared / f"fullchain-agent-{os.getuid()}", 0o777)
    with pytest.raises(ConfigError, match="not private"):
        agent.socket_path(tmp_path, "hospital")
    assert agent.find_agent(tmp_path, "hospital", None) is None
    with pytest.raises(ConfigError, match="not private"):
        agent.start(tmp_path, "hospital", os.urandom(32), ttl=5)


def test_cli_start_list_stop(world: dict[str, Any]) -> None:
    env: dict[str, str | None] = {"FULLCHAIN_HOME": str(world["home"]), "FULLCHAIN_PASSWORD": None}
    pw = world["home"].parent / "pw"
    pw.write_text(PW)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("-p", "hospital", *args, env=env, input="")

    assert "sealed trial" not in run("dataset", "list").stdout
    started = run("agent", "start", "--password-file", str(pw), "--ttl", "5m")
    assert started.returncode == 0, started.stderr
    assert "running" in started.stdout and "UTC" in started.stdout
    assert "sealed trial" in run("dataset", "list").stdout
    assert run("agent", "status").returncode == 0
    assert run("agent", "stop").stdout.strip() == "agent for profile 'hospital' stopped"
    gone = run("agent", "status")
    assert gone.returncode == 1 and "no agent" in gone.stdout
    assert "sealed trial" not in run("dataset", "list").stdout


def test_a_deep_temporary_directory_still_gives_a_usable_socket(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    path = agent.socket_path(tmp_path, "hospital")
    assert len(str(path)) < 104
    started = agent.start(tmp_path, "hospital", os.urandom(32), ttl=30)
    try:
        assert started.socket == path and agent.status(tmp_path, "hospital") is not None
    finally:
        agent.stop(tmp_path, "hospital")
