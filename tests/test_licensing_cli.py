"""The licensing story through the installed CLI: three profiles (plus a patient) on the
embedded chain, each refusal distinct and with exit code 1."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import fullchain
from fullchain.crypto import unwrap_key
from fullchain.errors import IntegrityError
from fullchain.keys import load_hpke_private_key
from fullchain.storage import cid as cids

from .conftest import DEMO_PASSWORD, run_cli

ENV = {"FULLCHAIN_PASSWORD": DEMO_PASSWORD}


def cli(*args: str) -> dict | list:
    out = run_cli(*args, "--json", env=ENV)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def refused(*args: str) -> str:
    out = run_cli(*args, env=ENV)
    assert out.returncode == 1, (args, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    return out.stderr.strip()


@pytest.fixture
def story(home: Path, demo_copy: Callable[[str], str]) -> Path:
    demo_copy(ENV["FULLCHAIN_PASSWORD"])  # hospital, pharma, cro; dataset 1 owned by hospital
    return home / "demo" / "dm.csv"


def test_license_lifecycle_end_to_end(story: Path, home: Path, tmp_path: Path) -> None:
    original = story.read_bytes()
    out = tmp_path / "out.csv"

    # No license at all (the demo licensed the cro on dataset 1, so to attest it: not the clinic).
    assert "holds no license for dataset 1" in refused("-p", "clinic", "dataset", "fetch", "1", "-o", str(out))

    # Request, grant, licensed fetch decrypts to the original bytes.
    rid = cli("-p", "pharma", "license", "request", "1", "--purpose", "DUO:0000006", "--term", "30d",
              "--modifier", "DUO:0000046")["request_id"]
    assert [r["id"] for r in cli("-p", "hospital", "license", "list", "--incoming") if r["status"] == "requested"] == [rid]
    granted = cli("-p", "hospital", "license", "grant", str(rid))
    assert granted["license_id"] == rid and granted["license"]["modifiers"] == ["DUO:0000046"]
    cli("-p", "pharma", "dataset", "fetch", "1", "-o", str(out))
    assert out.read_bytes() == original
    assert cli("-p", "clinic", "license", "check", "1", "--purpose", "DUO:0000007", "--disease", "MONDO:0005015",
               "--account", "pharma")["authorized"] is True  # HMB covers disease-specific research
    out.unlink()

    # Wrong purpose: an HMB license does not authorize general research use.
    assert "no license of yours covers GRU" in refused("-p", "pharma", "dataset", "fetch", "1", "-o", str(out),
                                                      "--purpose", "DUO:0000042")
    gru = run_cli("-p", "pharma", "license", "check", "1", "--purpose", "GRU", env=ENV)
    assert gru.returncode == 1 and "is NOT authorized" in gru.stdout

    # Consent withdrawn by the patient blocks every use.
    cli("init", "--profile", "patient")
    pid = cli("-p", "hospital", "member", "propose", "admit", "patient", "--roles", "patient")["proposal_id"]
    cli("-p", "pharma", "member", "vote", str(pid))
    cli("-p", "patient", "member", "execute", str(pid))
    assert "DataUseLicensingNotOwner" in refused("-p", "pharma", "consent", "require", "1", "--patient", "patient")
    cli("-p", "hospital", "consent", "require", "1", "--patient", "patient")
    assert "DataUseLicensingNotPatient" in refused("-p", "pharma", "consent", "withdraw", "1")
    assert cli("-p", "patient", "consent", "withdraw", "1")["given"] is False
    assert "the patient withdrew consent for dataset 1" in refused("-p", "pharma", "dataset", "fetch", "1", "-o", str(out))
    cli("-p", "patient", "consent", "give", "1")
    cli("-p", "pharma", "dataset", "fetch", "1", "-o", str(out))
    assert out.read_bytes() == original
    out.unlink()

    # Expired: a license granted for a few seconds.
    short = cli("-p", "clinic", "license", "request", "1", "--purpose", "HMB", "--term", "6s")["request_id"]
    cli("-p", "hospital", "license", "grant", str(short))
    # The demo moved the development chain's clock ~2 h ahead (to finalize its metering epoch),
    # and blocks then tick one second each until the wall clock catches up: move it on again.
    chain = fullchain.connect("hospital", home=home, password=ENV["FULLCHAIN_PASSWORD"]).w3
    ahead = chain.eth.get_block("latest")["timestamp"] + 7
    assert chain.provider.make_request("testing_timeTravel", [ahead]).get("error") is None
    assert f"license {short} for dataset 1 expired at" in refused("-p", "clinic", "dataset", "fetch", "1", "-o", str(out))

    # Revoked: refused at once, and the version added afterwards never reaches pharma.
    cli("-p", "hospital", "license", "revoke", str(rid))
    assert f"license {rid} for dataset 1 was revoked" in refused("-p", "pharma", "dataset", "fetch", "1", "-o", str(out))
    newer = tmp_path / "dm-v2.csv"
    newer.write_bytes(original + original.splitlines(keepends=True)[-1])  # one more row, same columns
    assert cli("-p", "hospital", "dataset", "version", "1", str(newer))["version"] == 2
    assert f"license {rid} for dataset 1 was revoked" in refused("-p", "pharma", "dataset", "fetch", "1",
                                                               "--version", "2", "-o", str(out))
    assert not out.exists()

    # Even reading storage directly: no bundle for version 2 was made for pharma, and the only
    # one that exists (the owner's) does not open with pharma's key.
    pharma = fullchain.connect("pharma", password=ENV["FULLCHAIN_PASSWORD"])
    assert bytes(pharma.licensing.contract.functions.keyBundle(rid, 2).call()) == b"\0" * 32
    v2 = pharma.datasets.version(1, 2)
    owner_digest = bytes(pharma.datasets.contract.functions.keyBundle(1, 2, pharma.datasets.owner_of(1)).call())
    owner_bundle = b"".join(pharma.store.cat(cids.to_str(cids.make_cid(cids.RAW, owner_digest))))
    pharma_key = load_hpke_private_key(home / "profiles" / "pharma", ENV["FULLCHAIN_PASSWORD"], profile="pharma")
    with pytest.raises(IntegrityError):
        unwrap_key(pharma_key, owner_bundle)
    ciphertext = b"".join(pharma.store.cat(v2.payload_cid))
    assert newer.read_bytes()[:40] not in ciphertext


def test_a_valid_licensee_gets_keys_for_new_versions(story: Path, tmp_path: Path) -> None:
    rid = cli("-p", "cro", "license", "request", "1", "--purpose", "GRU", "--term", "30d")["request_id"]
    cli("-p", "hospital", "license", "grant", str(rid))
    newer = tmp_path / "v2.csv"
    newer.write_bytes(b"STUDYID\nFC-002\n")
    cli("-p", "hospital", "dataset", "version", "1", str(newer))
    out = tmp_path / "cro-v2.csv"
    cli("-p", "cro", "dataset", "fetch", "1", "--version", "2", "-o", str(out))
    assert out.read_bytes() == newer.read_bytes()
    assert cli("-p", "cro", "dataset", "verify", "1", str(newer))["matches"] is True


def test_narrowing_and_bad_codes(story: Path) -> None:
    rid = cli("-p", "pharma", "license", "request", "1", "--purpose", "HMB", "--term", "30d")["request_id"]
    # Who may grant is said first, not a missing key (item 7.25); local accounts by profile name.
    assert f"only the owner of dataset 1 (hospital) or a delegate it named may grant license {rid}, and cro is " \
           f"neither" in refused("-p", "cro", "license", "grant", str(rid))
    assert f"license {rid} is your own request" in refused("-p", "pharma", "license", "grant", str(rid))
    widened = refused("-p", "hospital", "license", "grant", str(rid), "--narrow", "GRU")
    assert "DataUseLicensingPurposeWidened" in widened
    lic = cli("-p", "hospital", "license", "grant", str(rid), "--narrow", "DS", "--disease", "MONDO:0005015")
    assert lic["license"]["purpose_label"] == "DS(MONDO:0005015)"
    bad = refused("-p", "pharma", "license", "request", "1", "--purpose", "DUO:9999999", "--term", "30d")
    assert "unknown DUO code 'DUO:9999999'" in bad and "DUO:0000006 (HMB)" in bad
    assert "needs a disease term" in refused("-p", "pharma", "license", "request", "1", "--purpose", "DS", "--term", "9d")
    assert "is a data use modifier, not a purpose" in refused("-p", "pharma", "license", "request", "1",
                                                             "--purpose", "NCU", "--term", "9d")
    assert "there is no license or request 999" in refused("-p", "hospital", "license", "grant", "999")
    again = cli("-p", "pharma", "license", "request", "1", "--purpose", "HMB", "--term", "1d")["request_id"]
    assert "longer than the term requested" in refused("-p", "hospital", "license", "grant", str(again),
                                                       "--expires", "2d")
