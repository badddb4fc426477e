"""The consortium story that `fullchain demo` plays, on the embedded chain, in a fresh state."""
from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .client import connect, init
from .home import PASSWORD_ENV
from .consortium import Founder
from .duo import parse_purpose
from .errors import ConfigError, NotAuthorized
from .home import deployments_dir, embedded_chain_dir, fullchain_home, private_dir, profiles_dir, write_private
from .metadata import build_metadata
from .models import Deployment, FetchResult, Member, Registration, Role, VerifyResult

# Used only when FULLCHAIN_PASSWORD is not set; the CLI prints it so the user can reuse the profiles.
DEMO_PASSWORD = "fullchain-demo"


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


def synthetic_sdtm_dm(subjects: int = 60, seed: int = 7) -> bytes:
    """A synthetic CDISC SDTM demographics (DM) domain: invented subjects, no personal data."""
    rng = random.Random(seed)
    rows = ["STUDYID,DOMAIN,USUBJID,SUBJID,SITEID,AGE,AGEU,SEX,ARMCD,ARM,COUNTRY"]
    for i in range(1, subjects + 1):
        site = rng.choice(["101", "102", "201"])
        arm = rng.choice([("PBO", "Placebo"), ("DRUG10", "Drug 10 mg")])
        rows.append(f"FC-001,DM,FC-001-{site}-{i:04d},{i:04d},{site},{rng.randint(18, 85)},YEARS,"
                    f"{rng.choice('MF')},{arm[0]},{arm[1]},{rng.choice(['DEU', 'FRA', 'USA'])}")
    return ("\n".join(rows) + "\n").encode()


def run_demo(home: str | os.PathLike[str] | None = None, *, reset: bool = False,
             progress: Callable[[str], None] = lambda step: None) -> DemoResult:
    """Create hospital, pharma and cro; hospital and pharma found the consortium (2-of-2
    governors); the cro is admitted by their vote. `progress` hears each step as it starts."""
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
    for name in ("hospital", "pharma", "cro"):
        progress(f"creating profile {name}")
        profiles[name] = init(name, home=root, password=password).address

    hospital = connect("hospital", home=root, password=password)
    pharma = connect("pharma", home=root, password=password)
    cro = connect("cro", home=root, password=password)

    progress("deploying the Consortium contract (founders: hospital, pharma; 2 of 2 governors)")
    founders = [
        Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, _hpke(hospital.profile.hpke_public_key)),
        Founder(pharma.address, Role.PHARMA | Role.GOVERNOR, _hpke(pharma.profile.hpke_public_key)),
    ]
    deployment = hospital.deploy(founders, threshold=2)

    progress("hospital proposes to admit the cro")
    proposal_id = hospital.consortium.propose_admit(cro.address, Role.CRO, _hpke(cro.profile.hpke_public_key))
    progress("pharma approves; the proposal reaches 2 of 2")
    pharma.consortium.approve(proposal_id)
    progress("the cro executes its admission")
    cro.consortium.execute(proposal_id)

    work = root / "demo"
    private_dir(work)
    source = work / "dm.csv"
    write_private(source, synthetic_sdtm_dm().decode())  # plaintext (synthetic, but it shows the habit)
    progress("hospital registers an encrypted SDTM dataset (stored in the embedded block store, anchored on chain)")
    metadata = build_metadata(title="FC-001 demographics (synthetic)", standard="sdtm", domain="oncology",
                              subject_count=60, data_use=["HMB"], tier="restricted")
    registration = hospital.datasets.register(source, metadata)
    progress("hospital fetches it back, decrypts and checks the commitment")
    fetched = hospital.datasets.fetch(registration.dataset_id, work / "dm.fetched.csv")
    verified = hospital.datasets.verify(registration.dataset_id, source)

    dataset_id = registration.dataset_id
    progress("pharma requests a license: health/medical/biomedical research (DUO:0000006) for 90 days")
    license_id = pharma.licensing.request(dataset_id, parse_purpose("DUO:0000006"), term_seconds=90 * 86400)
    progress("hospital grants it; the data key is wrapped to pharma's public key")
    hospital.licensing.grant(license_id)
    progress("pharma fetches the dataset: license checked, use recorded on chain, decrypted, verified")
    licensed = pharma.datasets.fetch(dataset_id, work / "dm.pharma.csv")

    refusals: dict[str, str] = {}
    progress("the cro, without a license, tries to fetch it")
    refusals["cro without a license"] = _refusal(lambda: cro.datasets.fetch(dataset_id, work / "dm.cro.csv"))
    progress("hospital revokes pharma's license; pharma tries again")
    hospital.licensing.revoke(license_id)
    refusals["pharma after revocation"] = _refusal(lambda: pharma.datasets.fetch(dataset_id, work / "dm.pharma2.csv"))

    return DemoResult(home=root, password_from_env=env_password is not None, profiles=profiles,
                      deployment=deployment, admitted_by_vote="cro", proposal_id=proposal_id,
                      members=hospital.consortium.members(), registration=registration, fetched=fetched,
                      verified=verified, license_id=license_id, licensed_fetch=licensed, refusals=refusals)


def _refusal(attempt: Callable[[], object]) -> str:
    """What the SDK said when it refused; the story expects a refusal, anything else is a bug."""
    try:
        attempt()
    except NotAuthorized as exc:
        return exc.diagnostics()
    raise AssertionError("the demo expected this fetch to be refused")


def _hpke(hex_key: str) -> bytes:
    return bytes.fromhex(hex_key[2:])
