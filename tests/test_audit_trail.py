"""The audit trail and the license-at-time-of-use check, on one embedded-chain world built once:
hospital owns dataset 1 and dataset 2 (derived from 1); licenses are granted, renewed, rejected,
revoked and superseded; accesses are recorded; the patient of dataset 1 withdraws consent (and
the contract refuses the accesses attempted meanwhile) and gives it again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

import fullchain
from fullchain.audit import check_dataset, check_events, dataset_trail, member_trail, parse_bound
from fullchain.audit.trail import Bound, TrailEvent
from fullchain.audit.check import evidence
from fullchain.contracts import DATA_USE_LICENSING
from fullchain.duo import parse_purpose
from fullchain.errors import FullchainError, InvalidInput
from fullchain.metadata import build_metadata
from fullchain.metering.meter import dataset_subject
from fullchain.models import Role

from .conftest import ROOT, run_cli

PW = "audit-trail-tests"
ENV = {"FULLCHAIN_PASSWORD": PW, "FULLCHAIN_PROFILE": "auditor"}  # a profile that is no member
DAY = 86400
GRU = parse_purpose("GRU")
ROLES = {"hospital": Role.HOSPITAL | Role.GOVERNOR, "pharma": Role.PHARMA, "cro": Role.CRO, "patient": Role.PATIENT}

# Dataset 1's trail, in chain order (events of one transaction in log order).
TRAIL_1 = [
    "DatasetRegistered", "VersionRegistered", "KeyBundlePublished",
    "LicenseRequested", "LicenseGranted", "KeyDelivered",           # license 1 to pharma
    "AccessRecorded",                                                # pharma under license 1
    "LicenseRenewed",                                                # license 1
    "LicenseRequested", "LicenseRejected",                           # license 2 (cro)
    "LicenseRequested", "LicenseGranted", "KeyDelivered", "LicenseRevoked",  # license 3 (cro)
    "LicenseRequested", "LicenseSuperseded", "LicenseGranted", "KeyDelivered",  # license 4 replaces 1
    "ConsentRequired",
    "AccessRecorded",                                                # pharma under license 4
    "ConsentChanged",                                                # withdrawn (an access is refused)
    "ConsentChanged",                                                # given again
    "AccessRecorded",                                                # pharma under license 4
    "RecordSubmitted",                                               # hospital's data contribution
]
TRAIL_2 = ["DatasetRegistered", "VersionRegistered", "KeyBundlePublished",
           "LicenseRequested", "LicenseGranted", "KeyDelivered", "AccessRecorded"]  # license 5 to cro


def _access(fc: fullchain.Fullchain, license_id: int, version: int = 1) -> None:
    fc.transactor.call_function(fc.licensing.contract.functions.recordAccess(license_id, version, 0),
                                contract=DATA_USE_LICENSING)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("audit") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FULLCHAIN_HOME", str(home))
        mp.setenv("FULLCHAIN_PASSWORD", PW)
        mp.delenv("FULLCHAIN_PROFILE", raising=False)
        for name in (*ROLES, "auditor"):
            fullchain.init(name, password=PW)
        fc = {name: fullchain.connect(name, password=PW) for name in ROLES}
        fc["hospital"].deploy([fullchain.Founder(f.address, ROLES[n], bytes.fromhex(f.profile.hpke_public_key[2:]))
                               for n, f in fc.items()], threshold=1)
        hospital, pharma, cro, patient = fc["hospital"], fc["pharma"], fc["cro"], fc["patient"]
        src = home.parent / "v1.bin"
        src.write_bytes(os.urandom(600))
        d1 = hospital.datasets.register(src, build_metadata(title="trial")).dataset_id
        d2 = hospital.datasets.register(src, build_metadata(title="derived"), derived_from=[d1]).dataset_id
        l1 = pharma.licensing.request(d1, GRU, term_seconds=30 * DAY)
        hospital.licensing.grant(l1)
        _access(pharma, l1)
        hospital.licensing.renew(l1, term_seconds=20 * DAY)
        l2 = cro.licensing.request(d1, GRU, term_seconds=DAY)
        hospital.licensing.reject(l2)
        l3 = cro.licensing.request(d1, GRU, term_seconds=DAY)
        hospital.licensing.grant(l3)
        hospital.licensing.revoke(l3)
        l4 = pharma.licensing.request(d1, GRU, term_seconds=10 * DAY)
        hospital.licensing.grant(l4)
        l5 = cro.licensing.request(d2, GRU, term_seconds=DAY)
        hospital.licensing.grant(l5)
        _access(cro, l5)
        hospital.licensing.require_consent(d1, patient.address)
        _access(pharma, l4)
        patient.licensing.set_consent(d1, given=False)
        refused = []
        for who, lid in ((pharma, l4), (cro, l5)):  # consent withdrawn (for license 5: its ancestor's)
            with pytest.raises(FullchainError) as err:
                _access(who, lid)
            refused.append(str(err.value))
        patient.licensing.set_consent(d1, given=True)
        with pytest.raises(FullchainError) as err:  # license 1 was superseded by license 4
            _access(pharma, l1)
        refused.append(str(err.value))
        _access(pharma, l4)
        # A contribution record about version 1: the index files it under the dataset (its subject).
        hospital.meter.submit("data", dataset_subject(d1, 1), 1000, b'{"rows": 10}')
        index = hospital.read_index()
        yield {"home": home, "fc": fc, "index": index, "d1": d1, "d2": d2, "licenses": [l1, l2, l3, l4, l5],
               "refused": refused, "names": {f.address: n for n, f in fc.items()}}


def cli(*args: str) -> dict:
    out = run_cli(*args, "--json", env=ENV)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return json.loads(out.stdout)


def test_dataset_trail_holds_every_event_in_chain_order(world: dict) -> None:
    trail = dataset_trail(world["index"], world["d1"], limit=None, names=world["names"])
    assert [e.name for e in trail.events] == TRAIL_1 and trail.total == len(TRAIL_1)
    assert [e.position for e in trail.events] == sorted(e.position for e in trail.events)
    assert all(e.tx_hash.startswith("0x") and len(e.tx_hash) == 66 for e in trail.events)
    assert [e.timestamp for e in trail.events] == sorted(e.timestamp for e in trail.events)
    l1, l2, l3, l4, _ = world["licenses"]
    summaries = [e.summary for e in trail.events]
    assert summaries[0] == f"dataset {world['d1']} registered by hospital"
    assert summaries[3].startswith(f"license {l1} requested by pharma: GRU, term 30 d")
    assert summaries[4].startswith(f"license {l1} granted to pharma: GRU, version 1 and later versions, until")
    assert summaries[6] == f"pharma accessed version 1 (fetch) under license {l1}"
    assert summaries[9] == f"license {l2} rejected by hospital"
    assert summaries[13] == f"license {l3} revoked by hospital"
    assert summaries[15] == f"license {l1} superseded by license {l4}"
    assert summaries[20:22] == ["patient patient withdrew consent", "patient patient gave consent"]
    assert [e.account_name for e in trail.events if e.name == "AccessRecorded"] == ["pharma"] * 3
    assert summaries[-1].startswith("meter record 1 submitted by hospital") and trail.events[-1].dataset_id == world["d1"]
    assert [e.license_id for e in trail.events if e.name == "AccessRecorded"] == [l1, l4, l4]
    # Terms as granted: the grant's expiry, then the renewal's.
    grant, renewal = trail.events[4], trail.events[7]
    assert renewal.args["expiresAt"] < grant.args["expiresAt"]  # renewed for 20 d from later: shorter than 30 d
    derived = dataset_trail(world["index"], world["d2"], limit=None, names=world["names"])
    assert [e.name for e in derived.events] == TRAIL_2
    assert derived.events[0].summary == f"dataset {world['d2']} registered by hospital, derived from {world['d1']}"


def test_refused_accesses_leave_no_trace(world: dict) -> None:
    withdrawn, ancestor, superseded = world["refused"]
    assert "DataUseLicensingConsentWithdrawn" in withdrawn and "DataUseLicensingConsentWithdrawn" in ancestor
    assert "DataUseLicensingNotValid" in superseded
    assert sum(e.name == "AccessRecorded" for e in dataset_trail(world["index"], world["d1"], limit=None).events) == 3


def test_pages_are_the_full_scan_sliced(world: dict) -> None:
    full = dataset_trail(world["index"], world["d1"], limit=None).events
    for size in (1, 4, 7, 100):
        pages = [dataset_trail(world["index"], world["d1"], limit=size, offset=o) for o in range(0, len(full) + size, size)]
        assert [e for p in pages for e in p.events] == full
        assert {p.total for p in pages} == {len(full)}
    page = cli("audit", "trail", str(world["d1"]), "--limit", "5", "--offset", "5")
    assert [(e["block"], e["log_index"], e["name"]) for e in page["events"]] == \
           [(e.block, e.log_index, e.name) for e in full[5:10]]
    assert page["total"] == len(full) and page["offset"] == 5 and page["limit"] == 5


def test_from_and_to_by_block_and_by_time(world: dict) -> None:
    index, d1 = world["index"], world["d1"]
    full = dataset_trail(index, d1, limit=None).events
    accesses = [e for e in full if e.name == "AccessRecorded"]
    lo, hi = accesses[0].block, accesses[1].block
    ranged = dataset_trail(index, d1, start=Bound(block=lo), end=Bound(block=hi), limit=None).events
    assert ranged == [e for e in full if lo <= e.block <= hi] and ranged[0] == accesses[0] and ranged[-1] == accesses[1]
    at = accesses[1].timestamp
    by_time = dataset_trail(index, d1, start=parse_bound(at.strftime("%Y-%m-%dT%H:%M:%S")), limit=None).events
    assert by_time == [e for e in full if e.timestamp >= at]
    day = full[0].timestamp.date()
    assert dataset_trail(index, d1, start=parse_bound(day.isoformat()), end=parse_bound(
        full[-1].timestamp.date().isoformat(), end=True), limit=None).events == full
    assert dataset_trail(index, d1, end=parse_bound((day - timedelta(days=1)).isoformat(), end=True)).events == []
    empty = run_cli("audit", "trail", str(d1), "--to", (day - timedelta(days=1)).isoformat(), env=ENV)
    assert empty.returncode == 0 and f"Trail of dataset {d1}: no events in range" in empty.stdout
    out = cli("audit", "trail", str(d1), "--from", str(lo), "--to", str(hi))
    assert [e["name"] for e in out["events"]] == [e.name for e in ranged] and out["total"] == len(ranged)
    with pytest.raises(InvalidInput, match="neither a block number nor an ISO date"):
        parse_bound("yesterday")


def test_member_trail(world: dict) -> None:
    pharma = world["fc"]["pharma"].address
    trail = member_trail(world["index"], pharma, limit=None, names=world["names"])
    assert {e.account for e in trail.events} == {pharma}
    assert [e.name for e in trail.events] == ["AccountAllowlisted", "MemberAdmitted", "LicenseRequested", "LicenseGranted", "AccessRecorded",
                                              "LicenseRequested", "LicenseGranted", "AccessRecorded", "AccessRecorded"]
    assert trail.subject == f"account {pharma} (pharma)"
    by_name = cli("audit", "member", "pharma")
    assert by_name["account"] == pharma and [e["name"] for e in by_name["events"]] == [e.name for e in trail.events]
    assert cli("audit", "member", pharma.lower())["total"] == trail.total


def test_an_owners_trail_holds_what_it_did_on_its_datasets(world: dict) -> None:
    """Grants, renewals, key deliveries and supersessions are filed under the licensee, a required
    consent under the patient: the owner's own trail shows them too."""
    hospital = world["fc"]["hospital"].address
    trail = member_trail(world["index"], hospital, limit=None, names=world["names"])
    granted = [e.args["licenseId"] for e in trail.events if e.name == "LicenseGranted"]
    l1, _, l3, l4, l5 = world["licenses"]
    assert granted == [l1, l3, l4, l5] and all(e.account != hospital for e in trail.events
                                               if e.name == "LicenseGranted")
    names = [e.name for e in trail.events]
    assert {"LicenseRenewed", "KeyDelivered", "LicenseSuperseded", "ConsentRequired", "LicenseRevoked"} <= set(names)
    pharma = member_trail(world["index"], world["fc"]["pharma"].address, limit=None).events
    assert "KeyDelivered" not in [e.name for e in pharma]  # owns no dataset: only what is about it


def test_check_agrees_with_the_contract(world: dict) -> None:
    report = check_dataset(world["index"], world["d1"])
    assert report.ok and report.accesses == 3
    l1, _, _, l4, l5 = world["licenses"]
    assert [(v.license_id, v.license_status) for v in report.verdicts] == [(l1, "granted"), (l4, "granted"), (l4, "granted")]
    derived = check_dataset(world["index"], world["d2"])
    assert derived.ok and [v.license_id for v in derived.verdicts] == [l5]
    out = cli("audit", "check", str(world["d1"]))
    assert out["ok"] is True and out["accesses"] == 3 and out["uncovered"] == 0
    assert out["verdicts"] == [] and out["listed"] == "uncovered"
    every = cli("audit", "check", str(world["d1"]), "--all")
    assert [(v["license_id"], v["covered"], v["access"]["name"]) for v in every["verdicts"]] == \
           [(str(l1), True, "AccessRecorded"), (str(l4), True, "AccessRecorded"), (str(l4), True, "AccessRecorded")]
    text = run_cli("audit", "check", str(world["d1"]), "--all", env=ENV)
    assert text.returncode == 0 and "3 of 3 covered" in text.stdout and text.stdout.count("covered") == 4


def _edit(events: list[TrailEvent], index: int, **changes) -> list[TrailEvent]:  # noqa: ANN003
    out = list(events)
    out[index] = out[index].model_copy(update=changes)
    return out


def _rules(events: list[TrailEvent], dataset_id: int) -> list[list[str]]:
    return [[x.rule for x in v.violations] for v in check_events(events, dataset_id).verdicts]


def test_check_flags_a_tampered_trail(world: dict) -> None:
    d1, d2 = world["d1"], world["d2"]
    l4 = world["licenses"][3]
    events = evidence(world["index"], d1)
    assert _rules(events, d1) == [[], [], []]
    pos = {name: [i for i, e in enumerate(events) if e.name == name] for name in {e.name for e in events}}
    first_access, second_access, third_access = pos["AccessRecorded"]

    def without(i: int) -> list[TrailEvent]:
        return events[:i] + events[i + 1:]

    # The grant of license 1 left out: its access used a license never granted.
    assert _rules(without(pos["LicenseGranted"][0]), d1)[0] == ["not-granted"]
    # The request left out: nothing to judge the access against.
    assert _rules(without(pos["LicenseRequested"][0]), d1)[0] == ["unknown-license"]
    # The withdrawal moved to just before the second access (the trail says it came later).
    withdrawal = pos["ConsentChanged"][0]
    moved = events[:withdrawal] + events[withdrawal + 1:]
    moved.insert(second_access, events[withdrawal].model_copy(update={
        "block": events[second_access].block, "tx_index": events[second_access].tx_index,
        "log_index": events[second_access].log_index - 1}))
    assert _rules(moved, d1)[1] == ["consent-withdrawn"]
    # "given" flipped on the re-consent: the third access happened while consent was withdrawn.
    regiven = pos["ConsentChanged"][1]
    assert _rules(_edit(events, regiven, args={**events[regiven].args, "given": False}), d1)[2] == ["consent-withdrawn"]
    # The revocation of license 3 re-dated onto license 4: the accesses after it were under a revoked license.
    revocation = pos["LicenseRevoked"][0]
    assert _rules(_edit(events, revocation, args={**events[revocation].args, "licenseId": l4},
                        block=events[second_access].block - 0, tx_index=0, log_index=-1), d1)[1:] == [["revoked"]] * 2
    # An access re-dated after the license's expiry, by another account, for another version.
    late = events[first_access].timestamp + timedelta(days=40)
    assert _rules(_edit(events, third_access, timestamp=late), d1)[2] == ["expired"]
    other = world["fc"]["cro"].address
    assert _rules(_edit(events, first_access, args={**events[first_access].args, "licensee": other}), d1)[0] == \
           ["not-licensee"]
    assert _rules(_edit(events, first_access, args={**events[first_access].args, "version": 2}), d1)[0] == \
           ["version-not-covered"]
    # pharma's admission left out: it was never a member.
    pharma = world["fc"]["pharma"].address
    admitted = next(i for i, e in enumerate(events) if e.name == "MemberAdmitted" and e.args["account"] == pharma)
    assert _rules(without(admitted), d1) == [["not-member"]] * 3
    # Superseded: the supersession of license 1 moved before its access.
    supersession = pos["LicenseSuperseded"][0]
    early = _edit(events, supersession, block=events[first_access].block, tx_index=events[first_access].tx_index,
                  log_index=events[first_access].log_index - 1)
    assert _rules(early, d1)[0] == ["superseded"]
    # Dataset 2: the ancestor's consent withdrawal (dataset 1) moved before cro's access.
    derived = evidence(world["index"], d2)
    assert _rules(derived, d2) == [[]]
    access = next(e for e in derived if e.name == "AccessRecorded")
    required = next(e for e in derived if e.name == "ConsentRequired")
    withdrawn = next(e for e in derived if e.name == "ConsentChanged" and not e.args["given"])
    forged = [e for e in derived if e not in (required, withdrawn)] + [
        required.model_copy(update={"block": access.block, "tx_index": access.tx_index, "log_index": access.log_index - 2}),
        withdrawn.model_copy(update={"block": access.block, "tx_index": access.tx_index, "log_index": access.log_index - 1})]
    verdict = check_events(forged, d2).verdicts[0]
    assert [x.rule for x in verdict.violations] == ["consent-withdrawn"]
    assert f"dataset {d1} (an ancestor of dataset {d2})" in verdict.violations[0].detail


def test_cli_check_exits_1_on_an_uncovered_access(world: dict) -> None:
    """An edited index (the cache a view reads) yields an uncovered access: reported, exit 1."""
    conn = world["index"]._conn
    row = conn.execute("SELECT * FROM events WHERE name = 'LicenseGranted' AND license_id = ?",
                       (world["licenses"][0],)).fetchone()
    conn.execute("DELETE FROM events WHERE name = 'LicenseGranted' AND license_id = ?", (world["licenses"][0],))
    try:
        out = run_cli("audit", "check", str(world["d1"]), env=ENV)
        assert out.returncode == 1, out.stderr
        assert "2 of 3 covered" in out.stdout and "NOT COVERED: not-granted" in out.stdout
        as_json = run_cli("audit", "check", str(world["d1"]), "--json", env=ENV)
        assert as_json.returncode == 1
        report = json.loads(as_json.stdout)
        assert report["ok"] is False and report["verdicts"][0]["violations"][0]["rule"] == "not-granted"
    finally:
        conn.execute(f"INSERT INTO events VALUES ({', '.join('?' * len(row))})", row)
    assert check_dataset(world["index"], world["d1"]).ok


def test_cli_output_and_bad_input(world: dict) -> None:
    d1 = world["d1"]
    text = run_cli("audit", "trail", str(d1), "--limit", "4", env=ENV)
    assert text.returncode == 0, text.stderr
    assert f"Trail of dataset {d1}: events 1-4 of {len(TRAIL_1)}" in text.stdout
    assert "registered by hospital" in text.stdout and "more: --offset 4" in text.stderr
    grant = cli("audit", "trail", str(d1))["events"][4]
    assert grant["dataset_id"] == str(d1) and grant["license_id"] == str(world["licenses"][0])
    assert isinstance(grant["args"]["expiresAt"], str) and isinstance(grant["args"]["fromVersion"], int)
    assert grant["args"]["licensee"] == world["fc"]["pharma"].address and grant["account_name"] == "pharma"
    for args, message in ((("audit", "trail", "99"), "there is no dataset 99"),
                          (("audit", "check", "99"), "there is no dataset 99"),
                          (("audit", "trail", str(d1), "--from", "soon"), "'soon' is neither a block number"),
                          (("audit", "member", "nobody"), "account 'nobody' is neither a local profile")):
        out = run_cli(*args, env=ENV)
        assert out.returncode == 1 and message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    usage = run_cli("audit", "trail", "0", env=ENV)
    assert usage.returncode == 2 and "out of range" in usage.stderr


def test_reading_the_trail_does_not_load_the_chain_library(world: dict) -> None:
    code = ("import sys\nfrom fullchain.cli.main import main\n"
            "try:\n    main(['audit', 'trail', '1', '--json'])\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, sorted({m.split('.')[0] for m in sys.modules if m.startswith(('web3', 'eth_account', 'evm'))}),"
            " file=sys.stderr)\n")
    env = {**os.environ, "FULLCHAIN_HOME": str(world["home"]), **ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.stderr.strip().splitlines()[-1] == "0 []", out.stderr
    assert json.loads(out.stdout)["total"] == len(TRAIL_1)
