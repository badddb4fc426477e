"""The embedded chain: one chain across processes, safe with concurrent writers and kills."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from eth_account import Account
from filelock import FileLock

from fullchain.backends.embedded import open_embedded
from fullchain.transactions import Transactor

from .conftest import fullchain_cli, run_cli

SINK = "0x000000000000000000000000000000000000dEaD"

# A writer process: transfers 1 wei per transaction to SINK, forever or N times.
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from eth_account import Account
    from fullchain.backends.embedded import open_embedded
    from fullchain.transactions import Transactor
    w3, keys = open_embedded(Path(sys.argv[1]))
    acct = Account.from_key(keys[int(sys.argv[2])])
    tx = Transactor(w3, lambda: acct, acct.address)
    n = int(sys.argv[3])
    i = 0
    while n < 0 or i < n:
        tx.transfer("%s", 1)
        i += 1
        print(i, flush=True)
""" % SINK)


def writer(directory: Path, key_index: int, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(key_index), str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_state_survives_the_process(tmp_path: Path) -> None:
    proc = writer(tmp_path, 0, 5)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    w3, _ = open_embedded(tmp_path)
    assert w3.eth.get_balance(SINK) == 5
    assert w3.eth.block_number == 5
    genesis = w3.eth.get_block(0)["hash"]
    proc = writer(tmp_path, 0, 1)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    w3, _ = open_embedded(tmp_path)
    assert w3.eth.get_block(0)["hash"] == genesis  # created once, never again
    assert w3.eth.get_balance(SINK) == 6


def test_concurrent_writers_interleave_without_loss(tmp_path: Path) -> None:
    procs = [writer(tmp_path, i, 15) for i in (1, 2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    w3, _ = open_embedded(tmp_path)
    assert w3.eth.get_balance(SINK) == 30
    assert w3.eth.block_number == 30
    # Every block links to its parent: no block was written twice or lost.
    for n in range(1, 31):
        assert w3.eth.get_block(n)["parentHash"] == w3.eth.get_block(n - 1)["hash"]


def test_same_account_from_two_processes_resyncs_nonces(tmp_path: Path) -> None:
    procs = [writer(tmp_path, 3, 10) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    w3, keys = open_embedded(tmp_path)
    assert w3.eth.get_balance(SINK) == 20
    assert w3.eth.get_transaction_count(Account.from_key(keys[3]).address) == 20


def test_kill_during_writes_leaves_a_working_chain(tmp_path: Path) -> None:
    proc = writer(tmp_path, 0, -1)
    assert proc.stdout is not None
    for _ in range(10):  # let it get going, then kill it mid-stream
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    w3, keys = open_embedded(tmp_path)
    head = w3.eth.block_number
    assert head >= 10
    assert w3.eth.get_balance(SINK) == head  # one transfer per committed block, none half-applied
    acct = Account.from_key(keys[0])
    Transactor(w3, lambda: acct, acct.address).transfer(SINK, 1)
    assert w3.eth.block_number == head + 1
    assert w3.eth.get_balance(SINK) == head + 1


def test_a_held_lock_gives_a_clear_busy_error(tmp_path: Path) -> None:
    w3, _ = open_embedded(tmp_path, lock_timeout=0.5)
    with FileLock(str(tmp_path / "chain.lock")):
        # Another process would hold this lock; filelock is reentrant per process, so use one.
        code = textwrap.dedent(f"""
            from pathlib import Path
            from fullchain.backends.embedded import open_embedded
            from fullchain.errors import ChainBusy
            try:
                open_embedded(Path({str(tmp_path)!r}), lock_timeout=0.5)
            except ChainBusy as e:
                print(e.diagnostics())
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "locked by another process" in out.stdout
    assert "FULLCHAIN_LOCK_TIMEOUT" in out.stdout
    assert w3.eth.block_number == 0  # and the chain still works once the lock is free


def test_cli_reports_busy_chain(home: Path) -> None:
    env = {"FULLCHAIN_PASSWORD": "pw-for-tests"}
    assert run_cli("init", "--profile", "a", env=env).returncode == 0
    with FileLock(str(home / "chain" / "chain.lock")):
        out = run_cli("--profile", "a", "chain", "status", env={**env, "FULLCHAIN_LOCK_TIMEOUT": "0.5"})
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "locked by another process" in out.stderr
    assert "Traceback" not in out.stderr


def test_concurrent_cli_writers_both_land(home: Path) -> None:
    env = {**os.environ, "FULLCHAIN_PASSWORD": "pw-for-tests"}
    demo = run_cli("demo", "--json", env=env)
    assert demo.returncode == 0, demo.stderr
    cmds = [[*fullchain_cli(), "--profile", who, "member", "propose", "threshold", "1", "--json"] for who in ("hospital", "pharma")]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ids = sorted(json.loads(o[0])["proposal_id"] for o in outs)
    assert ids == [3, 4]  # proposals 1 and 2 were the demo's admission and pool split
    listed = run_cli("--profile", "cro", "member", "proposals", "--json", env=env)
    assert [p["id"] for p in json.loads(listed.stdout)] == [1, 2, 3, 4]


def test_malformed_lock_timeout_is_a_config_error(home: Path) -> None:
    env = {"FULLCHAIN_PASSWORD": "pw", "FULLCHAIN_LOCK_TIMEOUT": "soon"}
    out = run_cli("init", "--profile", "a", env=env)
    assert out.returncode == 1
    assert "FULLCHAIN_LOCK_TIMEOUT='soon' is not a number" in out.stderr
