#!/usr/bin/env python3
"""Reading and registering at scale: does anything grow with the chain that should not?

    python scripts/bench_scale.py                    # N = 1000 datasets on the embedded chain
    python scripts/bench_scale.py --n 200 --licenses 50 --out bench.json
    python scripts/bench_scale.py --n 1000 --anvil   # also register and list on a real anvil node

Registers N small datasets one after another through the SDK (fresh FULLCHAIN_HOME, embedded
chain and store) and reports, as JSON:
- `register_s_at`: median seconds per registration around N = 10, 100, 1000, 10000 (those
  reached) and at N itself; `register_growth`: the figure at the largest of those over the one
  at 10 (issue 8's goal: <= 1.25 at 1000), with `register_growth_span` saying which;
- `index_rebuild_s`: building the event index from empty at N (with public metadata);
  `index_sync_noop_s` / `index_sync_one_s`: a sync with nothing new / after one registration;
- `index_list_page_s` (first page of 50), `index_list_all_s` (all N, with the total),
  `index_list_filtered_s`, `index_license_list_s` (all licenses): queries on the index;
- `getlogs_filtered_s` (one commitment, blocks 0..head, as a resumed registration looks for its
  anchor) and `getlogs_all_s` (every log of the registry) on the embedded chain at N;
- with `--anvil`: the same registration and index figures on a real anvil node.
- the CLI as a user runs it (subprocesses, medians): `list_cold_s` (the first `dataset list
  --json`, which builds the CLI's own index from the chain), then `list_s` (`dataset list --json`
  at N), `list_page_s` (first page of 50, a table), both with the profile's key agent running
  (`fullchain agent start`) and again as `*_unlocking_s` with the password given to each command
  (each pays the keystore's scrypt for the encrypted titles), `license_list_s` (`license list --json`),
  `cli_help_s` (`fullchain --help`) and `member_list_s` (`member list`).
Medians, not means: these machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-scale"
MILESTONES = (10, 100, 1000, 10000)
STANDARDS = ("sdtm", "adam", "omop", "fhir", "other")
TIERS = ("public", "consortium", "restricted")
CLI_FIGURES = ("list_cold_s", "list_unlocking_s", "list_page_unlocking_s", "list_s", "list_page_s",
               "license_list_s", "cli_help_s", "member_list_s")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_time(fn: Callable[[], Any], runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples), 5)


def around(times: list[float], at: int, window: int) -> float:
    """Median of the registrations numbered at-window .. at+window (1-based), within the run."""
    low, high = max(0, at - 1 - window), min(len(times), at + window)
    return round(statistics.median(times[low:high]), 4)


def make_world(home: Path, chain: str, fund: Callable[[str], None] | None) -> tuple[Any, Any]:
    import fullchain
    from fullchain.models import Role

    for name in ("hospital", "pharma"):
        config = fullchain.init(name, home=home, password=PASSWORD, chain=chain)
        if fund is not None:
            fund(config.address)
    hospital = fullchain.connect("hospital", home=home, password=PASSWORD)
    pharma = fullchain.connect("pharma", home=home, password=PASSWORD)
    hospital.unlock()
    pharma.unlock()
    key = lambda fc: bytes.fromhex(fc.profile.hpke_public_key[2:])  # noqa: E731
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA | Role.GOVERNOR, key(pharma))], threshold=1)
    return hospital, pharma


def register(fc: Any, files: Path, i: int) -> float:
    from fullchain.metadata import build_metadata

    path = files / "data.bin"
    path.write_bytes(i.to_bytes(8, "big") + os.urandom(248))
    meta = build_metadata(title=f"dataset {i}", standard=STANDARDS[i % len(STANDARDS)], tier=TIERS[i % len(TIERS)],
                          data_use=["DUO:0000042"] if i % 2 else [])
    start = time.perf_counter()
    fc.datasets.register(path, meta)
    return time.perf_counter() - start


def register_many(fc: Any, files: Path, n: int, window: int, label: str) -> tuple[list[float], dict[str, Any]]:
    times: list[float] = []
    for i in range(1, n + 1):
        times.append(register(fc, files, i))
        if i % 50 == 0 or i == n:
            log(f"[{label}] registered {i}/{n}: last {times[-1]:.3f} s")
    reached = [m for m in MILESTONES if m <= n]
    at = {str(m): around(times, m, window) for m in reached}
    at[f"n={n}"] = around(times, n, window)
    figures: dict[str, Any] = {"register_s_at": at, "register_total_s": round(sum(times), 2)}
    if reached and reached[-1] > 10:
        figures["register_growth"] = round(at[str(reached[-1])] / at["10"], 3)
        figures["register_growth_span"] = [10, reached[-1]]
    else:
        figures["register_growth"] = None
    return times, figures


def index_figures(fc: Any, pharma: Any, files: Path, path: Path, n: int) -> dict[str, Any]:
    from fullchain.index import EventIndex

    def fresh() -> EventIndex:
        return EventIndex(path, w3=fc.w3, contracts=fc.contracts(), store=lambda: fc.store)

    index = fresh()
    start = time.perf_counter()
    result = index.sync()
    rebuild = time.perf_counter() - start
    figures: dict[str, Any] = {
        "index_rebuild_s": round(rebuild, 3), "index_events": index.count_events(),
        "index_blocks": result.to_block + 1, "index_ranges": result.ranges,
        "index_size_mb": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 2),
        "index_sync_noop_s": median_time(index.sync),
        "index_list_page_s": median_time(lambda: (index.datasets(limit=50), index.count_datasets())),
        "index_list_last_page_s": median_time(lambda: index.datasets(limit=50, offset=max(0, n - 50))),
        "index_list_all_s": median_time(lambda: (index.datasets(), index.count_datasets())),
        "index_list_filtered_s": median_time(lambda: index.datasets(limit=50, standard="omop", tier="public",
                                                                    data_use="DUO:0000042")),
        "index_license_list_s": median_time(lambda: (index.licenses(), index.count_licenses())),
        "index_license_list_for_owner_s": median_time(lambda: index.licenses(owner=fc.address, status="requested",
                                                                             limit=50)),
        "index_licenses": index.count_licenses(),
        "index_members_s": median_time(index.members),
    }
    assert index.count_datasets() == n, (index.count_datasets(), n)
    register(fc, files, n + 1)
    start = time.perf_counter()
    index.sync()
    figures["index_sync_one_s"] = round(time.perf_counter() - start, 4)
    index.close()
    return figures


def getlogs_figures(fc: Any) -> dict[str, Any]:
    registry = fc.datasets.contract
    last = registry.events.VersionRegistered().get_logs(from_block=fc.w3.eth.block_number)
    commitment = last[-1]["args"]["commitment"] if last else b"\0" * 32
    return {
        "getlogs_filtered_s": median_time(lambda: registry.events.VersionRegistered().get_logs(
            from_block=0, argument_filters={"commitment": commitment})),
        "getlogs_all_s": median_time(lambda: fc.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                                                                  "address": registry.address}), runs=3),
    }


def request_licenses(pharma: Any, count: int) -> None:
    from fullchain.duo import parse_purpose

    for dataset_id in range(1, count + 1):
        pharma.licensing.request(dataset_id, parse_purpose("DUO:0000042"), term_seconds=30 * 24 * 3600)
        if dataset_id % 50 == 0:
            log(f"requested {dataset_id}/{count} licenses")


def cli_figures(home: Path) -> dict[str, Any]:
    """The CLI in subprocesses, as a user runs it (the `fullchain` next to this interpreter)."""
    import subprocess

    exe = str(Path(sys.executable).with_name("fullchain"))
    env = {**os.environ, "FULLCHAIN_HOME": str(home), "FULLCHAIN_PASSWORD": PASSWORD}

    def run(*args: str) -> None:
        done = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"fullchain {' '.join(args)} failed: {done.stderr.strip()}")

    def timed(*args: str) -> float:
        start = time.perf_counter()
        run(*args)
        return round(time.perf_counter() - start, 4)

    figures = {"list_cold_s": timed("-p", "hospital", "dataset", "list", "--json")}
    # Encrypted titles need the HPKE key: with the password at hand, each command pays the
    # keystore's scrypt (~1 s, overlapped with the rest); with `fullchain agent start` (one
    # unlock for a while, like ssh-agent) it pays nothing. Both are reported.
    figures["list_unlocking_s"] = median_time(lambda: run("-p", "hospital", "dataset", "list", "--json"), runs=3)
    figures["list_page_unlocking_s"] = median_time(lambda: run("-p", "hospital", "dataset", "list", "--limit", "50"))
    run("-p", "hospital", "agent", "start", "--ttl", "10m")
    env.pop("FULLCHAIN_PASSWORD")
    try:
        figures["list_s"] = median_time(lambda: run("-p", "hospital", "dataset", "list", "--json"), runs=3)
        figures["list_page_s"] = median_time(lambda: run("-p", "hospital", "dataset", "list", "--limit", "50"))
    finally:
        run("-p", "hospital", "agent", "stop")
        env["FULLCHAIN_PASSWORD"] = PASSWORD
    figures["license_list_s"] = median_time(lambda: run("-p", "hospital", "license", "list", "--json"), runs=3)
    figures["cli_help_s"] = median_time(lambda: run("--help"))
    figures["member_list_s"] = median_time(lambda: run("-p", "hospital", "member", "list"))
    return figures


def run_embedded(work: Path, n: int, licenses: int, window: int) -> dict[str, Any]:
    home, files = work / "home", work / "files"
    files.mkdir()
    hospital, pharma = make_world(home, "embedded", None)
    _, figures = register_many(hospital, files, n, window, "embedded")
    request_licenses(pharma, min(licenses, n))
    figures["licenses"] = min(licenses, n)
    figures.update(getlogs_figures(hospital))
    figures.update(index_figures(hospital, pharma, files, home / "bench-index" / "index.sqlite", n))
    log("CLI figures")
    figures.update(cli_figures(home))
    return figures


def run_anvil(work: Path, n: int, window: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from eth_account import Account

    from fullchain.backends.rpc import open_rpc
    from fullchain.transactions import Transactor
    from scripts.devnodes import ANVIL_MNEMONIC, Anvil

    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC)
    with Anvil() as node:
        funding = Transactor(open_rpc(node.url), lambda: funder, funder.address)
        home, files = work / "anvil-home", work / "anvil-files"
        files.mkdir()
        hospital, pharma = make_world(home, node.url, lambda address: funding.transfer(address, 10**21))
        _, figures = register_many(hospital, files, n, window, "anvil")
        figures.update(getlogs_figures(hospital))
        figures.update(index_figures(hospital, pharma, files, home / "bench-index" / "index.sqlite", n))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="datasets to register (default 1000)")
    parser.add_argument("--licenses", type=int, default=1000, help="license requests to make (default 1000, at most N)")
    parser.add_argument("--window", type=int, default=5,
                        help="registrations either side of a milestone in its median (default 5)")
    parser.add_argument("--anvil", action="store_true", help="also register and index N datasets on anvil")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--home", type=Path,
                        help="build the embedded world in this directory and keep it; if it already holds one "
                             "(a previous --home run), only measure the CLI figures on it (e.g. once the machine is idle)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    results: dict[str, Any] = {"n": args.n, "goals": {"register_growth": 1.25, "list_s": 2.0, "list_page_s": 1.0,
                                                      "cli_help_s": 0.3, "member_list_s": 1.2}}
    if args.home is not None and (args.home / "home" / "profiles").exists():
        started = time.perf_counter()
        results["embedded"] = {"reused_world": str(args.home), **cli_figures(args.home / "home")}
        results["wall_s"] = round(time.perf_counter() - started, 1)
        return _report(results, args.out)
    with tempfile.TemporaryDirectory(prefix="fc-bench-scale-") as tmp:
        work = Path(tmp)
        if args.home is not None:
            args.home.mkdir(parents=True, exist_ok=True)
            work = args.home
        started = time.perf_counter()
        results["embedded"] = run_embedded(work, args.n, args.licenses, args.window)
        if args.anvil:
            results["anvil"] = run_anvil(work, args.n, args.window)
        results["wall_s"] = round(time.perf_counter() - started, 1)
    return _report(results, args.out)


def _report(results: dict[str, Any], out: Path | None) -> int:
    for key in ("register_s_at", "register_growth", "index_rebuild_s", *CLI_FIGURES):
        results[key] = results["embedded"].get(key)
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
