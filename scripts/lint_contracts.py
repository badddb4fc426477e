#!/usr/bin/env python3
"""Static analysis of contracts/: slither (security) and solhint (style, NatSpec, custom errors).

    .venv/bin/python scripts/lint_contracts.py                  # both; exit 1 on a failure
    .venv/bin/python scripts/lint_contracts.py --verbose        # also list every warning
    .venv/bin/python scripts/lint_contracts.py --root COPY      # lint another checkout / a copy

Exit 1 when slither reports any finding of impact High, or solhint reports any error (rules at
"error" in .solhint.json); exit 2 when a tool cannot run. Every other finding is summarised.

slither: no native solc installs here, so the contracts are compiled with the project's solc-js
front (the functions of scripts/compile.py, same sources and settings; nothing is written to
chain/artifacts) and handed to slither as a Hardhat build-info in a temporary directory, with
`--hardhat-ignore-compile`: slither and crytic-compile never call a `solc` (the `solc` shim that
installing slither drops is never on the PATH given to it). The build-info needs the AST and
source maps, which `compile.py --build-info` does not select, so they are added here. The run
fails (exit 2) if slither analysed no contract rather than passing on nothing.

slither-analyzer 0.11.6 requires web3<8, so it lives in its own virtualenv, not in .venv:

    python3 -m venv .venv/slither && .venv/slither/bin/pip install slither-analyzer==0.11.6

Found as --slither PATH, else $SLITHER, else .venv/slither/bin/slither, else `slither` on PATH.

solhint: node_modules/.bin/solhint --disc with the committed .solhint.json (solhint:recommended,
tuned: custom errors, named imports, naming and visibility rules are errors; NatSpec coverage is
a warning, reported but not failing, until events and public getters carry @notice).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPACTS = ("High", "Medium", "Low", "Informational", "Optimization")
SLITHER_INSTALL = "python3 -m venv .venv/slither && .venv/slither/bin/pip install slither-analyzer==0.11.6"


class ToolError(Exception):
    """A tool could not run (exit 2), as opposed to finding something (exit 1)."""


# ---- compile: a Hardhat build-info slither can read ----

def _compile_module() -> Any:
    spec = importlib.util.spec_from_file_location("fullchain_compile", ROOT / "scripts" / "compile.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def write_build_info(root: Path, workdir: Path) -> list[str]:
    """Compile root/contracts into workdir as a Hardhat project slither can read; returns the
    names of the contracts defined under contracts/."""
    import solcx
    import solcx.exceptions
    import solcx.wrapper

    compile_py = _compile_module()
    std_input = compile_py.standard_input(root)
    selection = std_input["settings"]["outputSelection"]
    for per_contract in selection.values():
        wanted = set(per_contract.get("*", [])) | {"evm.bytecode.sourceMap", "evm.deployedBytecode.sourceMap"}
        per_contract["*"] = sorted(wanted)
        per_contract[""] = sorted(set(per_contract.get("", [])) | {"ast"})
    wrapper = ROOT / compile_py.WRAPPER
    try:
        output = solcx.compile_standard(std_input, base_path=root, solc_binary=wrapper)
    except solcx.exceptions.SolcError as exc:
        raise ToolError(f"the contracts do not compile:\n{exc}") from None
    version = str(solcx.wrapper.get_solc_version(wrapper, with_commit_hash=True))
    compile_py.write_build_info(workdir, std_input, output, version)
    # crytic-compile resolves the build-info's source names against the project directory.
    for name in ("contracts", "node_modules"):
        target = root / name if (root / name).exists() else ROOT / name
        (workdir / name).symlink_to(target, target_is_directory=True)
    return sorted(name for source, contracts in output.get("contracts", {}).items()
                  if source.startswith("contracts/") for name in contracts)


# ---- slither ----

def find_slither(explicit: str | None) -> Path:
    candidates = [explicit, os.environ.get("SLITHER"), str(ROOT / ".venv" / "slither" / "bin" / "slither"),
                  shutil.which("slither")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ToolError(f"slither not found; install it in its own virtualenv (it needs web3<8):\n  {SLITHER_INSTALL}")


def run_slither(slither: Path, workdir: Path, ours: list[str]) -> list[dict[str, Any]]:
    # The slither virtualenv's bin holds solc-select's `solc` shim (it downloads compilers);
    # keep it off the PATH so that nothing can fall back to it.
    shim_dir = str(slither.parent.resolve())
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != Path(shim_dir))
    env = {**os.environ, "PATH": path}
    env.pop("VIRTUAL_ENV", None)
    out = workdir / "slither.json"
    cmd = [str(slither), str(workdir), "--compile-force-framework", "hardhat", "--hardhat-ignore-compile",
           "--npx-disable", "--filter-paths", "node_modules", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    # slither exits 0 with no finding and 255 with findings; anything else is a failure to run.
    # (The JSON goes to a file: with `--json -` slither omits the "analyzed (N contracts" line.)
    try:
        report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    except json.JSONDecodeError:
        report = None
    if proc.returncode not in (0, 255) or not report or not report.get("success"):
        detail = (report or {}).get("error") or proc.stderr.strip()[-2000:]
        raise ToolError(f"slither failed (exit {proc.returncode}): {detail}")
    match = re.search(r"analyzed \((\d+) contracts", proc.stderr)
    analysed = int(match.group(1)) if match else 0
    if analysed < len(ours) or analysed == 0:
        raise ToolError(f"slither analysed {analysed} contracts, expected at least {len(ours)} ({', '.join(ours)}); "
                        "the build-info is probably missing the AST")
    return list(report.get("results", {}).get("detectors", []))


def summarise_slither(findings: list[dict[str, Any]]) -> int:
    by_impact = Counter(f.get("impact", "?") for f in findings)
    counts = ", ".join(f"{by_impact.get(i, 0)} {i}" for i in IMPACTS)
    print(f"slither: {len(findings)} findings ({counts})")
    order = {name: i for i, name in enumerate(IMPACTS)}
    for f in sorted(findings, key=lambda f: (order.get(f.get("impact"), 9), f.get("check", ""))):
        lines = f.get("description", "").strip().splitlines()
        # Some descriptions end their first line with ":" and name the culprit on the next.
        first = " ".join(" ".join(lines[:2] if lines and lines[0].rstrip().endswith(":") else lines[:1]).split())
        print(f"  [{f.get('impact')}/{f.get('confidence')}] {f.get('check')}: {first}")
    return by_impact.get("High", 0)


# ---- solhint ----

def run_solhint(root: Path, verbose: bool) -> int:
    solhint = ROOT / "node_modules" / ".bin" / "solhint"
    if not solhint.exists():
        raise ToolError(f"{solhint} not found: run `npm ci`")
    config = root / ".solhint.json" if (root / ".solhint.json").exists() else ROOT / ".solhint.json"
    files = sorted(p.relative_to(root).as_posix() for p in (root / "contracts").glob("*.sol"))
    if not files:
        raise ToolError(f"no contracts under {root / 'contracts'}")
    cmd = [str(solhint), "--disc", "--noPoster", "-c", str(config), "-f", "json", *files]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise ToolError(f"solhint failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}") from None
    problems = [p for p in report if "ruleId" in p]
    for line in proc.stderr.splitlines():  # e.g. a misspelt rule name in the config
        if line.strip():
            print(f"solhint: {line.strip()}")
    errors = [p for p in problems if p.get("severity") == "Error"]
    warnings = [p for p in problems if p.get("severity") != "Error"]
    shown = config.relative_to(root) if config.is_relative_to(root) else config
    print(f"solhint: {len(errors)} errors, {len(warnings)} warnings (config {shown}, {len(files)} files)")
    for p in errors:
        print(f"  error {p['filePath']}:{p['line']}:{p['column']} {p['ruleId']}: {p['message']}")
    for rule, count in Counter(p["ruleId"] for p in warnings).most_common():
        print(f"  warnings {rule}: {count}")
    if verbose:
        for p in warnings:
            print(f"  warning {p['filePath']}:{p['line']}:{p['column']} {p['ruleId']}: {p['message']}")
    return len(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="project whose contracts/ to lint (default: this checkout)")
    parser.add_argument("--slither", help="the slither executable (default: $SLITHER, .venv/slither/bin/slither, PATH)")
    parser.add_argument("--skip-slither", action="store_true")
    parser.add_argument("--skip-solhint", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="list every solhint warning")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    failed = False
    try:
        if not args.skip_slither:
            started = time.perf_counter()
            slither = find_slither(args.slither)
            with tempfile.TemporaryDirectory(prefix="fullchain-slither-") as tmp:
                ours = write_build_info(root, Path(tmp))
                compiled = time.perf_counter()
                findings = run_slither(slither, Path(tmp), ours)
            high = summarise_slither(findings)
            print(f"slither: compile {compiled - started:.1f} s, analysis {time.perf_counter() - compiled:.1f} s")
            if high:
                print(f"slither: FAIL, {high} finding(s) of impact High")
                failed = True
        if not args.skip_solhint:
            if run_solhint(root, args.verbose):
                print("solhint: FAIL, errors above")
                failed = True
    except ToolError as exc:
        print(f"lint_contracts: {exc}", file=sys.stderr)
        return 2
    print("lint_contracts: " + ("FAIL" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
