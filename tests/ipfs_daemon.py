"""A real IPFS daemon for tests: js-ipfs from node_modules (``npm ci``), offline, on loopback.

js-ipfs 0.66 on Node 20 needs a preload defining ``Promise.withResolvers``, an empty
``Addresses.Swarm`` (else it hangs), API/Gateway/RPC on 127.0.0.1, no bootstrap peers, no preload
nodes and ``--offline``: it then listens on loopback only and talks to nobody.

    url, stop = start_ipfs(tmp_dir)   # repo in tmp_dir / "repo", log in tmp_dir / "ipfs-daemon.log"
    ...
    stop()

Known js-ipfs 0.66 traps: ``block/rm`` hangs and then blocks every later ``add``; a client that
disconnects from a ``cat`` stalled on a missing block crashes the daemon (give such tests a daemon
of their own). The daemon gets SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG):
start it from the main thread, as pytest fixtures are.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
JSIPFS = ROOT / "node_modules" / ".bin" / "jsipfs"
POLYFILL = ROOT / "scripts" / "ipfs-polyfill.cjs"


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def ipfs_available() -> bool:
    return JSIPFS.exists()


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM when the test process dies, however it dies,
    so a killed test run never leaves a daemon behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_ipfs(tmpdir: Path, *, timeout: float = 90.0) -> tuple[str, Callable[[], None]]:
    """Start a fresh offline js-ipfs daemon with its repo under ``tmpdir``; return its RPC API URL
    and a function that stops it (by pid). RuntimeError if it does not come up in time."""
    if not JSIPFS.exists():
        raise RuntimeError(f"{JSIPFS} is missing: run `npm ci` first")
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    api, gateway, rpc = _free_ports(3)
    config = {
        "Addresses": {
            "Swarm": [],
            "API": f"/ip4/127.0.0.1/tcp/{api}",
            "Gateway": f"/ip4/127.0.0.1/tcp/{gateway}",
            "RPC": f"/ip4/127.0.0.1/tcp/{rpc}",
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
    }
    config_path = tmpdir / "ipfs-config.json"
    config_path.write_text(json.dumps(config))
    node_options = f"{os.environ.get('NODE_OPTIONS', '')} --require \"{POLYFILL}\"".strip()
    env = {**os.environ, "IPFS_PATH": str(tmpdir / "repo"), "NODE_OPTIONS": node_options}
    log_path = tmpdir / "ipfs-daemon.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(JSIPFS), "daemon", "--offline", "--enable-preload=false", "--init-config", str(config_path)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmpdir,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    log.close()
    url = f"http://127.0.0.1:{api}"

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.post(f"{url}/api/v0/version", timeout=2).status_code == 200:
                return url, stop
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"js-ipfs did not start (exit code {proc.returncode}):\n{tail}")
        time.sleep(0.2)
