#!/usr/bin/env python3
"""Register and fetch speed and memory, against `sha256sum` of the same file in the same run.

    python scripts/bench_register.py                     # 256M and 1G (needs ~4x the size on disk)
    python scripts/bench_register.py --sizes 64M --no-ipfs --out bench.json

For each size: `register_ratio` = (hash + encrypt + embedded store + anchor on the embedded
chain) / `sha256sum`; `fetch_ratio` = (fetch + decrypt + verify) / `sha256sum`; the peak RSS of
each, measured in a child process of its own (goals: ratios <= 2.0, RSS <= 200 MB and flat
across sizes). With the IPFS daemon (js-ipfs from node_modules), `ipfs_register_ratio` for the
smallest size. Ratios, not seconds, are the result: these machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-register"
UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

# Each measured operation runs in a fresh interpreter so that its peak RSS is its own.
# Its peak RSS is sampled during the operation itself: unlocking the keystore (scrypt, N=2**18)
# briefly takes 256 MiB whatever the file size, and is reported apart as the process peak.
CHILD = """
import os, sys, threading, time
from pathlib import Path
import fullchain
from fullchain.metadata import build_metadata
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE
peak, done = [0], threading.Event()
def sample():
    while not done.wait(0.005):
        peak[0] = max(peak[0], rss())
op, profile, path, storage = sys.argv[1:5]
fc = fullchain.connect(profile, password=%r, storage=storage)
fc.unlock(); fc.datasets  # keys and contracts loaded before the clock starts
threading.Thread(target=sample, daemon=True).start()
if op == "register":
    start = time.perf_counter()
    ident = fc.datasets.register(Path(path), build_metadata(title="bench")).dataset_id
else:
    ident = int(sys.argv[5])
    fc.datasets._bundle(fc.datasets.version(ident))
    start = time.perf_counter()
    fc.datasets.fetch(ident, Path(path))
elapsed = time.perf_counter() - start
done.set()
print(elapsed, ident, max(peak[0], rss()) / 2**20)
""" % PASSWORD


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(float(text[:-1]) * UNITS[text[-1]]) if text[-1] in UNITS else int(text)


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, int, float, float]:
    """(seconds, dataset id, peak RSS during the operation in MiB, process peak RSS in MiB)."""
    # Each measurement starts with the previous one's writes on disk, so that the kernel's
    # writeback of (say) the 1 GiB the register stored does not throttle the fetch after it.
    os.sync()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args[0]} failed: {err.strip()[-2000:]}")
    seconds, ident, op_peak = out.split()
    return float(seconds), int(ident), float(op_peak), usage.ru_maxrss / 1024


def sha256sum_seconds(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        left = size
        counter = 0
        while left:
            # Distinct blocks (a counter mixed in) so that no store can deduplicate them.
            chunk = counter.to_bytes(8, "big") + block[8:]
            fh.write(chunk[:min(left, len(chunk))])
            left -= min(left, len(chunk))
            counter += 1


def setup_home(home: Path) -> dict[str, str]:
    import fullchain
    from fullchain.models import Role

    env = {**os.environ, "FULLCHAIN_HOME": str(home), "FULLCHAIN_PASSWORD": PASSWORD}
    fullchain.init("bench", home=home, password=PASSWORD)
    fc = fullchain.connect("bench", home=home, password=PASSWORD)
    fc.deploy([fullchain.Founder(fc.address, Role.HOSPITAL | Role.GOVERNOR,
                                 bytes.fromhex(fc.profile.hpke_public_key[2:]))], threshold=1)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256M,1G", help="comma-separated sizes (default 256M,1G)")
    parser.add_argument("--no-ipfs", action="store_true", help="skip the IPFS daemon measurement")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",")]

    results: dict[str, object] = {"sizes": {}, "goals": {"ratio": 2.0, "peak_rss_mb": 200}}
    with tempfile.TemporaryDirectory(prefix="fc-bench-") as tmp:
        work = Path(tmp)
        env = setup_home(work / "home")
        for size in sizes:
            label = f"{size >> 20}MiB"
            src, out = work / f"data-{label}.bin", work / f"fetched-{label}.bin"
            make_file(src, size)
            baseline = min(sha256sum_seconds(src) for _ in range(2))  # warm cache, best of two
            reg_s, dataset_id, reg_rss, reg_process = run_child(["register", "bench", str(src), "embedded"], env)
            fetch_s, _, fetch_rss, fetch_process = run_child(["fetch", "bench", str(out), "embedded", str(dataset_id)], env)
            assert out.stat().st_size == size
            results["sizes"][label] = {  # type: ignore[index]
                "bytes": size, "sha256sum_s": round(baseline, 3), "register_s": round(reg_s, 3),
                "fetch_s": round(fetch_s, 3), "register_ratio": round(reg_s / baseline, 3),
                "fetch_ratio": round(fetch_s / baseline, 3), "register_peak_rss_mb": round(reg_rss, 1),
                "fetch_peak_rss_mb": round(fetch_rss, 1),
                "process_peak_rss_mb_incl_keystore_unlock": round(max(reg_process, fetch_process), 1),
            }
            out.unlink()
            if size != sizes[0]:
                src.unlink()
        if not args.no_ipfs:
            sys.path.insert(0, str(ROOT))
            from tests.ipfs_daemon import start_ipfs

            url, stop = start_ipfs(work / "ipfs")
            try:
                size = sizes[0]
                src = work / f"data-{size >> 20}MiB.bin"
                baseline = min(sha256sum_seconds(src) for _ in range(2))
                reg_s, _, rss, _ = run_child(["register", "bench", str(src), url], env)
                results["ipfs"] = {"bytes": size, "url": url, "register_s": round(reg_s, 3),
                                   "sha256sum_s": round(baseline, 3), "peak_rss_mb": round(rss, 1)}
                results["ipfs_register_ratio"] = round(reg_s / baseline, 3)
            finally:
                stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
