#!/usr/bin/env python3
"""Transaction throughput of the fullchain SDK, and its overhead over bare web3.py.

    .venv/bin/python scripts/bench_chain.py                 # JSON on stdout
    .venv/bin/python scripts/bench_chain.py --n 200 --rounds 5 --out bench.json

Every measured transaction is one state-changing Consortium call (`updateMetadata(bytes32)`,
a fresh hash each time), sent and awaited before the next one, as a partner application does.

- embedded_tx_per_s: the SDK (`Transactor.call_function`) on the embedded chain, in a temporary
  FULLCHAIN_HOME.
- anvil_tx_per_s: the same SDK loop against an anvil this script starts (and stops, by pid).
- sdk_vs_web3_ratio: per round, SDK seconds over the seconds of a bare web3.py loop that sends
  the same calls with the same gas limit and fees, signed (with explicit nonces) before its timer
  starts, via `send_raw_transaction` + `wait_for_transaction_receipt` (polling every 50 ms, as the
  SDK does). Each of `--rounds` rounds starts a fresh anvil and interleaves `--n` SDK and `--n`
  bare transactions one by one (alternating which goes first) on the same Web3; the median of
  the per-round ratios is reported. Each loop uses its own member account, so neither disturbs
  the other's nonces. Why so: anvil 1.7's time to mine a transaction grows with the chain (from
  under 1 ms at a few hundred blocks to ~5 ms at 2,500), and a receipt missed at the first poll
  costs a whole 50 ms poll interval; on a long chain that wait swamps both loops and drives the
  ratio towards 1 whatever the SDK does. Interleaving also spreads the load of other processes
  evenly over both loops.

`--profile` adds where the SDK's time goes per transaction: signing, the web3 calls it makes,
and the JSON-RPC round trips by method (for both loops).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from devnodes import ANVIL_MNEMONIC, Anvil

ROOT = Path(__file__).resolve().parent.parent
HPKE_KEY = b"\x01" * 32
# The bare loop polls for receipts as often as fullchain's Transactor.wait does.
POLL_LATENCY = 0.05


# ---- anvil ----



# ---- helpers ----

def metadata_hash(tag: int, i: int) -> bytes:
    """A fresh, non-zero 32-byte value per transaction (every call changes state)."""
    return tag.to_bytes(4, "big") + (i + 1).to_bytes(28, "big")


class Profile:
    """Adds up, per scope ("sdk" or "web3"), the time of each JSON-RPC round trip (the
    provider's make_request, below web3's middleware and formatters), of the web3 calls the SDK
    makes (estimate_gas, send_raw_transaction, wait_for_transaction_receipt) and of the SDK's
    signing, by wrapping them on the given instances only. Nothing is counted while the scope
    is None."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.scope: str | None = None

    def attach(self, w3: Any, tx: Any) -> None:
        provider = w3.provider
        provider.make_request = self._wrap("rpc:", provider.make_request, by_method=True)
        provider._request_func_cache = (None, None)  # rebuild the middleware chain over the wrapper
        for name in ("estimate_gas", "send_raw_transaction", "wait_for_transaction_receipt"):
            setattr(w3.eth, name, self._wrap("web3:", getattr(w3.eth, name)))
        tx.sign = self._wrap("", tx.sign)  # only the SDK signs inside the timed section

    def _wrap(self, prefix: str, inner: Any, by_method: bool = False) -> Any:
        label = prefix + getattr(inner, "__name__", "call")

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.scope is None:
                return inner(*args, **kwargs)
            key = f"{self.scope}:" + (prefix + str(args[0]) if by_method else label)
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - t0
                self.calls[key] += 1

        return wrapper


def setup_consortium(w3: Any, accounts: list[Any]) -> tuple[Any, list[Any]]:
    """Deploy a Consortium whose founders are `accounts` (the first a governor); return the
    client of the first account and one Transactor per account."""
    from fullchain.consortium import ConsortiumClient, Founder, deploy_consortium
    from fullchain.models import Role
    from fullchain.transactions import Transactor

    txs = [Transactor(w3, (lambda a=a: a), a.address) for a in accounts]
    founders = [Founder(accounts[0].address, Role.GOVERNOR, HPKE_KEY)]
    founders += [Founder(a.address, Role.HOSPITAL, HPKE_KEY) for a in accounts[1:]]
    address, _ = deploy_consortium(txs[0], w3, founders, threshold=1)
    return ConsortiumClient(w3, address, txs[0]), txs


def sdk_loop(client: Any, tx: Any, n: int, tag: int) -> float:
    """n SDK calls, each awaited; returns the seconds taken."""
    fns = client.contract.functions
    t0 = time.perf_counter()
    for i in range(n):
        tx.call_function(fns.updateMetadata(metadata_hash(tag, i)), contract="Consortium")
    return time.perf_counter() - t0


def presign(w3: Any, client: Any, account: Any, n: int, tag: int, gas: int,
            fees: dict[str, int]) -> list[bytes]:
    """n signed updateMetadata transactions with explicit nonces (not timed)."""
    fns = client.contract.functions
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    chain_id = w3.eth.chain_id
    raw = []
    for i in range(n):
        tx = {
            "to": client.address, "value": 0, "gas": gas, "nonce": nonce + i, "chainId": chain_id,
            "data": fns.updateMetadata(metadata_hash(tag, i))._encode_transaction_data(), **fees,
        }
        raw.append(bytes(account.sign_transaction(tx).raw_transaction))
    return raw


def web3_loop(w3: Any, raw: list[bytes]) -> float:
    """Send each pre-signed transaction and await its receipt; returns the seconds taken."""
    t0 = time.perf_counter()
    for signed in raw:
        tx_hash = w3.eth.send_raw_transaction(signed)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=POLL_LATENCY)
        if receipt["status"] != 1:
            raise RuntimeError(f"bare web3 transaction 0x{bytes(tx_hash).hex()} reverted")
    return time.perf_counter() - t0


def sdk_gas_limit(client: Any, account: Any, tag: int) -> int:
    """The gas limit the SDK sets for one of these calls: its estimate plus 20 %."""
    fn = client.contract.functions.updateMetadata(metadata_hash(tag, 0))
    gas = fn.estimate_gas({"from": account.address, "value": 0})
    return gas + gas // 5


# ---- the measurements ----

def bench_embedded(n: int, warmup: int) -> dict[str, Any]:
    from eth_account import Account

    from fullchain.backends.embedded import open_embedded
    from fullchain.home import HOME_ENV, embedded_chain_dir, fullchain_home

    previous = os.environ.get(HOME_ENV)
    with tempfile.TemporaryDirectory(prefix="fullchain-bench-", ignore_cleanup_errors=True) as home:
        os.environ[HOME_ENV] = home  # nothing touches the user's real state
        try:
            w3, dev_keys = open_embedded(embedded_chain_dir(fullchain_home()))
            account = Account.from_key(dev_keys[0])
            client, (tx,) = setup_consortium(w3, [account])
            sdk_loop(client, tx, warmup, tag=1)
            seconds = sdk_loop(client, tx, n, tag=2)
        finally:
            if previous is None:
                os.environ.pop(HOME_ENV, None)
            else:
                os.environ[HOME_ENV] = previous
    return {"n": n, "seconds": round(seconds, 4), "tx_per_s": round(n / seconds, 2)}


def anvil_round(n: int, warmup: int, round_no: int, prof: Profile | None) -> tuple[float, float, int, int]:
    """One round on a fresh anvil: n SDK and n bare transactions, interleaved one by one
    (alternating which goes first), after a warm-up of both. Returns (SDK seconds, bare
    seconds, gas limit, chain height at the end)."""
    from eth_account import Account
    from fullchain.backends.rpc import open_rpc

    Account.enable_unaudited_hdwallet_features()
    anvil = Anvil()
    try:
        w3 = open_rpc(anvil.url)
        accounts = [Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(2)]
        node_accounts = w3.eth.accounts[:2]
        if [a.address for a in accounts] != list(node_accounts):
            raise RuntimeError(f"anvil's accounts {node_accounts} are not the default mnemonic's")
        client, (sdk_tx, _) = setup_consortium(w3, accounts)
        bare = accounts[1]
        if prof is not None:
            prof.attach(w3, sdk_tx)

        # Warm up both paths (HTTP connection, ABI caches, the SDK's chain id / nonce / fees).
        # Warm-up also makes both accounts' metadata slots non-zero, so that every measured call
        # is the same non-zero to non-zero store and needs the same gas.
        sdk_loop(client, sdk_tx, warmup, tag=10)
        fees = sdk_tx.fees()
        web3_loop(w3, presign(w3, client, bare, warmup, tag=11, gas=sdk_gas_limit(client, bare, tag=11), fees=fees))
        gas = sdk_gas_limit(client, bare, tag=12)  # what the SDK sets for these calls now
        if gas != sdk_gas_limit(client, accounts[0], tag=12):
            raise RuntimeError("the two accounts' calls need different gas; the comparison would be unfair")

        raw = presign(w3, client, bare, n, tag=1000 + round_no, gas=gas, fees=fees)  # untimed
        fns = client.contract.functions
        sdk_s = web3_s = 0.0
        for i in range(n):
            for which in (("sdk", "web3") if i % 2 == 0 else ("web3", "sdk")):
                if prof is not None:
                    prof.scope = which
                if which == "sdk":
                    t0 = time.perf_counter()
                    sdk_tx.call_function(fns.updateMetadata(metadata_hash(100 + round_no, i)), contract="Consortium")
                    sdk_s += time.perf_counter() - t0
                else:
                    web3_s += web3_loop(w3, raw[i:i + 1])
                if prof is not None:
                    prof.scope = None
        return sdk_s, web3_s, gas, w3.eth.block_number
    finally:
        anvil.stop()


def bench_anvil(n: int, rounds: int, warmup: int, profile: bool) -> dict[str, Any]:
    prof = Profile() if profile else None
    sdk_s: list[float] = []
    web3_s: list[float] = []
    heights: list[int] = []
    gas = 0
    for r in range(rounds):
        s, w, gas, height = anvil_round(n, warmup, r, prof)
        sdk_s.append(s)
        web3_s.append(w)
        heights.append(height)
    ratios = [s / w for s, w in zip(sdk_s, web3_s)]
    total = n * rounds
    result: dict[str, Any] = {
        "n_per_round": n, "rounds": rounds,
        "method": "each round on a fresh anvil; SDK and bare transactions interleaved one by one",
        "sdk_seconds": [round(x, 4) for x in sdk_s],
        "web3_seconds": [round(x, 4) for x in web3_s],
        "ratios": [round(x, 4) for x in ratios],
        "sdk_tx_per_s": round(total / sum(sdk_s), 2),
        "web3_tx_per_s": round(total / sum(web3_s), 2),
        "median_ratio": round(statistics.median(ratios), 4),
        "gas_limit": gas,
        "receipt_poll_latency_s": POLL_LATENCY,
        "chain_height_at_round_end": heights,
    }
    if prof is not None:
        per_tx = 1000.0 / total
        result["profile_ms_per_tx"] = {
            "sdk_total": round(sum(sdk_s) * per_tx, 3),
            "web3_total": round(sum(web3_s) * per_tx, 3),
            **{k: round(v * per_tx, 3) for k, v in sorted(prof.seconds.items())},
            "calls_per_tx": {k: round(c / total, 3) for k, c in sorted(prof.calls.items())},
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="transactions per loop per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating SDK/web3 rounds on anvil (default 5)")
    parser.add_argument("--embedded-n", type=int, help="transactions on the embedded chain (default: --n)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed transactions before each measurement")
    parser.add_argument("--skip-embedded", action="store_true", help="measure anvil only")
    parser.add_argument("--profile", action="store_true", help="add a per-transaction time breakdown of the SDK loop")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be at least 1")

    # A SIGTERM unwinds like Ctrl-C, so the `finally` that stops anvil runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    report: dict[str, Any] = {}
    if not args.skip_embedded:
        embedded = bench_embedded(args.embedded_n or args.n, args.warmup)
        report["embedded_tx_per_s"] = embedded["tx_per_s"]
    anvil = bench_anvil(args.n, args.rounds, args.warmup, args.profile)
    report["anvil_tx_per_s"] = anvil["sdk_tx_per_s"]
    report["sdk_vs_web3_ratio"] = anvil["median_ratio"]
    report["ratio_goal"] = 1.2
    if not args.skip_embedded:
        report["embedded"] = embedded
    report["anvil"] = anvil
    report["wall_seconds"] = round(time.perf_counter() - started, 2)

    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
