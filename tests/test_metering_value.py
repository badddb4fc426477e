"""The algorithm dimension: Shapley values (exact and Monte Carlo) on synthetic utilities, then
on real model training over synthetic hospital data, a contributed ONNX model, datasets
fetched from the embedded chain, and the CLI."""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

import fullchain
from fullchain.duo import parse_purpose
from fullchain.errors import InvalidInput
from fullchain.metadata import build_metadata
from fullchain.metering import synthetic as syn
from fullchain.metering.shapley import exact_shapley, montecarlo_shapley, shapley
from fullchain.metering.value import _frame, _labels, select_features, value_datasets, value_providers
from fullchain.models import Role

from .conftest import run_cli

TARGET = syn.TARGET
DAY = 24 * 3600


# ---- Shapley on synthetic utilities ----

def additive(weights: dict[str, float]):  # noqa: ANN201
    return lambda c: sum(weights[p] for p in c)


def glove_game(c: frozenset[str]) -> float:
    """Left gloves L1, L2 and a right glove R: a pair is worth 1 (values known: R gets 2/3)."""
    return float(min(len(c & {"L1", "L2"}), len(c & {"R"})))


def test_exact_shapley_matches_known_values_and_properties() -> None:
    result = exact_shapley(["L1", "L2", "R"], glove_game)
    assert result.values == pytest.approx({"L1": 1 / 6, "L2": 1 / 6, "R": 2 / 3})
    assert result.evaluations == 8 and result.std_errors == {"L1": 0, "L2": 0, "R": 0}
    # Efficiency, symmetry and null player on a game with interactions.
    rng = np.random.default_rng(7)
    table = {c: float(rng.normal()) for r in range(6) for c in map(frozenset, itertools.combinations("abcde", r))}
    game = lambda c: table[frozenset(x for x in c if x != "z")] + (5.0 if {"a", "b"} <= c else 0.0)  # noqa: E731
    r = exact_shapley("abcdez", game)
    assert sum(r.values.values()) == pytest.approx(r.grand - r.empty, abs=1e-12)
    assert r.values["z"] == pytest.approx(0, abs=1e-12)  # z never changes anything
    # Symmetry: swapping a and b's roles in an additive game gives the same values.
    twins = exact_shapley("xyw", additive({"x": 2.0, "y": 2.0, "w": 1.0}))
    assert twins.values["x"] == twins.values["y"] == pytest.approx(2.0)


def test_montecarlo_is_efficient_deterministic_and_close_to_exact() -> None:
    calls: list[frozenset[str]] = []

    def counted(c: frozenset[str]) -> float:
        calls.append(c)
        return glove_game(c)

    a = montecarlo_shapley(["L1", "L2", "R"], counted, permutations=400, seed=3)
    assert len(calls) == len(set(calls)) == a.evaluations  # each coalition evaluated once
    b = montecarlo_shapley(["R", "L2", "L1"], glove_game, permutations=400, seed=3)
    assert a.values == b.values and a.std_errors == b.std_errors  # order of the input does not matter
    assert montecarlo_shapley(["L1", "L2", "R"], glove_game, permutations=400, seed=4).values != a.values
    assert sum(a.values.values()) == pytest.approx(a.grand - a.empty, abs=1e-12)
    for player, exact in {"L1": 1 / 6, "L2": 1 / 6, "R": 2 / 3}.items():
        assert abs(a.values[player] - exact) <= 4 * a.std_errors[player]
        assert a.std_errors[player] > 0


def test_shapley_is_exact_up_to_ten_players_then_sampled() -> None:
    weights = {f"p{i:02d}": float(i) for i in range(11)}
    ten = shapley(list(weights)[:10], additive(weights))
    assert ten.method == "exact" and ten.evaluations == 1024
    eleven = shapley(weights, additive(weights), permutations=20, seed=1)
    assert eleven.method == "montecarlo" and eleven.permutations == 20
    # An additive game: every marginal is the player's own weight, whatever the order.
    assert eleven.values == pytest.approx(weights) and max(eleven.std_errors.values()) == pytest.approx(0, abs=1e-9)
    assert shapley(weights, additive(weights)).method == "montecarlo"
    with pytest.raises(InvalidInput, match="'a' is named more than once"):
        shapley(["a", "b", "a"], additive({"a": 1, "b": 1}))


# ---- real models on synthetic hospital data ----

@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("value")
    files = {
        "A": syn.write_csv(syn.make_training_table(400, site_id="H01", seed=1), d / "a.csv"),
        "B": syn.write_csv(syn.make_training_table(400, site_id="H02", seed=2), d / "b.csv"),
        "N": syn.write_csv(syn.make_training_table(400, site_id="H03", seed=3, pure_noise=True), d / "noise.csv"),
        "eval": syn.write_csv(syn.make_eval_set(500), d / "eval.csv"),
    }
    twin = d / "a-copy.csv"
    twin.write_bytes(files["A"].read_bytes())
    files["A_twin"] = twin
    return files


@pytest.fixture(scope="module")
def exact_report(data: dict[str, Path]):  # noqa: ANN201
    return value_providers({p: [data[p]] for p in ("A", "B", "N")}, data["eval"], TARGET, "logistic", seed=0)


def test_values_sum_to_grand_minus_baseline_and_noise_is_worth_about_nothing(exact_report, data) -> None:  # noqa: ANN001
    r = exact_report
    values = {p.provider: p.value for p in r.providers}
    assert r.method == "exact" and r.permutations == 0 and r.coalitions_evaluated == 8
    assert sum(values.values()) == pytest.approx(r.grand_accuracy - r.baseline_accuracy, abs=1e-9)
    # The baseline is the evaluation file's majority class, computed here independently.
    labels = syn.make_eval_set(500)[TARGET]
    assert r.baseline_accuracy == pytest.approx(100 * labels.value_counts().max() / len(labels))
    assert r.grand_accuracy > r.baseline_accuracy + 10  # the signal is learnable
    assert values["A"] > 5 and values["B"] > 5
    assert abs(values["N"]) < 1.5  # pure noise: about zero
    assert all(p.std_error == 0 for p in r.providers)
    # Evidence: every input named with its SHA-256, never its local path.
    for p in r.providers:
        (f,) = p.files
        assert f.sha256 == hashlib.sha256(data[p.provider].read_bytes()).hexdigest()
        assert "/" not in f.name and f.rows == 400
    assert r.eval.sha256 == hashlib.sha256(data["eval"].read_bytes()).hexdigest()
    assert "USUBJID" not in r.features and "RFSTDTC" not in r.features and "AGE" in r.features
    assert r.tool == f"fullchain {fullchain.__version__}"


def test_duplicate_provider_gets_its_twins_value_and_runs_are_deterministic(exact_report, data) -> None:  # noqa: ANN001
    r = value_providers({"A": [data["A"]], "A_twin": [data["A_twin"]], "B": [data["B"]]}, data["eval"], TARGET,
                        "logistic", seed=0)
    values = {p.provider: p.value for p in r.providers}
    assert values["A"] == pytest.approx(values["A_twin"], abs=1e-9)
    assert sum(values.values()) == pytest.approx(r.grand_accuracy - r.baseline_accuracy, abs=1e-9)
    again = value_providers({p: [data[p]] for p in ("A", "B", "N")}, data["eval"], TARGET, "logistic", seed=0)
    assert again == exact_report


def test_montecarlo_valuation_is_efficient_seeded_and_near_exact(exact_report, data) -> None:  # noqa: ANN001
    datasets = {p: [data[p]] for p in ("A", "B", "N")}
    mc = value_providers(datasets, data["eval"], TARGET, "logistic", seed=5, permutations=30)
    assert mc.method == "montecarlo" and mc.permutations == 30 and mc.seed == 5
    assert sum(p.value for p in mc.providers) == pytest.approx(mc.grand_accuracy - mc.baseline_accuracy, abs=1e-9)
    exact = {p.provider: p.value for p in exact_report.providers}
    for p in mc.providers:
        assert abs(p.value - exact[p.provider]) <= 4 * p.std_error + 1e-9
    assert value_providers(datasets, data["eval"], TARGET, "logistic", seed=5, permutations=30) == mc


def test_gradient_boosting_reference_model(data: dict[str, Path]) -> None:
    r = value_providers({"A": [data["A"]], "B": [data["B"]]}, data["eval"], TARGET, "gbm", seed=0)
    assert r.model == "gbm" and r.grand_accuracy > r.baseline_accuracy + 5
    assert sum(p.value for p in r.providers) == pytest.approx(r.grand_accuracy - r.baseline_accuracy, abs=1e-9)


def onnx_candidate(train: Path, evaluation: Path, out: Path) -> tuple[Path, float]:
    """An ONNX model trained with scikit-learn on `train`, and its accuracy on `evaluation` as
    scikit-learn itself computes it."""
    import pandas as pd
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    table, ev = pd.read_csv(train), pd.read_csv(evaluation)
    num, cat = select_features(ev, TARGET)
    model = Pipeline([
        ("prep", ColumnTransformer([
            ("num", Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())]), num),
            ("cat", Pipeline([("i", SimpleImputer(missing_values="", strategy="constant", fill_value="?")),
                              ("o", OneHotEncoder(handle_unknown="ignore"))]), cat)])),
        ("lr", LogisticRegression(max_iter=1000))])
    x = lambda t: _frame(t, num, cat).fillna({c: "" for c in cat})  # noqa: E731
    model.fit(x(table), table[TARGET].astype(np.int64))
    types = [(c, FloatTensorType([None, 1])) for c in num] + [(c, StringTensorType([None, 1])) for c in cat]
    out.write_bytes(to_onnx(model, initial_types=types, options={"zipmap": False}).SerializeToString())
    return out, 100 * float(np.mean(model.predict(x(ev)) == ev[TARGET].to_numpy()))


def test_candidate_onnx_model_gain_over_the_baseline(data: dict[str, Path], tmp_path: Path) -> None:
    model, sklearn_accuracy = onnx_candidate(data["B"], data["eval"], tmp_path / "model.onnx")
    r = value_providers({"A": [data["A"]]}, data["eval"], TARGET, "logistic", candidate=model)
    c = r.candidate
    assert c is not None and c.format == "onnx" and c.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert c.accuracy == pytest.approx(sklearn_accuracy)
    assert c.gain == pytest.approx(c.accuracy - r.baseline_accuracy) and c.gain > 10


class _Trap:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.path,))


def test_a_pickled_model_is_refused_and_never_unpickled(data: dict[str, Path], tmp_path: Path) -> None:
    sentinel = tmp_path / "unpickled"
    model = tmp_path / "model.pkl"
    model.write_bytes(pickle.dumps(_Trap(sentinel)))
    with pytest.raises(InvalidInput, match="not a loadable ONNX model"):
        value_providers({"A": [data["A"]]}, data["eval"], TARGET, "logistic", candidate=model)
    assert not sentinel.exists()


def test_bad_inputs_are_named(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="has no column 'DEATH'"):
        value_providers({"A": [data["A"]]}, data["eval"], "DEATH", "logistic")
    other = tmp_path / "other.csv"
    other.write_text("AGE,SEX\n50,M\n")
    with pytest.raises(InvalidInput, match=r"other.csv \(provider A\) has no column 'OUTCOME'"):
        value_providers({"A": [other]}, data["eval"], TARGET, "logistic")
    with pytest.raises(InvalidInput, match="unknown model 'svm'"):
        value_providers({"A": [data["A"]]}, data["eval"], TARGET, "svm")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="is not a readable file"):
        value_providers({"A": [tmp_path / "missing.csv"]}, data["eval"], TARGET, "logistic")


# ---- synthetic data ----

def test_synthetic_data_is_deterministic_sdtm_dm_without_direct_identifiers(tmp_path: Path) -> None:
    a = syn.make_hospital(50, seed=9).write(tmp_path / "a")
    b = syn.make_hospital(50, seed=9).write(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    dm = syn.make_dm(200, seed=1)
    assert list(dm.columns) == list(syn.DM_COLUMNS) and (dm["DOMAIN"] == "DM").all()
    assert dm["USUBJID"].is_unique and dm["RACE"].isna().any()  # a few missing expected cells
    assert not {"BRTHDTC", "NAME", "PHONE", "EMAIL"} & set(dm.columns)
    joined = syn.join_files(a[0], a[1], tmp_path / "joined.csv")
    import pandas as pd

    table = pd.read_csv(joined)
    assert len(table) == 50 and TARGET in table and "AGE" in table
    noise = syn.make_training_table(2000, seed=4, pure_noise=True)
    signal = syn.make_training_table(2000, seed=4)
    # The signal follows the features; the noise does not.
    assert abs(np.corrcoef(signal["HBA1C"], signal[TARGET])[0, 1]) > 0.1
    assert abs(np.corrcoef(noise["HBA1C"], noise[TARGET])[0, 1]) < 0.06


# ---- datasets on chain ----

PW = "metering-value"


def test_value_datasets_fetches_what_the_caller_may_read_and_groups_by_owner(home: Path, data: dict[str, Path]) -> None:
    for name in ("hospital", "pharma"):
        fullchain.init(name, password=PW)
    hospital = fullchain.connect("hospital", password=PW)
    pharma = fullchain.connect("pharma", password=PW)
    key = lambda fc: bytes.fromhex(fc.profile.hpke_public_key[2:])  # noqa: E731
    hospital.deploy([fullchain.Founder(hospital.address, Role.HOSPITAL | Role.GOVERNOR, key(hospital)),
                     fullchain.Founder(pharma.address, Role.PHARMA, key(pharma))], threshold=1)
    meta = build_metadata(title="outcomes", standard="sdtm")
    licensed = hospital.datasets.register(data["A"], meta).dataset_id
    own = pharma.datasets.register(data["B"], meta).dataset_id
    lid = pharma.licensing.request(licensed, parse_purpose("DUO:0000042"), term_seconds=30 * DAY)
    hospital.licensing.grant(lid)
    # A local file named after the hospital's account joins its dataset as one provider.
    r = value_datasets(pharma, [licensed, own], eval_file=data["eval"], target=TARGET, seed=0,
                       files={hospital.address: [data["N"]]})
    by_owner = {p.provider: p for p in r.providers}
    assert set(by_owner) == {hospital.address, pharma.address}
    assert [f.name for f in by_owner[hospital.address].files] == ["noise.csv", f"dataset-{licensed}-v1.csv"]
    assert [f.name for f in by_owner[pharma.address].files] == [f"dataset-{own}-v1.csv"]
    assert by_owner[hospital.address].files[1].sha256 == hashlib.sha256(data["A"].read_bytes()).hexdigest()
    # The same numbers as valuing the plaintext files directly.
    local = value_providers({hospital.address: [data["N"], data["A"]], pharma.address: [data["B"]]},
                            data["eval"], TARGET, "logistic", seed=0)
    assert {p.provider: p.value for p in r.providers} == {p.provider: p.value for p in local.providers}
    assert list((home / "tmp").iterdir()) == []  # the decrypted copies are gone
    # The licensee's fetches were recorded on chain (AccessRecorded), as any licensed use is.
    accesses = pharma.read_index().events(name="AccessRecorded")
    assert [e.dataset_id for e in accesses] == [licensed]
    # The CLI takes the same dataset ids (and its fetch is recorded as another access).
    done = run_cli("meter", "value", str(licensed), str(own), "--target", TARGET, "--eval", str(data["eval"]),
                   "--file", f"{hospital.address}={data['N']}", "--profile", "pharma", "--json",
                   env={"FULLCHAIN_PASSWORD": PW})
    assert done.returncode == 0, done.stderr
    assert {p["provider"]: p["value"] for p in json.loads(done.stdout)["providers"]} == \
        {p.provider: p.value for p in r.providers}


# ---- CLI ----

def test_cli_meter_value(data: dict[str, Path], home: Path) -> None:
    args = ["meter", "value", "--target", TARGET, "--eval", str(data["eval"]), "--file", f"A={data['A']}",
            "--file", f"B={data['B']}"]
    done = run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["kind"] == "fullchain.metering.value/1" and report["method"] == "exact"
    assert math.isclose(sum(p["value"] for p in report["providers"]),
                        report["grand_accuracy"] - report["baseline_accuracy"], abs_tol=1e-9)
    text = run_cli(*args, "--permutations", "4", "--seed", "2")
    assert text.returncode == 0, text.stderr
    assert "Monte Carlo, 4 permutations" in text.stdout and "baseline" in text.stdout
    bad = run_cli("meter", "value", "--target", "NOPE", "--eval", str(data["eval"]), "--file", f"A={data['A']}")
    assert bad.returncode == 1 and "has no column 'NOPE'" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    usage = run_cli("meter", "value", "--target", TARGET, "--eval", str(data["eval"]), "--file", "A")
    assert usage.returncode == 2 and "PROVIDER=" in usage.stderr


def test_labels_of_different_files_compare_as_one_class() -> None:
    import pandas as pd

    assert list(_labels(pd.Series([1, 0]))) == list(_labels(pd.Series([1.0, 0.0]))) == ["1", "0"]
