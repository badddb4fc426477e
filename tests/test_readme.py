"""Every fenced `sh` block of README.md runs as written, top to bottom, in a fresh FULLCHAIN_HOME.

Each block is one bash script (-euo pipefail), as if pasted into one terminal: the variables a
block exports (the quickstart's FULLCHAIN_HOME) are there for the next block, and so is the
working directory with the files a block wrote. Not run from the first block: `pip install . && `
(the package under test is already installed) and `./scripts/test.sh` (this suite itself).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

PASSWORD = "readme-tests"
INSTALL = "pip install . && "
TESTS = "./scripts/test.sh"
# What carries over from one pasted block to the next: the variables it exported.
PRELUDE = """if [ -f "$README_STATE" ]; then . "$README_STATE"; fi
carry() { declare -px | grep -E '^declare -x FULLCHAIN_[A-Z_]*=' > "$README_STATE" || true; }
trap carry EXIT
"""


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def runnable(blocks: list[str]) -> list[str]:
    first = blocks[0].splitlines()
    assert first[0].startswith(INSTALL + "fullchain demo"), "the README no longer starts with the install + demo line"
    assert first[1].startswith(TESTS), "the README's second command is no longer the test suite"
    return ["\n".join([first[0].replace(INSTALL, "", 1), *first[2:]]), *blocks[1:]]


def test_every_shell_block_of_the_readme_runs(tmp_path: Path) -> None:
    blocks = runnable(sh_blocks((ROOT / "README.md").read_text(encoding="utf-8")))
    assert len(blocks) >= 3 and any("fullchain demo" in b for b in blocks)
    work, tmp, state = tmp_path / "work", tmp_path / "tmp", tmp_path / "state.sh"
    work.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLCHAIN_")}
    env.update(FULLCHAIN_HOME=str(tmp_path / "home"), FULLCHAIN_PASSWORD=PASSWORD, TMPDIR=str(tmp),
               README_STATE=str(state), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    outputs = []
    for number, block in enumerate(blocks, 1):
        script = tmp_path / f"block{number}.sh"
        script.write_text(PRELUDE + block, encoding="utf-8")
        out = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600, stdin=subprocess.DEVNULL)
        where = f"README block {number}:\n{block}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
        assert out.returncode == 0, where
        # An expected refusal is a clean one-line error, never a crash that `|| echo` would hide.
        assert "Traceback" not in out.stderr and "error: unexpected" not in out.stderr, where
        assert out.stdout.count("refused, as expected") == block.count('echo "refused, as expected'), where
        outputs.append(out.stdout)

    demo = outputs[0]
    assert "refused, cro without a license: cro holds no license" in demo
    datasets = next(out for block, out in zip(blocks, outputs) if "dataset erase" in block)
    agent = next(out for block, out in zip(blocks, outputs) if "agent start" in block)
    assert "agent for profile 'hospital' running" in agent and "agent for profile 'hospital' stopped" in agent
    assert "is NOT authorized to use dataset 1" in datasets
    assert "2 (1 erased)" in datasets
