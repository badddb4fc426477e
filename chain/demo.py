"""The consortium story that `fullchain demo` plays, on the embedded chain, in a fresh state.

The story: membership by vote, an encrypted dataset, a license used, refused and revoked; then
contribution metering over one epoch: two hospitals' synthetic trial tables (SDTM DM joined with
an outcome table that a model can learn from) are measured, valued by pharma for a logistic
model, pharma's GPU job is recorded, an attester re-measures and attests every record, and the
epoch is finalized. Finalizing waits for the epoch and its dispute window to pass: the demo
deploys the meter with hour-long ones and advances the development chain's clock past them
(eth-tester's time travel, which only a development chain has). The clinic's table is from a
consenting patient (the `volunteer` profile), whose consent earns it patient points. Last, the
benefit distribution: the governors vote that the operations share goes to the cro (the
attester's organisation), pharma funds the finalized epoch's pool with settlement tokens it
mints on the development chain, and each hospital, the cro and the patient claim their shares.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from .client import Fullchain, connect, init
from .consortium import Founder
from .duo import parse_purpose
from .errors import ChainError, ConfigError, NotAuthorized
from .home import (
    PASSWORD_ENV,
    deployments_dir,
    embedded_chain_dir,
    fullchain_home,
    private_dir,
    profiles_dir,
    write_private,
)
from .metadata import DatasetMetadata, build_metadata
from .models import (
    Deployment,
    FetchResult,
    Member,
    MeterEpoch,
    MeterParameters,
    MeterRecord,
    Registration,
    Role,
    VerifyResult,
)

if TYPE_CHECKING:
    from .distribution import ClaimResult, Funding, PoolView
    from .metering.value import ValuationReport

# Used only when FULLCHAIN_PASSWORD is not set; the CLI prints it so the user can reuse the profiles.
DEMO_PASSWORD = "fullchain-demo"
# Short enough to pass by time travel, long enough that the demo's own blocks stay in one epoch.
EPOCH_LENGTH = 3600
DISPUTE_WINDOW = 3600
# The two hospitals' sites: profile, site id, country, subjects, seed.
SITES = (("hospital", "H01", "FRA", 240, 1), ("clinic", "C02", "DEU", 80, 2))
# pharma's GPU jobs of the epoch (job id, GPU-seconds): 4 GPU-hours and 1.5 GPU-hours.
PHARMA_JOBS = (("4711", 14_400), ("4712", 5_400))
# The patient whose consent the clinic's table carries (a pseudonymous member with the patient role).
PATIENT = "volunteer"
# What pharma puts into the finalized epoch's pool: divisible by nothing, so the rounding shows.
POOL_FUNDING = "12345.678901234567890123"


@dataclass(frozen=True)
class DemoResult:
    home: Path
    password_from_env: bool
    profiles: dict[str, str]
    deployment: Deployment
    admitted_by_vote: str
    proposal_id: int
    members: list[Member]
    registration: Registration
    fetched: FetchResult
    verified: VerifyResult
    license_id: int
    licensed_fetch: FetchResult
    refusals: dict[str, str]
    clinic_registration: Registration
    valuation: ValuationReport
    records: list[MeterRecord]
    clock_advanced: int  # seconds the development chain's clock was moved forward
    epoch: MeterEpoch
    split_proposal: int  # the governance vote that pays the operations share to the cro
    funding: Funding
    claims: dict[str, ClaimResult]  # profile -> what its claim paid
    pool: PoolView


def synthetic_trial_table(path: Path, *, site: str, country: str, subjects: int, seed: int,
                          today: date | None = None) -> Path:
    """One site's synthetic trial table (fullchain.metering.synthetic): an SDTM DM domain joined
    with an outcome table on USUBJID, invented subjects with no personal data, written privately.
    The study started about 800 days before `today`, so the newest dates are a few weeks old
    and the data counts as timely whenever the demo runs."""
    from .metering.synthetic import join_training_table, make_hospital

    start = (today or date.today()) - timedelta(days=800)
    site_data = make_hospital(subjects, site_id=site, country=country, seed=seed, study_start=start)
    table = join_training_table(site_data.dm, site_data.outcome)
    write_private(path, table.to_csv(index=False, lineterminator="\n", float_format="%.1f"))
    return path


def synthetic_eval_table(path: Path, *, subjects: int = 600, seed: int = 1000) -> Path:
    """pharma's held-out evaluation table: the same process at a site no hospital has."""
    from .metering.synthetic import make_eval_set

    write_private(path, make_eval_set(subjects, seed=seed).to_csv(index=False, lineterminator="\n",
                                                                    float_format="%.1f"))
    return path


def run_demo(home: str | os.PathLike[str] | None = None, *, reset: bool = False,
             progress: Callable[[str], None] = lambda step: None) -> DemoResult:
    """Create hospital, clinic, pharma and cro; hospital and pharma found the consortium (2-of-2
    governors) with the clinic as a founding member; the cro (also an attester) is admitted by
    their vote. Then the dataset and license story, and an epoch of contribution metering.
    `progress` hears each step as it starts."""
    root = fullchain_home(home)
    state = [p for p in (profiles_dir(root), embedded_chain_dir(root), deployments_dir(root), root / "blocks",
                         root / "journal", root / "demo") if p.exists()]
    if state and not reset:
        raise ConfigError(f"{root} already holds fullchain state ({', '.join(p.name for p in state)})",
                          hint="run the demo with a new FULLCHAIN_HOME, or pass --reset to delete the "
                               "profiles, keys and embedded chain there first")
    for path in state:
        shutil.rmtree(path)
    env_password = os.environ.get(PASSWORD_ENV)
    password = env_password or DEMO_PASSWORD

    profiles: dict[str, str] = {}
    for name in ("hospital", "clinic", "pharma", "cro", PATIENT):
        progress(f"creating profile {name}")
        profiles[name] = init(name, home=root, password=password).address

    hospital = connect("hospital", home=root, password=password)
    clinic = connect("clinic", home=root, password=password)
    pharma = connect("pharma", home=root, password=password)
    cro = connect("cro", home=root, password=password)
    patient = connect(PATIENT, home=root, password=password)

    progress(f"deploying the contracts (founders: hospital, pharma as 2 of 2 governors, the clinic, and {PATIENT}, "
             "a patient; contribution epochs of an hour, disputes for an hour after)")
    founders = [
        Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, _hpke(hospital.profile.hpke_public_key)),
        Founder(pharma.address, Role.PHARMA | Role.GOVERNOR, _hpke(pharma.profile.hpke_public_key)),
        Founder(clinic.address, Role.HOSPITAL, _hpke(clinic.profile.hpke_public_key)),
        Founder(patient.address, Role.PATIENT, _hpke(patient.profile.hpke_public_key)),
    ]
    deployment = hospital.deploy(founders, threshold=2,
                                 meter=MeterParameters(epoch_length=EPOCH_LENGTH, dispute_window=DISPUTE_WINDOW))

    progress("hospital proposes to admit the cro, as a CRO and an attester of contributions")
    proposal_id = hospital.consortium.propose_admit(cro.address, Role.CRO | Role.ATTESTER,
                                                    _hpke(cro.profile.hpke_public_key))
    progress("pharma approves; the proposal reaches 2 of 2")
    pharma.consortium.approve(proposal_id)
    progress("the cro executes its admission")
    cro.consortium.execute(proposal_id)

    work = root / "demo"
    private_dir(work)
    # Plaintext (synthetic, but it shows the habit): private files.
    sources = {name: synthetic_trial_table(work / ("dm.csv" if name == "hospital" else f"{name}-dm.csv"),
                                           site=site, country=country, subjects=n, seed=seed)
               for name, site, country, n, seed in SITES}
    source = sources["hospital"]
    progress("hospital registers its encrypted trial table: SDTM DM joined with outcomes, red-line checked and "
             "measured (stored in the embedded block store, anchored on chain)")
    registration = hospital.datasets.register(source, _trial_metadata("H01", SITES[0][3]))
    progress("hospital fetches it back, decrypts and checks the commitment")
    fetched = hospital.datasets.fetch(registration.dataset_id, work / "dm.fetched.csv")
    verified = hospital.datasets.verify(registration.dataset_id, source)

    dataset_id = registration.dataset_id
    hmb = parse_purpose("DUO:0000006")
    progress("pharma requests a license: health/medical/biomedical research (DUO:0000006) for 90 days")
    license_id = pharma.licensing.request(dataset_id, hmb, term_seconds=90 * 86400)
    progress("hospital grants it; the data key is wrapped to pharma's public key")
    hospital.licensing.grant(license_id)
    progress("pharma fetches the dataset: license checked, use recorded on chain, decrypted, verified")
    licensed = pharma.datasets.fetch(dataset_id, work / "dm.pharma.csv")

    refusals: dict[str, str] = {}
    progress("the cro, without a license, tries to fetch it")
    refusals["cro without a license"] = _refusal(lambda: cro.datasets.fetch(dataset_id, work / "dm.cro.csv"))

    progress("clinic registers its trial table the same way; pharma obtains a license for it too")
    clinic_registration = clinic.datasets.register(sources["clinic"], _trial_metadata("C02", SITES[1][3]))
    clinic_id = clinic_registration.dataset_id
    progress(f"the clinic's table is from a consenting patient: the clinic records that {PATIENT}'s consent is "
             "required, and given (its data points will also count for the patient)")
    clinic.licensing.require_consent(clinic_id, patient.address)
    clinic.licensing.grant(pharma.licensing.request(clinic_id, hmb, term_seconds=90 * 86400))
    progress("the cro asks both hospitals for read access to attest their data; both grant it")
    hospital.licensing.grant(cro.licensing.request(dataset_id, hmb, term_seconds=30 * 86400))
    clinic.licensing.grant(cro.licensing.request(clinic_id, hmb, term_seconds=30 * 86400))

    records, valuation = _meter_epoch(hospital, clinic, pharma, cro, {hospital.address: dataset_id, clinic.address: clinic_id},
                           work, progress)

    progress("hospital revokes pharma's license; pharma tries again")
    hospital.licensing.revoke(license_id)
    refusals["pharma after revocation"] = _refusal(lambda: pharma.datasets.fetch(dataset_id, work / "dm.pharma2.csv"))

    epoch_number = records[0].epoch
    _, _, closes = pharma.meter.contract.functions.epochBounds(epoch_number).call()
    now = int(pharma.w3.eth.get_block("latest")["timestamp"])
    progress(f"the demo advances the development chain's clock by {closes + 1 - now} s, past the end of epoch "
             f"{epoch_number} and its dispute window (time travel: only a development chain can)")
    answer = pharma.w3.provider.make_request("testing_timeTravel", [closes + 1])
    if answer.get("error"):
        raise ChainError(f"the development chain refused to advance its clock: {answer['error']}",
                         hint="the demo runs on the embedded chain (a fresh FULLCHAIN_HOME)")
    progress(f"pharma finalizes epoch {epoch_number}: the points and shares are final")
    epoch = pharma.meter.finalize(epoch_number)
    split_proposal, funding, claims, pool = _distribute(hospital, clinic, pharma, cro, patient, epoch_number, progress)
    refusals["cro in the priority window"] = _priority_use(hospital, pharma, cro, [dataset_id, clinic_id], valuation,
                                                           work, progress)

    return DemoResult(home=root, password_from_env=env_password is not None, profiles=profiles,
                      deployment=deployment, admitted_by_vote="cro", proposal_id=proposal_id,
                      members=hospital.consortium.members(), registration=registration, fetched=fetched,
                      verified=verified, license_id=license_id, licensed_fetch=licensed, refusals=refusals,
                      clinic_registration=clinic_registration, valuation=valuation,
                      records=[pharma.meter.record(r.id) for r in records], clock_advanced=closes + 1 - now,
                      epoch=epoch, split_proposal=split_proposal, funding=funding, claims=claims, pool=pool)


def _trial_metadata(site: str, subjects: int) -> DatasetMetadata:
    return build_metadata(title=f"FCDEMO01 site {site}: demographics and outcomes (synthetic)", standard="sdtm",
                          domain="cardiometabolic", subject_count=subjects, data_use=["HMB"], tier="restricted")


def _meter_epoch(hospital: Fullchain, clinic: Fullchain, pharma: Fullchain, attester: Fullchain,
                 datasets: dict[str, int], work: Path, progress: Callable[[str], None]
                 ) -> tuple[list[MeterRecord], ValuationReport]:
    """One epoch's contributions in the three dimensions, each attested by re-measuring."""
    records: list[MeterRecord] = []

    def attested(record: MeterRecord) -> MeterRecord:
        check = attester.meter.remeasure(record.id)
        if not check.matches:  # the demo's own measurements: a difference is a bug
            raise AssertionError(f"record {record.id} did not re-measure: {check.differences}")
        return attester.meter.attest(record.id)

    for owner in (hospital, clinic):
        name = owner.profile.name
        progress(f"{name} measures its dataset (cases, completeness, timeliness) and submits a data record")
        records.append(owner.meter.submit_data(datasets[owner.address]))
        progress(f"the cro fetches {name}'s dataset under its license, measures it again, and attests")
        records[-1] = attested(records[-1])

    from .metering.value import value_datasets

    evaluation = synthetic_eval_table(work / "eval.csv")
    progress("pharma values both hospitals' data: Shapley values of a logistic model's held-out accuracy "
             "(exact over the coalitions)")
    report = value_datasets(pharma, [datasets[hospital.address], datasets[clinic.address]], eval_file=evaluation,
                            target="OUTCOME", model="logistic", seed=0)
    raw = report.model_dump_json(indent=2).encode()
    write_private(work / "valuation.json", raw.decode())
    for owner in (hospital, clinic):
        name = owner.profile.name
        progress(f"{name} submits its algorithm record from pharma's report (its own value, in basis points)")
        records.append(owner.meter.submit_algorithm(raw))
        progress(f"the cro derives the amount again from the report, and attests {name}'s record")
        records[-1] = attested(records[-1])

    jobs = work / "jobs.csv"
    write_private(jobs, "job_id,member,gpu_seconds,started,ended\n" + "".join(
        f"{job},{pharma.address},{seconds},,\n" for job, seconds in PHARMA_JOBS))
    progress("pharma submits the GPU time of its training jobs (measured from its job file); the cro attests")
    records.append(attested(pharma.meter.submit_compute(jobs)))
    return records, report


def _distribute(hospital: Fullchain, clinic: Fullchain, pharma: Fullchain, cro: Fullchain, patient: Fullchain,
                epoch: int, progress: Callable[[str], None]
                ) -> tuple[int, Funding, dict[str, ClaimResult], PoolView]:
    """The finalized epoch's pool: the split voted, funded by pharma, claimed by each hospital,
    the cro and the patient (pharma leaves its compute share unclaimed for now)."""
    from .distribution import make_split

    current = hospital.pool.show(epoch).split
    assert current is not None  # a deployed distributor always has a split
    progress("hospital proposes that the operations share of the pools goes to the cro, the attester's "
             "organisation (the rest of the split unchanged); pharma approves; hospital executes")
    proposal = hospital.pool.propose_split(make_split(
        cro.address, operations_bps=current.operations_bps, patients_bps=current.patients_bps,
        data_bps=current.data_bps, algorithm_bps=current.algorithm_bps, compute_bps=current.compute_bps))
    pharma.consortium.approve(proposal)
    hospital.consortium.execute(proposal)
    progress(f"pharma mints {POOL_FUNDING} settlement tokens (FCS) for itself: a development chain's token")
    pharma.pool.mint(pharma.address, POOL_FUNDING)
    progress(f"pharma funds epoch {epoch}'s pool with them (one transaction: an EIP-2612 permit)")
    funding = pharma.pool.fund(epoch, POOL_FUNDING)
    claims = {}
    for fc in (hospital, clinic, cro, patient):
        progress(f"{fc.profile.name} claims its share of epoch {epoch}")
        claims[fc.profile.name] = fc.pool.claim([epoch])
    return proposal, funding, claims, pharma.pool.show(epoch)


def _priority_use(hospital: Fullchain, pharma: Fullchain, cro: Fullchain, parents: list[int],
                  valuation: ValuationReport, work: Path, progress: Callable[[str], None]) -> str:
    """Hospitals that provide data get priority use of the results made from it: pharma's result,
    derived from both hospitals' datasets, opens with a 90-day priority window; the cro, which
    provided none of them, is refused (the refusal, naming the day the window closes, is
    returned); the hospital's request is accepted and granted."""
    result = work / "pharma-result.csv"
    write_private(result, "analysis,target,sites,accuracy_pct\n"
                          f"{valuation.model},{valuation.target},H01+C02,{valuation.grand_accuracy:.2f}\n")
    progress("pharma registers its result, derived from both hospitals' datasets, with a 90-day priority window "
             "for them")
    registration = pharma.datasets.register(
        result, build_metadata(title="FCDEMO01 outcome model from sites H01 and C02 (synthetic)",
                               domain="cardiometabolic", data_use=["HMB"], tier="restricted"),
        derived_from=parents, priority=90 * 86400)
    hmb = parse_purpose("DUO:0000006")
    progress("the cro, which provided none of that data, requests the result during the window")
    refusal = _refusal(lambda: cro.licensing.request(registration.dataset_id, hmb, term_seconds=30 * 86400))
    progress(f"refused: {refusal}")
    progress("hospital, which provided data for it, requests the result: accepted, and pharma grants it")
    pharma.licensing.grant(hospital.licensing.request(registration.dataset_id, hmb, term_seconds=90 * 86400))
    return refusal


def _refusal(attempt: Callable[[], object]) -> str:
    """What the SDK said when it refused; the story expects a refusal, anything else is a bug."""
    try:
        attempt()
    except NotAuthorized as exc:
        return exc.diagnostics()
    raise AssertionError("the demo expected this to be refused")


def _hpke(hex_key: str) -> bytes:
    return bytes.fromhex(hex_key[2:])
