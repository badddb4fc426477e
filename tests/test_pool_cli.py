"""`fullchain pool` as users run it, on a shared embedded chain: amounts in the token's units,
JSON with big integers as strings, one-line refusals that say why, the split and the sweep
through governance proposals. Most commands run in this process through the CLI's own entry
point (`cli.main.main`: parsing, errors, exit codes); a few run as real subprocesses, to show
the installed command does the same (each costs seconds of imports on a busy machine)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from cli.main import main

from .conftest import run_cli
from .test_pool_sdk import PW, World, build_world, travel

ENV = {"FULLCHAIN_PASSWORD": PW}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("pool-cli-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("FULLCHAIN_HOME", str(home))
    mp.setenv("FULLCHAIN_PASSWORD", PW)
    yield build_world(home)
    mp.undo()


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run `fullchain ARGS` in this process, as the installed command would: exit code, stdout, stderr."""
    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)
    return run


def ok(out: Ran | subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


def one_line_error(out: Ran | subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_help_imports_no_chain_library() -> None:
    script = ("import sys\nfrom cli.main import main\ntry:\n    main(['pool', '--help'])\nexcept SystemExit:\n    pass\n"
              "print('web3' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert "claim" in done.stdout and done.stdout.strip().endswith("False")


def test_mint_fund_show_claim(world: World, cli: Callable[..., Ran]) -> None:
    epoch = str(world.epoch)
    assert "minted 100 FCS to pharma; it holds 100 FCS" in ok(cli("-p", "pharma", "pool", "mint", "pharma", "100"))
    line = one_line_error(cli("-p", "pharma", "pool", "fund", epoch, "1.0000000000000000001"))
    assert "1.0000000000000000001 FCS has 19 decimals; the token has 18" in line
    # The installed command, end to end.
    assert f"funded epoch {epoch} with 12.5 FCS (one transaction with a signed permit)" in ok(
        run_cli("-p", "pharma", "pool", "fund", epoch, "12.5", env=ENV))

    shown = json.loads(ok(cli("-p", "cro", "pool", "show", epoch, "--json")))
    assert shown["deposited"] == str(125 * 10**17) and shown["state"] == "open for claims"
    assert shown["token"]["symbol"] == "FCS" and shown["token"]["decimals"] == 18
    assert set(shown["budgets"]) == {"operations", "patients", "data", "algorithm", "compute"}
    assert all(isinstance(v, str) for v in shown["budgets"].values())
    shares = {a["account"]: a for a in shown["accounts"]}
    hospital = world["hospital"].address
    assert shares[hospital]["claimable"] == shares[hospital]["entitled"] != "0"
    assert set(shares[hospital]["parts"]) == {"data", "algorithm"}
    assert int(shown["deposited"]) == int(shown["claimed"]) + int(shown["claimable"]) + int(shown["swept"]) + int(
        shown["dust"])

    text = ok(cli("-p", "cro", "pool", "show", epoch))
    assert "balance: deposits 12.5 FCS = claims 0 FCS + remaining " in text
    assert "hospital" in text and "patient" in text and hospital not in text  # local accounts by name

    claimed = ok(cli("-p", "hospital", "pool", "claim"))  # no epoch: every final epoch with something due
    assert f"from epoch {epoch}" in claimed
    again = one_line_error(run_cli("-p", "hospital", "pool", "claim", epoch, env=ENV))
    assert "hospital already claimed its" in again and f"of epoch {epoch}" in again
    later = json.loads(ok(cli("-p", "patient", "pool", "claim", epoch, "--json")))
    assert later["paid"] == {epoch: shares[world["patient"].address]["entitled"]}
    text = ok(cli("-p", "cro", "pool", "show", epoch))
    assert "balance: deposits 12.5 FCS = claims " in text


def test_bad_input_is_one_line(world: World, cli: Callable[..., Ran]) -> None:
    far = str(world["pharma"].meter.current_epoch() + 100)
    assert f"epoch {far} has not started" in one_line_error(cli("-p", "cro", "pool", "show", far))
    assert f"epoch {far} is not final" in one_line_error(cli("-p", "hospital", "pool", "claim", far))
    assert "'ten' is not an amount" in one_line_error(cli("-p", "pharma", "pool", "fund", str(world.epoch), "ten"))
    assert "is not a whole number" in one_line_error(cli("-p", "pharma", "pool", "fund", "x", "1"), code=2)
    assert "only governors" in one_line_error(cli("-p", "hospital", "pool", "mint", "hospital", "1"))
    missing = one_line_error(cli("-p", "pharma", "pool", "split", "propose", "--operations", "cro"), code=2)
    assert "--operations-bps" in missing
    summed = one_line_error(cli("-p", "pharma", "pool", "split", "propose", "--operations", "cro", "--operations-bps",
                                "1000", "--patients-bps", "1000", "--data-bps", "1000", "--algorithm-bps", "1000",
                                "--compute-bps", "1000"))
    assert "add up to 5000 basis points, not 10000" in summed


def test_split_and_sweep_by_vote(world: World, cli: Callable[..., Ran]) -> None:
    pharma = world["pharma"]
    proposed = json.loads(ok(cli("-p", "pharma", "pool", "split", "propose", "--operations", "cro",
                                 "--operations-bps", "500", "--patients-bps", "1500", "--data-bps", "5000",
                                 "--algorithm-bps", "2000", "--compute-bps", "1000", "--json")))
    ok(cli("-p", "pharma", "member", "execute", str(proposed["proposal_id"])))
    current = str(pharma.meter.current_epoch())
    split = json.loads(ok(cli("-p", "cro", "pool", "show", current, "--json")))["split"]
    assert split["operations"] == world["cro"].address and split["data_bps"] == 5000

    epoch = str(world.epoch)
    assert f"epoch {epoch}'s claims are open until" in one_line_error(
        cli("-p", "pharma", "pool", "sweep", epoch, "--to", current))
    deadline = json.loads(ok(cli("-p", "cro", "pool", "show", epoch, "--json")))["claim_deadline"]
    travel(pharma, int(datetime.fromisoformat(deadline).timestamp()))
    current = str(pharma.meter.current_epoch())
    text = ok(cli("-p", "pharma", "pool", "sweep", epoch, "--to", current))
    pid = text.split()[1].rstrip(":")
    assert f"sweep what is left of epoch {epoch}'s pool into epoch {current}" in text
    ok(cli("-p", "pharma", "member", "execute", pid))
    swept = ok(cli("-p", "cro", "pool", "show", epoch))
    assert re.search(r"^state +swept$", swept, flags=re.M) and " + swept " in swept and "+ dust 0 FCS" in swept
    assert "was swept into epoch" in one_line_error(cli("-p", "clinic", "pool", "claim", epoch))
