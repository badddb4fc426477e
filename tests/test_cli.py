"""The `fullchain` command as users run it: a real FULLCHAIN_HOME, output and exit codes."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import DEMO_PASSWORD, AnvilNode, free_port, run_cli

PW = {"FULLCHAIN_PASSWORD": DEMO_PASSWORD}


DIMENSIONS = ("data", "algorithm", "compute")


@pytest.fixture
def demo_run(home: Path, demo_copy: Callable[[str], str]) -> tuple[Path, str]:
    stdout = demo_copy(PW["FULLCHAIN_PASSWORD"])
    assert "hospital, governor" in stdout and "cro" in stdout
    return home, stdout


@pytest.fixture
def demo_home(demo_run: tuple[Path, str]) -> Path:
    return demo_run[0]


def one_line_error(out, code: int = 1) -> str:  # noqa: ANN001
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_demo_state_is_seen_by_a_separate_run(demo_home: Path) -> None:
    out = run_cli("--profile", "hospital", "member", "list", "--json", env=PW)
    assert out.returncode == 0, out.stderr
    members = json.loads(out.stdout)
    assert [(m["profile"], m["roles"], m["status"]) for m in members] == [
        ("hospital", ["hospital", "governor"], "active"),
        ("pharma", ["pharma", "governor"], "active"),
        ("clinic", ["hospital"], "active"),
        ("volunteer", ["patient"], "active"),
        ("cro", ["cro", "attester"], "active"),
    ]
    # Reads need no password at all.
    assert run_cli("--profile", "cro", "member", "list", env={"FULLCHAIN_PASSWORD": ""}).returncode == 0


def test_demo_refuses_to_overwrite_state(demo_home: Path) -> None:
    line = one_line_error(run_cli("demo", env=PW))
    assert "already holds fullchain state" in line and "--reset" in line
    again = run_cli("demo", "--reset", "--json", env=PW)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert len(result["members"]) == 5
    epoch = result["epoch"]
    assert epoch["state"] == "finalized" and epoch["records"] == 5 and result["clock_advanced_seconds"] > 7200 - 60
    assert {r["kind"] for r in result["records"]} == {"data", "algorithm", "gpu"}
    assert all(r["counted"] and r["attesters"] == [result["profiles"]["cro"]] for r in result["records"])
    for dim in DIMENSIONS:
        points = [int(m["points"][dim]) for m in epoch["members"]]
        shares = [m["shares_bps"][dim] for m in epoch["members"]]
        assert sum(points) == int(epoch["totals"][dim]) > 0
        assert 10_000 - len(shares) < sum(shares) <= 10_000  # each share is rounded down
    # The pool: funded by pharma, claimed by the hospitals, the cro (operations) and the patient;
    # every figure in base units, as strings.
    pool, profiles = result["pool"], result["profiles"]
    assert pool["epoch"] == epoch["epoch"] and pool["state"] == "open for claims"
    assert pool["deposited"] == result["funding"]["amount"] == "12345678901234567890123"
    assert pool["split"]["operations"] == profiles["cro"] and result["funding"]["permit"]
    paid = {name: int(c["total"]) for name, c in result["claims"].items()}
    assert set(paid) == {"hospital", "clinic", "cro", "volunteer"} and all(paid.values())
    shares = {a["account"]: a for a in pool["accounts"]}
    assert {name: int(shares[profiles[name]]["claimed"]) for name in paid} == paid
    assert int(shares[profiles["pharma"]]["claimable"]) == int(shares[profiles["pharma"]]["entitled"]) > 0
    assert int(pool["deposited"]) == sum(paid.values()) + int(pool["claimable"]) + int(pool["dust"])
    assert 0 <= int(pool["dust"]) <= 5 + 4 * len(paid) and pool["swept"] == "0"


def test_demo_ends_with_the_epoch_shares(demo_run: tuple[Path, str]) -> None:
    """The last table: each member's points and share in the three dimensions, per dimension
    adding up to the epoch's total and to 100% (less what rounding each share down leaves)."""
    import re
    from decimal import Decimal

    home, text = demo_run
    tail = text[text.index("Points and shares"):text.index("Benefit distribution")]
    header = next(line for line in tail.splitlines() if "member" in line)
    assert re.findall(r"\w+", header) == ["member", *DIMENSIONS]
    rows = {}
    for line in tail.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] in ("hospital", "clinic", "pharma"):
            rows[cells[0]] = [re.fullmatch(r"(\d+) \((\d+\.\d\d)%\)", c).groups() for c in cells[1:]]
    assert set(rows) == {"hospital", "clinic", "pharma"}
    for i, dim in enumerate(DIMENSIONS):
        total = int(re.search(rf"total {dim} +(\d+)", text).group(1))
        assert sum(int(r[i][0]) for r in rows.values()) == total > 0
        assert 100 - 0.03 < sum(float(r[i][1]) for r in rows.values()) <= 100
    assert float(rows["pharma"][2][1]) == 100 and int(rows["hospital"][0][0]) > int(rows["clinic"][0][0])
    assert "advanced the development chain's clock" in text and "state            finalized" in text
    # Then the pool, to the last unit.
    pool = text[text.index("Benefit distribution, epoch"):]
    for name in ("hospital", "clinic", "cro", "volunteer"):
        assert re.search(rf"^  {name} claimed [0-9.]+ FCS$", pool, flags=re.M), name
    balance = re.search(r"^balance: deposits ([0-9.]+) FCS = claims ([0-9.]+) FCS \+ remaining ([0-9.]+) FCS "
                        r"\+ dust ([0-9.]+) FCS$", pool, flags=re.M)
    assert balance is not None, pool
    units = [round(Decimal(x) * 10**18) for x in balance.groups()]
    assert units[0] == 12_345_678_901_234_567_890_123 == units[1] + units[2] + units[3]


def test_governance_round_trip(demo_home: Path) -> None:
    new = run_cli("init", "--profile", "regulator", "--json", env=PW)
    assert new.returncode == 0, new.stderr
    account = json.loads(new.stdout)["address"]
    proposed = run_cli("-p", "hospital", "member", "propose", "admit", "regulator", "--roles", "regulator,auditor",
                       "--json", env=PW)
    assert proposed.returncode == 0, proposed.stderr
    pid = str(json.loads(proposed.stdout)["proposal_id"])
    early = run_cli("-p", "regulator", "member", "execute", pid, env=PW)
    assert "ConsortiumNotEnoughApprovals" in one_line_error(early)
    refused = run_cli("-p", "cro", "member", "vote", pid, "--json", env=PW)
    assert refused.returncode == 1
    error = json.loads(refused.stdout)["error"]
    assert error["contract_error"] == "ConsortiumNotGovernor"
    assert "ask a governor" in error["hint"]
    assert run_cli("-p", "pharma", "member", "vote", pid, env=PW).returncode == 0
    assert run_cli("-p", "regulator", "member", "execute", pid, env=PW).returncode == 0
    shown = json.loads(run_cli("-p", "cro", "member", "show", account, "--json", env=PW).stdout)
    assert shown["status"] == "active" and shown["roles"] == ["regulator", "auditor"]


def test_wrong_password(demo_home: Path) -> None:
    out = run_cli("-p", "cro", "member", "propose", "threshold", "1", env={"FULLCHAIN_PASSWORD": "nope"})
    assert "wrong password for profile 'cro'" in one_line_error(out)


def test_password_file_and_missing_password(demo_home: Path, tmp_path: Path) -> None:
    pw_file = tmp_path / "pw.txt"
    pw_file.write_text(PW["FULLCHAIN_PASSWORD"] + "\n")
    ok = run_cli("-p", "hospital", "member", "propose", "threshold", "1", "--password-file", str(pw_file))
    assert ok.returncode == 0, ok.stderr
    missing = run_cli("-p", "hospital", "member", "propose", "threshold", "1", input="")
    assert "a password is needed" in one_line_error(missing)


def test_unreachable_rpc_url(home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(run_cli("init", "--profile", "x", "--chain", url, env=PW))
    assert f"cannot reach the JSON-RPC node at {url}" in line
    assert not (home / "profiles" / "x").exists()  # nothing half-created


def test_unknown_profile(demo_home: Path) -> None:
    line = one_line_error(run_cli("-p", "nobody", "member", "list", env=PW))
    assert "no profile 'nobody'" in line and "cro, hospital, pharma" in line


def test_malformed_address(demo_home: Path) -> None:
    assert "is not an Ethereum address" in one_line_error(run_cli("-p", "cro", "member", "show", "0x12", env=PW))
    bad_checksum = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 example, one letter flipped
    assert "wrong checksum" in one_line_error(run_cli("-p", "cro", "member", "show", bad_checksum, env=PW))


def test_usage_errors_exit_2(demo_home: Path) -> None:
    assert run_cli("member", "frobnicate").returncode == 2
    assert run_cli("-p", "cro", "member", "propose", "admit", "cro").returncode == 2  # --roles missing


def test_invalid_role_and_duration(demo_home: Path) -> None:
    line = one_line_error(run_cli("-p", "hospital", "member", "propose", "roles", "cro", "--roles", "janitor", env=PW))
    assert "unknown role 'janitor'" in line and "hospital" in line


def test_init_and_deploy_on_anvil(home: Path, anvil: AnvilNode) -> None:
    """An RPC profile gets no embedded funding; fund it from anvil's dev account, then deploy."""
    from eth_account import Account
    from fullchain.backends.rpc import open_rpc
    from fullchain.transactions import Transactor

    from .conftest import ANVIL_MNEMONIC

    out = run_cli("init", "--profile", "node", "--chain", anvil.url, "--json", env=PW)
    assert out.returncode == 0, out.stderr
    address = json.loads(out.stdout)["address"]
    broke = run_cli("-p", "node", "chain", "deploy", env=PW)
    assert "cannot pay for gas" in one_line_error(broke)
    Account.enable_unaudited_hdwallet_features()
    funder = Account.from_mnemonic(ANVIL_MNEMONIC)
    Transactor(open_rpc(anvil.url), lambda: funder, funder.address).transfer(address, 10**18)
    deployed = run_cli("-p", "node", "chain", "deploy", "--founder", "node:governor,regulator", "--json", env=PW)
    assert deployed.returncode == 0, deployed.stderr
    status = json.loads(run_cli("-p", "node", "chain", "status", "--json", env=PW).stdout)
    assert status["backend"] == "rpc" and status["contracts"] == json.loads(deployed.stdout)["contracts"]
    assert status["member"]["roles"] == ["regulator", "governor"] and status["threshold"] == 1


def test_verify_names_the_version_a_modified_file_does_not_match(demo_home: Path, tmp_path: Path) -> None:
    original = demo_home / "demo" / "dm.csv"
    ok = run_cli("-p", "hospital", "dataset", "verify", "1", str(original), env=PW)
    assert ok.returncode == 0 and "matches dataset 1 version 1" in ok.stdout
    modified = tmp_path / "dm-edited.csv"
    modified.write_bytes(original.read_bytes().replace(b"YEARS,F", b"YEARS,M", 1))
    line = one_line_error(run_cli("-p", "hospital", "dataset", "verify", "1", str(modified), env=PW))
    assert "does not match dataset 1 version 1" in line
    as_json = run_cli("-p", "hospital", "dataset", "verify", "1", str(modified), "--json", env=PW)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["matches"] is False


def test_a_new_version_keeps_the_metadata_unless_told(demo_home: Path, tmp_path: Path) -> None:
    newer = tmp_path / "dm-v2.csv"
    original = (demo_home / "demo" / "dm.csv").read_bytes()
    last = original.rstrip(b"\n").rsplit(b"\n", 1)[1]
    newer.write_bytes(original + last.replace(b"-0240,0240,", b"-0241,0241,") + b"\n")  # one more subject
    out = run_cli("-p", "hospital", "dataset", "version", "1", str(newer), "--subjects", "61", "--json", env=PW)
    assert out.returncode == 0, out.stderr
    shown = json.loads(run_cli("-p", "hospital", "dataset", "show", "1", "--json", env=PW).stdout)
    meta = shown["metadata"]
    assert (shown["latest"]["version"], shown["latest"]["standard"], shown["latest"]["tier"]) == (2, "sdtm", "restricted")
    assert meta["title"] == "FCDEMO01 site H01: demographics and outcomes (synthetic)"
    assert meta["data_use"] == ["DUO:0000006"]
    assert meta["subject_count"] == 61  # the one field given on the command line


def _ok(*args: str) -> str:
    out = run_cli(*args, env=PW)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


def test_people_read_profile_names_and_what_happened(demo_home: Path) -> None:
    """Local accounts appear by profile name; messages say what a command did, in words."""
    accounts = {name: json.loads((demo_home / "profiles" / name / "profile.json").read_text())["address"]
                for name in ("hospital", "pharma", "cro")}

    licenses = _ok("-p", "hospital", "license", "list")
    assert "pharma" in licenses and accounts["pharma"] not in licenses
    assert "owner         hospital" in _ok("-p", "cro", "dataset", "show", "1")
    assert ["profile", "pharma"] in [line.split() for line in _ok("-p", "cro", "member", "show", "pharma").splitlines()]
    rid = json.loads(_ok("-p", "pharma", "license", "request", "1", "--purpose", "HMB", "--term", "30d", "--json"))
    granted = _ok("-p", "hospital", "license", "grant", str(rid["request_id"]))
    assert f"license {rid['request_id']} granted to pharma for" in granted
    assert ["requester", "pharma"] in [line.split() for line in _ok("-p", "hospital", "license", "revoke",
                                                                   str(rid["request_id"])).splitlines()]

    # A refusal names the local account too (the error line, not only tables). (The cro holds a
    # license since the demo: it attested the dataset's measurement.)
    refused = one_line_error(run_cli("-p", "clinic", "dataset", "fetch", "1", "-o", str(demo_home / "x.csv"), env=PW))
    clinic = json.loads((demo_home / "profiles" / "clinic" / "profile.json").read_text())["address"]
    assert "clinic holds no license for dataset 1" in refused and clinic not in refused

    # chain status: what a data steward needs; the machinery stays in --json.
    status = _ok("-p", "hospital", "chain", "status")
    assert "ETH" not in status and str(demo_home) not in status
    assert "membership  active, roles: hospital, governor" in status
    assert "a proposal needs 2 of 2 governors" in status and "profile     hospital (" in status
    raw = json.loads(_ok("-p", "hospital", "chain", "status", "--json"))
    assert "balance_wei" in raw and raw["endpoint"]

    # Governance messages in words, not the contract's enum names.
    _ok("init", "--profile", "patient01")
    proposed = _ok("-p", "hospital", "member", "propose", "admit", "patient01", "--roles", "patient")
    assert "proposal 3: admit patient01 as patient" in proposed  # the demo's: admission, split
    _ok("-p", "pharma", "member", "vote", "3")
    executed = _ok("-p", "cro", "member", "execute", "3")
    assert executed.strip() == "executed proposal 3: admit patient01 as patient"
    assert "admit patient01 as patient" in _ok("-p", "cro", "member", "proposals")

    # Requiring consent is not giving it.
    required = _ok("-p", "hospital", "consent", "require", "1", "--patient", "patient01")
    assert "dataset 1 now requires the consent of patient01" in required and "given" not in required
    assert "consent of patient01 WITHDRAWN" in _ok("-p", "patient01", "consent", "withdraw", "1")

    # An erased version shows in the list.
    _ok("-p", "hospital", "dataset", "erase", "1", "--version", "1", "--yes")
    listed = _ok("-p", "hospital", "dataset", "list")
    assert "1 (1 erased)" in listed
