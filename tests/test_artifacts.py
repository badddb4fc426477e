"""The shipped artifacts are what the sources compile to; a stale one is caught."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fullchain.contracts import artifact

ROOT = Path(__file__).resolve().parent.parent


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "compile.py"), "--check", "--root", str(root)],
                          capture_output=True, text=True, timeout=300)


def test_committed_artifacts_match_sources() -> None:
    out = check(ROOT)
    assert out.returncode == 0, out.stderr
    assert "artifacts match the sources" in out.stdout


def test_changed_source_without_recompiling_fails_the_check(tmp_path: Path) -> None:
    for folder in ("contracts", "scripts", "chain/artifacts"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    source = tmp_path / "contracts" / "Consortium.sol"
    source.write_text(source.read_text().replace("uint256 private constant _ENODE_KEY_LENGTH = 64;",
                                                 "uint256 private constant _ENODE_KEY_LENGTH = 65;"))
    out = check(tmp_path)
    assert out.returncode == 1
    # Every artifact carries the hash of all sources, so all are listed (sorted): Consortium among them.
    assert "artifacts out of date with contracts/: " in out.stderr and " Consortium.json," in out.stderr


def test_sdk_loads_the_shipped_artifact() -> None:
    consortium = artifact("Consortium")
    assert consortium["bytecode"].startswith("0x") and len(consortium["bytecode"]) > 1000
    assert {"ConsortiumNotMember", "ConsortiumNotGovernor"} <= {e["name"] for e in consortium["abi"] if e["type"] == "error"}
    assert consortium["compiler"].startswith("0.8.30")
