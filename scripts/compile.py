#!/usr/bin/env python3
"""Compile the contracts with solc-js and write the artifacts the SDK ships.

    python scripts/compile.py            # write chain/artifacts/*.json
    python scripts/compile.py --check    # exit 1 if committed artifacts differ from the sources
    python scripts/compile.py --build-info DIR   # also write a Hardhat-style build-info (slither)

No native solc installs on these machines, so py-solc-x drives `scripts/solc-js.cjs`, a small
front for the pinned npm `solc`. One committed settings file keeps the output byte-identical.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import solcx
import solcx.exceptions
import solcx.wrapper

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "contracts/compiler-settings.json"
ARTIFACTS = "chain/artifacts"
WRAPPER = "scripts/solc-js.cjs"


def standard_input(root: Path) -> dict:
    """The standard-JSON input: every contract source under contracts/, plus the settings."""
    sources = {
        p.relative_to(root).as_posix(): {"content": p.read_text(encoding="utf-8")}
        for p in sorted((root / "contracts").glob("*.sol"))
    }
    settings = json.loads((root / SETTINGS).read_text(encoding="utf-8"))
    return {"language": "Solidity", "sources": sources, "settings": settings}


def source_hash(std_input: dict) -> str:
    return hashlib.sha256(json.dumps(std_input, sort_keys=True).encode()).hexdigest()


def compile_all(root: Path) -> tuple[dict, dict, str]:
    std_input = standard_input(root)
    wrapper = root / WRAPPER
    try:
        output = solcx.compile_standard(std_input, base_path=root, solc_binary=wrapper)
    except solcx.exceptions.SolcError as exc:  # print the compiler's diagnostics, not its whole output
        errors = (exc.error_dict or {}).get("errors", [])
        raise SystemExit("\n".join(e["formattedMessage"] for e in errors) or str(exc)) from None
    version = str(solcx.wrapper.get_solc_version(wrapper, with_commit_hash=True))
    return std_input, output, version


def artifacts_from(std_input: dict, output: dict, version: str) -> dict[str, str]:
    """One JSON file per deployable contract, rendered deterministically."""
    digest = source_hash(std_input)
    files: dict[str, str] = {}
    for source, contracts in sorted(output["contracts"].items()):
        if not source.startswith("contracts/"):  # libraries are linked into ours, not shipped
            continue
        for name, data in sorted(contracts.items()):
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode:  # interfaces and abstract contracts are not shipped on their own
                continue
            artifact = {
                "contractName": name,
                "sourceName": source,
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "compiler": version,
                "sourceHash": digest,
            }
            files[f"{name}.json"] = json.dumps(artifact, indent=1, sort_keys=True) + "\n"
    return files


def write_build_info(directory: Path, std_input: dict, output: dict, version: str) -> Path:
    """A Hardhat-format build-info, the one format slither reads without a native solc."""
    build_id = source_hash(std_input)[:32]
    target = directory / "artifacts" / "build-info" / f"{build_id}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    short = version.split("+")[0]
    target.write_text(json.dumps({
        "_format": "hh-sol-build-info-1", "id": build_id, "solcVersion": short,
        "solcLongVersion": version, "input": std_input, "output": output,
    }))
    (directory / "hardhat.config.js").write_text(f"module.exports = {{ solidity: '{short}' }};\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed artifacts, write nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root (default: this checkout)")
    parser.add_argument("--build-info", type=Path, help="also write a Hardhat-style build-info into this directory")
    args = parser.parse_args(argv)
    root = args.root.resolve()

    std_input, output, version = compile_all(root)
    for diagnostic in output.get("errors", []):
        print(diagnostic["formattedMessage"], file=sys.stderr)
    files = artifacts_from(std_input, output, version)
    if args.build_info:
        write_build_info(args.build_info, std_input, output, version)
    target = root / ARTIFACTS
    if args.check:
        committed = {p.name: p.read_text(encoding="utf-8") for p in target.glob("*.json")}
        stale = sorted(name for name in files.keys() | committed.keys() if files.get(name) != committed.get(name))
        if stale:
            print(f"artifacts out of date with contracts/: {', '.join(stale)}; "
                  "run `python scripts/compile.py` and commit chain/artifacts/", file=sys.stderr)
            return 1
        print(f"artifacts match the sources ({len(files)} contracts, solc {version})")
        return 0
    target.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in target.glob("*.json")) - files.keys():
        (target / stale).unlink()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} artifacts to {ARTIFACTS} (solc {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
