"""A registration killed between upload and anchoring is finished by running the same command
again: no second upload, exactly one registered version. Uses a real anvil node whose mining is
paused, so the CLI is deterministically stuck after sending its transaction when it is killed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from eth_account import Account

from fullchain.backends.rpc import open_rpc
from fullchain.contracts import DATASET_REGISTRY, bind
from fullchain.transactions import Transactor

from .conftest import ANVIL_MNEMONIC, AnvilNode, fullchain_cli, run_cli

ENV = {"FULLCHAIN_PASSWORD": "resume-tests"}


@pytest.fixture
def node() -> AnvilNode:
    n = AnvilNode()
    yield n
    n.stop()


@pytest.mark.parametrize("fate", ["dropped", "mined"])
def test_kill_between_upload_and_anchor_then_rerun(home: Path, node: AnvilNode, tmp_path: Path, fate: str) -> None:
    w3 = open_rpc(node.url)
    out = run_cli("init", "--profile", "hospital", "--chain", node.url, "--json", env=ENV)
    assert out.returncode == 0, out.stderr
    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC)
    Transactor(w3, lambda: funder, funder.address).transfer(json.loads(out.stdout)["address"], 10**18)
    deployed = run_cli("-p", "hospital", "chain", "deploy", "--founder", "hospital:hospital,governor", "--json", env=ENV)
    assert deployed.returncode == 0, deployed.stderr
    registry = bind(w3, DATASET_REGISTRY, json.loads(deployed.stdout)["contracts"][DATASET_REGISTRY])

    data = tmp_path / "trial.bin"
    data.write_bytes(os.urandom(3_000_000))
    command = ["-p", "hospital", "dataset", "register", str(data), "--title", "Trial", "--json"]
    w3.provider.make_request("evm_setAutomine", [False])
    proc = subprocess.Popen([*fullchain_cli(), *command], env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while int(w3.provider.make_request("txpool_status", [])["result"]["pending"], 16) == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the CLI never sent its transaction"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # uploaded and sent, not yet anchored
    proc.wait()
    if fate == "dropped":
        w3.provider.make_request("anvil_dropAllTransactions", [])
    else:
        w3.provider.make_request("evm_mine", [])
    w3.provider.make_request("evm_setAutomine", [True])

    blocks_before = len(list((home / "blocks").rglob("*")))
    again = run_cli(*command, env=ENV)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["resumed"] is True and result["uploaded"] is False
    assert len(list((home / "blocks").rglob("*"))) == blocks_before  # nothing stored twice
    assert registry.functions.datasetCount().call() == 1
    assert registry.functions.dataset(1).call()[2] == 1  # exactly one version
    fetched = tmp_path / "back.bin"
    assert run_cli("-p", "hospital", "dataset", "fetch", "1", "-o", str(fetched), env=ENV).returncode == 0
    assert fetched.read_bytes() == data.read_bytes()
