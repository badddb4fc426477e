"""Numbers the contracts' integer types cannot hold are refused by the SDK, naming the
parameter and its range, whichever client method they came through (not web3's MismatchedABI)."""
from __future__ import annotations

from pathlib import Path

import pytest

import fullchain
from fullchain.demo import run_demo
from fullchain.duo import parse_purpose
from fullchain.errors import InvalidInput

PW = "abi-ranges-pw"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("abi") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FULLCHAIN_PASSWORD", PW)
        run_demo(root)
    return root


def test_numbers_beyond_the_contracts_integers_are_invalid_input(home: Path) -> None:
    pharma = fullchain.connect("pharma", home=home, password=PW)
    hospital = fullchain.connect("hospital", home=home, password=PW)
    with pytest.raises(InvalidInput, match=r"licenseId 115792089237\.\.\. \(78 digits\) is out of range: it must "
                                           r"be 0 to 2\^256-1 \(uint256\)"):
        hospital.licensing.revoke(2**256 + 1)
    with pytest.raises(InvalidInput, match=r"licenseId -1 is out of range"):
        hospital.licensing.revoke(-1)
    with pytest.raises(InvalidInput, match=r"term .* is out of range: it must be 0 to 2\^64-1"):
        pharma.licensing.request(1, parse_purpose("DUO:0000006"), term_seconds=10**20 * 86400)
    with pytest.raises(InvalidInput, match=r"proposalId -3 is out of range"):
        hospital.consortium.approve(-3)
    with pytest.raises(fullchain.FullchainError, match=r"there is no dataset \d+$"):  # looked up first: a plain answer
        hospital.datasets.erase(2**256, 1)
