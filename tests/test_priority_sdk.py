"""Priority-use rights through the SDK and the CLI, on the embedded chain: `register(...,
priority=...)` / `dataset register --priority 90d` opens the window in a second transaction, a
run stopped between the two is finished by running it again (declaring once), a refused
request names the day the window closes and the fix, and `dataset show` prints the window.

One consortium for the module (hospital, clinic, pharma, cro): the tests add datasets to it and
never depend on each other's."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from web3.middleware import Web3Middleware

import fullchain
from fullchain.duo import parse_purpose
from fullchain.errors import InvalidInput
from fullchain.journal import Journal
from fullchain.licensing import PriorityWindowOpen
from fullchain.metadata import build_metadata
from fullchain.models import Role

from .conftest import run_cli

PW = "priority-tests"
DAY = 86400
GRU = parse_purpose("GRU")
ROLES = {"hospital": Role.HOSPITAL | Role.GOVERNOR, "clinic": Role.HOSPITAL, "pharma": Role.PHARMA,
         "cro": Role.CRO}


class Interrupted(Exception):
    """Stands for the node going away (or a crash) between the registration's two transactions."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, fullchain.Fullchain]]]:
    """The consortium; hospital owns dataset 1 and clinic dataset 2."""
    root = tmp_path_factory.mktemp("priority")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FULLCHAIN_HOME", str(home))
        mp.setenv("FULLCHAIN_PASSWORD", PW)
        for name in ROLES:
            fullchain.init(name, password=PW)
        fcs = {name: fullchain.connect(name, password=PW) for name in ROLES}
        fcs["hospital"].deploy([fullchain.Founder(fc.address, ROLES[name], bytes.fromhex(fc.profile.hpke_public_key[2:]))
                                for name, fc in fcs.items()], threshold=1)
        for owner in ("hospital", "clinic"):
            fcs[owner].datasets.register(_file(root, f"{owner}.bin"), build_metadata(title=f"{owner} trial"))
        yield home, fcs


def _file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_bytes(os.urandom(2000))
    return path


def _cli(home: Path, *args: str):  # noqa: ANN202
    return run_cli(*args, env={"FULLCHAIN_HOME": str(home), "FULLCHAIN_PASSWORD": PW})


def _declarations(fc: fullchain.Fullchain, dataset_id: int) -> list[int]:
    event = fc.licensing.contract.events.PriorityWindowDeclared()
    return [log["args"]["closesAt"] for log in event.get_logs(from_block=0, argument_filters={"datasetId": dataset_id})]


def test_register_with_a_priority_window_and_who_may_request(world, tmp_path: Path) -> None:  # noqa: ANN001
    _, fcs = world
    pharma = fcs["pharma"]
    reg = pharma.datasets.register(_file(tmp_path, "result.bin"), build_metadata(title="result"),
                                   derived_from=[1, 2], priority=90 * DAY)
    registered_at = pharma.datasets.get(reg.dataset_id).created_at
    assert reg.priority_closes_at is not None
    assert 90 * DAY <= (reg.priority_closes_at - registered_at).total_seconds() <= 90 * DAY + 60
    assert pharma.licensing.priority_window(reg.dataset_id) == reg.priority_closes_at
    assert pharma.licensing.priority_window(1) is None

    with pytest.raises(PriorityWindowOpen) as refused:
        fcs["cro"].licensing.request(reg.dataset_id, GRU, term_seconds=30 * DAY)
    when = f"{reg.priority_closes_at:%Y-%m-%d %H:%M} UTC"
    assert refused.value.closes_at == reg.priority_closes_at and refused.value.parents == [1, 2]
    assert refused.value.diagnostics() == (
        f"dataset {reg.dataset_id} is in its priority window until {when}: until then only the owners of the "
        f"datasets it derives from (1, 2) may request it: ask the owner of a parent dataset, or request after {when}")
    for parent_owner in ("hospital", "clinic"):
        lid = fcs[parent_owner].licensing.request(reg.dataset_id, GRU, term_seconds=30 * DAY)
        assert fcs[parent_owner].licensing.get(lid).status == "requested"
    assert _declarations(pharma, reg.dataset_id) == [int(reg.priority_closes_at.timestamp())]


def test_bad_priority_windows_are_refused_before_anything_is_sent(world, tmp_path: Path) -> None:  # noqa: ANN001
    _, fcs = world
    pharma = fcs["pharma"]
    count = pharma.datasets.contract.functions.datasetCount().call()
    nonce = pharma.w3.eth.get_transaction_count(pharma.address)
    src = _file(tmp_path, "x.bin")
    with pytest.raises(InvalidInput, match="a priority window needs parent datasets"):
        pharma.datasets.register(src, build_metadata(title="x"), priority=90 * DAY)
    for seconds, days in ((DAY - 1, "0.999988"), (366 * DAY, "366")):
        with pytest.raises(InvalidInput, match=rf"a priority window of {days} days \({seconds} s\) is out of range: "
                                               "it lasts from 1 day to 365 days"):
            pharma.datasets.register(src, build_metadata(title="x"), derived_from=[1], priority=seconds)
    with pytest.raises(InvalidInput, match="at most 16 parents, not 17"):
        pharma.datasets.register(src, build_metadata(title="x"), derived_from=[1] * 17, priority=DAY)
    assert pharma.datasets.contract.functions.datasetCount().call() == count
    assert pharma.w3.eth.get_transaction_count(pharma.address) == nonce

    with pytest.raises(fullchain.FullchainError, match=f"dataset {count} is owned by {pharma.address}, not by this"):
        fcs["hospital"].licensing.declare_priority_window(count, 30 * DAY)  # pharma's or cro's, not hospital's
    with pytest.raises(InvalidInput, match="needs parent datasets"):
        fcs["hospital"].licensing.declare_priority_window(1, 30 * DAY)


def test_a_registration_stopped_between_its_two_transactions_is_finished_by_running_it_again(
        world, tmp_path: Path) -> None:  # noqa: ANN001
    _, fcs = world
    pharma = fcs["pharma"]
    declare = pharma.licensing.contract.functions.declarePriorityWindow(0, 0)._encode_transaction_data()[:10]

    class FailDeclaration(Web3Middleware):
        """The node fails the declaration's first request: the dataset is anchored, no window yet."""

        def request_processor(self, method, params):  # noqa: ANN001, ANN202
            if method == "eth_estimateGas" and str(params[0].get("data", "")).startswith(declare):
                raise Interrupted("between the two transactions")
            return method, params

    journal = Journal(pharma.home / "journal" / "pharma")
    meta = build_metadata(title="result, resumed")
    for name in ("a.bin", "b.bin"):
        src = _file(tmp_path, name)
        pharma.w3.middleware_onion.add(FailDeclaration, "fail_declaration")
        try:
            with pytest.raises(Interrupted):
                pharma.datasets.register(src, meta, derived_from=[1], priority=30 * DAY)
        finally:
            pharma.w3.middleware_onion.remove("fail_declaration")
        dataset_id = pharma.datasets.contract.functions.datasetCount().call()
        assert pharma.datasets.owner_of(dataset_id) == pharma.address
        assert pharma.licensing.priority_window(dataset_id) is None and journal.entries()

        if name == "b.bin":  # stopped after the declaration instead: it was mined, the journal not closed
            pharma.licensing.declare_priority_window(dataset_id, 7 * DAY)
        again = pharma.datasets.register(src, meta, derived_from=[1], priority=30 * DAY)
        assert (again.dataset_id, again.resumed, again.uploaded) == (dataset_id, True, False)
        assert pharma.datasets.contract.functions.datasetCount().call() == dataset_id  # no second dataset
        assert not journal.entries()
        declared = _declarations(pharma, dataset_id)
        assert declared == [int(again.priority_closes_at.timestamp())]  # declared exactly once
        opened = pharma.datasets.get(dataset_id).created_at
        length = 7 * DAY if name == "b.bin" else 30 * DAY
        assert length <= declared[0] - opened.timestamp() <= length + 60
        with pytest.raises(PriorityWindowOpen):
            fcs["cro"].licensing.request(dataset_id, GRU, term_seconds=DAY)


def test_cli_register_show_and_the_refused_request(world, tmp_path: Path) -> None:  # noqa: ANN001
    home, fcs = world
    src = _file(tmp_path, "cli.bin")
    usage = _cli(home, "-p", "pharma", "dataset", "register", str(src), "--title", "r", "--priority", "90d")
    assert usage.returncode == 2
    assert usage.stderr.strip().splitlines() == [
        "error: --priority needs --derived-from: only a dataset derived from others has a priority window "
        "(see `fullchain dataset register --help`)"]

    out = _cli(home, "-p", "pharma", "dataset", "register", str(src), "--title", "r", "--derived-from", "1",
               "--derived-from", "2", "--priority", "90d", "--json")
    assert out.returncode == 0, out.stderr
    reg = json.loads(out.stdout)
    dataset_id = reg["dataset_id"]
    closes = fcs["pharma"].licensing.priority_window(dataset_id)
    assert datetime.fromisoformat(reg["priority_closes_at"]) == closes
    when = f"{closes:%Y-%m-%d %H:%M} UTC"

    shown = _cli(home, "-p", "cro", "dataset", "show", str(dataset_id))
    assert shown.returncode == 0, shown.stderr
    assert (f"\npriority      window open until {when}: only owners of its parent datasets may request it until "
            "then\n" in shown.stdout)

    refused = _cli(home, "-p", "cro", "license", "request", str(dataset_id), "--purpose", "GRU", "--term", "30d")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: dataset {dataset_id} is in its priority window until {when}: until then only the owners of the "
        f"datasets it derives from (1, 2) may request it (ask the owner of a parent dataset, or request after "
        f"{when})"]
