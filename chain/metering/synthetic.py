"""Synthetic, learnable clinical data: an SDTM DM table and an outcome table per hospital.

Deterministic for a seed (same bytes out), with no direct identifiers (no names, no birth
dates, no contact data: the red-line check passes), realistic enough to be measured (distinct
USUBJID, a few missing cells in expected variables, ISO 8601 dates) and to be learnt from: the
outcome is drawn from a logistic model of age, sex, arm and the outcome table's features, so a
reference model trained on more of it predicts it better. `pure_noise=True` gives the same
columns with an outcome independent of everything (a provider whose data is worth nothing).

    dm, outcome = make_hospital("HOSP-A", n=300, seed=1)
    table = join_training_table(dm, outcome)          # one row per subject, with OUTCOME
    evaluation = make_eval_set(n=400, seed=99)        # the same process, another site

DM variables follow SDTMIG v3.4 DM; controlled terms are CDISC CT values (SEX, RACE, ETHNIC,
AGEU). The outcome table is not an SDTM domain: it stands for whatever the hospitals agreed to
share as the analysis table, keyed by USUBJID.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

STUDY_ID = "FCDEMO01"
STUDY_START = date(2024, 1, 8)
TARGET = "OUTCOME"
RACES = ("WHITE", "BLACK OR AFRICAN AMERICAN", "ASIAN", "AMERICAN INDIAN OR ALASKA NATIVE",
         "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER")
RACE_P = (0.62, 0.14, 0.18, 0.04, 0.02)
ARMS = (("TRT", "Drug X 10 mg"), ("PBO", "Placebo"))
# USUBJID = STUDYID-SITEID-SUBJID with letters between the digit runs: an identifier no
# phone-number pattern of the red-line check mistakes for one.
DM_COLUMNS = ("STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC",
              "RFPENDTC", "DTHFL", "SITEID", "AGE", "AGEU", "SEX", "RACE", "ETHNIC", "ARMCD", "ARM", "ACTARMCD", "ACTARM",
              "COUNTRY", "DMDTC")
# Scales the outcome's log-odds: strong enough that a few hundred rows teach a logistic model
# most of it, and that a pure-noise provider's rows then barely move it (value about zero).
SIGNAL = 2.5
OUTCOME_COLUMNS = ("USUBJID", "BMI", "SBP", "HBA1C", "LDL", "SMOKER", TARGET)


@dataclass(frozen=True)
class Hospital:
    dm: pd.DataFrame
    outcome: pd.DataFrame

    def write(self, directory: Path, prefix: str = "") -> tuple[Path, Path]:
        """Write `dm.csv` and `outcome.csv` (prefixed) into `directory`; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        dm_path, outcome_path = directory / f"{prefix}dm.csv", directory / f"{prefix}outcome.csv"
        write_csv(self.dm, dm_path)
        write_csv(self.outcome, outcome_path)
        return dm_path, outcome_path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """CSV with fixed formatting (same frame, same bytes): missing cells empty, LF line ends."""
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.1f")
    return path


def make_dm(n: int, *, site_id: str = "H01", country: str = "FRA", seed: int = 0, first_subject: int = 1,
            study_id: str = STUDY_ID, missing_rate: float = 0.03, study_start: date = STUDY_START) -> pd.DataFrame:
    """An SDTM DM table of `n` subjects at one site; `missing_rate` of RACE, ETHNIC and RFENDTC
    cells are left empty (expected variables, so completeness is below 100%). Subjects consent
    within a year of `study_start`; the newest date is at most about two years after it."""
    rng = np.random.default_rng([seed, 1])
    subjects = [f"{first_subject + i:04d}" for i in range(n)]
    arms = rng.integers(0, 2, n)
    consent = [study_start + timedelta(days=int(d)) for d in rng.integers(0, 365, n)]
    first_dose = [c + timedelta(days=int(d)) for c, d in zip(consent, rng.integers(1, 15, n))]
    last_dose = [f + timedelta(days=int(d)) for f, d in zip(first_dose, rng.integers(90, 366, n))]
    dm = pd.DataFrame({
        "STUDYID": study_id,
        "DOMAIN": "DM",
        "USUBJID": [f"{study_id}-{site_id}-{s}" for s in subjects],
        "SUBJID": subjects,
        "RFSTDTC": [d.isoformat() for d in first_dose],
        "RFENDTC": [d.isoformat() for d in last_dose],
        "RFXSTDTC": [d.isoformat() for d in first_dose],
        "RFXENDTC": [d.isoformat() for d in last_dose],
        "RFICDTC": [d.isoformat() for d in consent],
        "RFPENDTC": [(d + timedelta(days=30)).isoformat() for d in last_dose],
        "DTHFL": "",
        "SITEID": site_id,
        "AGE": np.clip(np.round(rng.normal(61, 11, n)), 18, 90).astype(int),
        "AGEU": "YEARS",
        "SEX": np.where(rng.random(n) < 0.48, "F", "M"),
        "RACE": rng.choice(RACES, n, p=RACE_P),
        "ETHNIC": np.where(rng.random(n) < 0.1, "HISPANIC OR LATINO", "NOT HISPANIC OR LATINO"),
        "ARMCD": [ARMS[a][0] for a in arms],
        "ARM": [ARMS[a][1] for a in arms],
        "ACTARMCD": [ARMS[a][0] for a in arms],
        "ACTARM": [ARMS[a][1] for a in arms],
        "COUNTRY": country,
        "DMDTC": [d.isoformat() for d in consent],
    }, columns=list(DM_COLUMNS))
    for column in ("RACE", "ETHNIC", "RFENDTC"):
        dm[column] = dm[column].astype(object)
        dm.loc[rng.random(n) < missing_rate, column] = None
    return dm


def make_outcome(dm: pd.DataFrame, *, seed: int = 0, pure_noise: bool = False) -> pd.DataFrame:
    """The outcome table of the subjects of `dm`: clinical features and a binary OUTCOME.

    With a signal, P(OUTCOME = 1) is a logistic function of age, sex, arm, BMI, SBP, HbA1c,
    LDL and smoking (about 30% prevalence). With `pure_noise`, the features are drawn the same
    way but OUTCOME is an independent coin (P = 0.4)."""
    rng = np.random.default_rng([seed, 2])
    n = len(dm)
    bmi = np.round(rng.normal(28, 4.5, n), 1)
    sbp = np.round(rng.normal(134, 16, n))
    hba1c = np.round(rng.normal(6.4, 1.1, n), 1)
    ldl = np.round(rng.normal(3.2, 0.9, n), 1)
    smoker = rng.random(n) < 0.25
    age = dm["AGE"].to_numpy(dtype=float)
    treated = (dm["ARMCD"] == "TRT").to_numpy()
    male = (dm["SEX"] == "M").to_numpy()
    logit = SIGNAL * (-0.6 + 0.09 * (age - 61) + 0.5 * male - 1.4 * treated + 0.12 * (bmi - 28) + 0.045 * (sbp - 134)
             + 0.8 * (hba1c - 6.4) + 0.5 * (ldl - 3.2) + 1.0 * smoker)
    p = 0.4 * np.ones(n) if pure_noise else 1 / (1 + np.exp(-logit))
    outcome = (rng.random(n) < p).astype(int)
    return pd.DataFrame({"USUBJID": dm["USUBJID"].to_numpy(), "BMI": bmi, "SBP": sbp, "HBA1C": hba1c, "LDL": ldl,
                         "SMOKER": np.where(smoker, "Y", "N"), TARGET: outcome}, columns=list(OUTCOME_COLUMNS))


def make_hospital(n: int, *, site_id: str = "H01", country: str = "FRA", seed: int = 0,
                  pure_noise: bool = False, first_subject: int = 1, study_start: date = STUDY_START) -> Hospital:
    """One hospital's DM and outcome tables (a site of the shared study)."""
    dm = make_dm(n, site_id=site_id, country=country, seed=seed, first_subject=first_subject, study_start=study_start)
    return Hospital(dm=dm, outcome=make_outcome(dm, seed=seed, pure_noise=pure_noise))


def join_training_table(dm: pd.DataFrame, outcome: pd.DataFrame) -> pd.DataFrame:
    """DM joined with the outcome table on USUBJID (inner: subjects present in both), one row
    per subject: the one table per dataset that `value_providers` takes."""
    if dm["USUBJID"].duplicated().any() or outcome["USUBJID"].duplicated().any():
        raise ValueError("USUBJID must be unique in DM and in the outcome table")
    return dm.merge(outcome, on="USUBJID", how="inner", validate="one_to_one")


def join_files(dm_path: Path, outcome_path: Path, out_path: Path) -> Path:
    """`join_training_table` over two CSV files, written as CSV to `out_path`."""
    dm = pd.read_csv(dm_path, dtype={"SUBJID": str, "SITEID": str}, keep_default_na=False, na_values=[""])
    outcome = pd.read_csv(outcome_path, keep_default_na=False, na_values=[""])
    return write_csv(join_training_table(dm, outcome), out_path)


def make_training_table(n: int, *, site_id: str = "H01", country: str = "FRA", seed: int = 0,
                        pure_noise: bool = False) -> pd.DataFrame:
    hospital = make_hospital(n, site_id=site_id, country=country, seed=seed, pure_noise=pure_noise)
    return join_training_table(hospital.dm, hospital.outcome)


def make_eval_set(n: int, *, seed: int = 1000, site_id: str = "E90", country: str = "DEU") -> pd.DataFrame:
    """A held-out evaluation table from the same process at a site no provider has."""
    return make_training_table(n, site_id=site_id, country=country, seed=seed)


