"""The algorithm dimension: how much each provider's data raises a reference model's accuracy.

Utility of a coalition of providers = held-out accuracy, on an agreed evaluation file, of a
reference scikit-learn model trained on the union of the coalition's rows (fixed random_state):

- `logistic`: a Pipeline of median/most-frequent imputation, one-hot encoding of categorical
  columns (unknown categories ignored), standard scaling and LogisticRegression;
- `gbm`: HistGradientBoostingClassifier with its native categorical support (ordinal-encoded
  categories, missing values handled by the trees).

Each provider's value is its Shapley value of that utility (`shapley.py`: exact up to 10
providers, Monte Carlo permutations with a standard error beyond), in accuracy points (percent),
so the values add up to grand-coalition accuracy minus the empty-coalition baseline. The empty
coalition has no training data: its accuracy is that of always predicting the majority class of
the evaluation file, the best a data-free model can do on it (reported as `baseline`).

Input: one CSV table per dataset, each holding the target column and features. Joining tables
(e.g. an SDTM DM with an outcome table on USUBJID) is the caller's job before valuing
(`synthetic.join_files` does it for the demo data). Features are the evaluation file's columns
except the target, identifier columns (`IDENTIFIER_COLUMNS`) and ISO 8601 date columns (SDTM
`--DTC` variables), which identify rows rather than describe them; the report lists the
features used. A column's kind (numeric or categorical) is taken from the evaluation file.

A member's contributed model (`candidate`) is measured on the same evaluation file as its gain
in accuracy points over the same baseline. It must be ONNX, evaluated with onnxruntime: a
pickled scikit-learn estimator from another member would run that member's code on load, while
an ONNX file is a declarative graph of standard operators (no custom-op library is registered).
skl2onnx and onnxruntime install from PyPI, so ONNX was chosen over retraining from a declared
recipe: it measures the model the member actually built. The model's inputs are either one
tensor per feature column, named after the column (float/double/int64 for numeric columns,
string for categorical ones: what skl2onnx produces from a DataFrame pipeline), or a single
2-D float tensor of all features in the evaluation file's column order (numeric features only).
Its predicted label is the output named `label` (skl2onnx's), else the first output.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from .. import __version__
from ..errors import InvalidInput
from .shapley import DEFAULT_PERMUTATIONS, EXACT_LIMIT, shapley

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..client import Fullchain
    from ..duo import Purpose

ModelKind = Literal["logistic", "gbm"]
MODELS = ("logistic", "gbm")
REPORT_KIND = "fullchain.metering.value/1"
# Subject and study keys (SDTM, ADaM, OMOP): unique per row or constant, never a signal.
IDENTIFIER_COLUMNS = frozenset({"STUDYID", "DOMAIN", "USUBJID", "SUBJID", "SITEID", "person_id", "PERSON_ID"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}(T[\d:.]+)?)?$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputFile(_Model):
    """A file that went into the measurement: its name (never its local path), SHA-256, rows."""

    name: str
    sha256: str
    rows: int


class ProviderValue(_Model):
    provider: str
    value: float  # accuracy points (percent) this provider's data adds, Shapley-averaged
    std_error: float  # of `value`; 0 when computed exactly
    rows: int
    files: list[InputFile]


class CandidateResult(_Model):
    """A contributed model measured on the evaluation file."""

    name: str
    sha256: str
    format: Literal["onnx"]
    accuracy: float  # percent
    gain: float  # accuracy points over the baseline


class ValuationReport(_Model):
    kind: Literal["fullchain.metering.value/1"] = REPORT_KIND
    tool: str
    model: ModelKind
    target: str
    method: Literal["exact", "montecarlo"]
    permutations: int
    seed: int
    providers: list[ProviderValue]
    grand_accuracy: float  # percent, every provider's data together
    baseline_accuracy: float  # percent, the empty coalition
    baseline: str
    coalitions_evaluated: int
    features: list[str]
    eval: InputFile
    candidate: CandidateResult | None = None


def sha256_hex(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{what} {path} is not a readable file", hint="give the path of a CSV file")
    try:
        # Empty cells are missing; "NA" and the like stay values (a code, not a gap).
        return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"{what} {path} is not a readable CSV table ({str(exc).splitlines()[0]})",
                           hint="give one CSV table with a header row per dataset") from None


def _is_date_column(series: pd.Series) -> bool:
    values = series.dropna().astype(str).head(50)
    return len(values) > 0 and all(_ISO_DATE.match(v) for v in values)


def select_features(evaluation: pd.DataFrame, target: str) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of the evaluation table, as documented above."""
    import pandas as pd

    numeric, categorical = [], []
    for column in evaluation.columns:
        if column == target or column in IDENTIFIER_COLUMNS or column.upper().endswith("DTC"):
            continue
        series = evaluation[column]
        if series.isna().all() or series.nunique(dropna=True) < 2:
            continue  # constant on the evaluation set: it cannot tell rows apart
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            numeric.append(column)
        elif not _is_date_column(series):
            categorical.append(column)
    return numeric, categorical


def _frame(table: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """The feature columns of `table` in one fixed layout: numbers as float, categories as str
    (missing stays missing), columns a table lacks entirely as missing."""
    import numpy as np
    import pandas as pd

    out = pd.DataFrame(index=table.index)
    for column in numeric:
        out[column] = (pd.to_numeric(table[column], errors="coerce").astype(float) if column in table
                       else np.nan)
    for column in categorical:
        if column in table:
            values = table[column]
            out[column] = values.where(values.isna(), values.astype(str)).astype(object)
        else:
            out[column] = pd.Series([np.nan] * len(table), index=table.index, dtype=object)
    return out


def _labels(series: pd.Series) -> np.ndarray:
    """Targets as strings, so that 1, 1.0 and "1" in different files are one class."""
    import numpy as np

    def norm(v: Any) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return np.array([norm(v) for v in series], dtype=object)


def reference_model(kind: ModelKind, numeric: Sequence[str], categorical: Sequence[str], seed: int) -> Any:
    """The untrained reference scikit-learn model of `kind` for these columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    if kind == "logistic":
        prep = ColumnTransformer([
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
             list(numeric)),
            ("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                              ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                              ("scale", StandardScaler())]), list(categorical)),
        ])
        return Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=2000, random_state=seed))])
    if kind == "gbm":
        import numpy as np

        # Unknown and missing categories both become NaN, which the trees treat as missing.
        prep = ColumnTransformer([
            ("num", "passthrough", list(numeric)),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                   encoded_missing_value=np.nan), list(categorical)),
        ])
        flags = [False] * len(numeric) + [True] * len(categorical)
        return Pipeline([("prep", prep),
                         ("model", HistGradientBoostingClassifier(random_state=seed, categorical_features=flags))])
    raise InvalidInput(f"unknown model '{kind}'", hint="use one of " + ", ".join(MODELS))


class _Game:
    """The valuation game: training data per provider, the evaluation set, one model kind."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], evaluation: pd.DataFrame, target: str,
                 kind: ModelKind, seed: int) -> None:
        import numpy as np

        self.numeric, self.categorical = select_features(evaluation, target)
        if not self.numeric and not self.categorical:
            raise InvalidInput(f"the evaluation file has no feature column besides '{target}'",
                               hint="give tables with feature columns (identifiers and dates are not used)")
        self.features = [*self.numeric, *self.categorical]
        self.kind, self.seed = kind, seed
        self.x_eval = _frame(evaluation, self.numeric, self.categorical)
        self.y_eval = _labels(evaluation[target])
        classes, counts = np.unique(self.y_eval, return_counts=True)
        self.majority = str(classes[np.argmax(counts)])  # ties: the smallest label, deterministically
        self.baseline = float(np.mean(self.y_eval == self.majority))
        self.parts = {name: (_frame(t, self.numeric, self.categorical), _labels(t[target]))
                      for name, t in tables.items()}

    def accuracy(self, coalition: frozenset[str]) -> float:
        import numpy as np
        import pandas as pd

        members = sorted(coalition)  # union in a fixed order: same coalition, same model
        rows = [self.parts[m] for m in members if len(self.parts[m][1])]
        if not rows:
            return self.baseline
        x = pd.concat([r[0] for r in rows], ignore_index=True)
        y = np.concatenate([r[1] for r in rows])
        classes = np.unique(y)
        if len(classes) == 1:  # nothing to discriminate: the model can only say that one class
            return float(np.mean(self.y_eval == classes[0]))
        model = reference_model(self.kind, self.numeric, self.categorical, self.seed)
        model.fit(x, y)
        return float(np.mean(model.predict(self.x_eval) == self.y_eval))


def _load_tables(datasets: Mapping[str, Sequence[Path]], target: str
                 ) -> tuple[dict[str, pd.DataFrame], dict[str, list[InputFile]]]:
    import pandas as pd

    if not datasets:
        raise InvalidInput("no provider to value", hint="give at least one dataset (or --file PROVIDER=PATH)")
    tables, files = {}, {}
    for provider, paths in datasets.items():
        if not paths:
            raise InvalidInput(f"provider {provider} has no file", hint="give at least one file per provider")
        frames, inputs = [], []
        for path in paths:
            frame = _read_csv(Path(path), f"the dataset file of {provider}")
            if target not in frame.columns:
                raise InvalidInput(f"{Path(path).name} (provider {provider}) has no column '{target}'",
                                   hint="join the outcome into one table per dataset, or name the right --target")
            frame = frame[frame[target].notna()]
            frames.append(frame)
            inputs.append(InputFile(name=Path(path).name, sha256=sha256_hex(Path(path)), rows=len(frame)))
        tables[provider] = pd.concat(frames, ignore_index=True)
        files[provider] = inputs
    return tables, files


def value_providers(datasets: Mapping[str, Sequence[Path]], eval_file: Path, target: str,
                    model: ModelKind = "logistic", seed: int = 0, *, permutations: int | None = None,
                    exact_limit: int = EXACT_LIMIT, candidate: Path | None = None) -> ValuationReport:
    """Each provider's Shapley value of held-out accuracy on `eval_file`.

    `datasets` maps a provider (member) to its CSV files (each one table with `target`); rows
    with a missing target are left out. Exact over up to `exact_limit` providers, else (or when
    `permutations` is given) Monte Carlo over that many permutations. `candidate`: an ONNX
    model whose gain over the baseline is measured on the same file."""
    if model not in MODELS:
        raise InvalidInput(f"unknown model '{model}'", hint="use one of " + ", ".join(MODELS))
    if permutations is not None and permutations < 2:
        raise InvalidInput(f"{permutations} permutations cannot give a standard error",
                           hint=f"use at least 2 (default {DEFAULT_PERMUTATIONS})")
    evaluation = _read_csv(Path(eval_file), "the evaluation file")
    if target not in evaluation.columns:
        raise InvalidInput(f"the evaluation file {Path(eval_file).name} has no column '{target}'",
                           hint="name the target column present in every table with --target")
    evaluation = evaluation[evaluation[target].notna()].reset_index(drop=True)
    if evaluation.empty:
        raise InvalidInput(f"the evaluation file {Path(eval_file).name} has no row with '{target}'",
                           hint="give an evaluation table with labelled rows")
    tables, files = _load_tables(datasets, target)
    game = _Game(tables, evaluation, target, model, seed)
    from threadpoolctl import threadpool_limits

    # One thread: OpenMP's team (gradient boosting) on a busy machine runs tens of times slower
    # than one thread on these small fits, and results never depend on the thread count.
    with threadpool_limits(limits=1):
        result = shapley(tables, game.accuracy, exact_limit=exact_limit, permutations=permutations, seed=seed)
    providers = [ProviderValue(provider=p, value=100 * result.values[p], std_error=100 * result.std_errors[p],
                               rows=len(tables[p]), files=files[p]) for p in sorted(tables)]
    return ValuationReport(
        tool=f"fullchain {__version__}", model=model, target=target, method=result.method,
        permutations=result.permutations, seed=seed, providers=providers,
        grand_accuracy=100 * result.grand, baseline_accuracy=100 * result.empty,
        baseline=f"majority class of the evaluation file ('{game.majority}'), no training data",
        coalitions_evaluated=result.evaluations, features=game.features,
        eval=InputFile(name=Path(eval_file).name, sha256=sha256_hex(Path(eval_file)), rows=len(evaluation)),
        candidate=_candidate(candidate, game))


def _candidate(path: Path | None, game: _Game) -> CandidateResult | None:
    return None if path is None else measure_candidate(Path(path), game)


# ---- contributed models (ONNX) ----

_ONNX_FLOAT = {"tensor(float)": "float32", "tensor(double)": "float64"}
_ONNX_INT = {"tensor(int64)": "int64", "tensor(int32)": "int32"}


def _onnx_inputs(session: Any, game: _Game) -> dict[str, Any]:
    import numpy as np

    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    x = game.x_eval
    if set(names) <= set(game.features):
        feed = {}
        for spec in inputs:
            column = x[spec.name]
            if spec.type == "tensor(string)":
                feed[spec.name] = np.array([["" if v is None or v != v else str(v)] for v in column], dtype=object)
            elif spec.type in _ONNX_FLOAT:
                feed[spec.name] = _as_float(column).astype(_ONNX_FLOAT[spec.type]).reshape(-1, 1)
            elif spec.type in _ONNX_INT:
                values = _as_float(column)
                if np.isnan(values).any():
                    raise InvalidInput(f"the candidate model takes '{spec.name}' as an integer, but the evaluation "
                                       "file has missing values there", hint="export the model with float inputs")
                feed[spec.name] = values.astype(_ONNX_INT[spec.type]).reshape(-1, 1)
            else:
                raise InvalidInput(f"the candidate model's input '{spec.name}' is a {spec.type}",
                                   hint="use float, double, int64 or string inputs")
        return feed
    if len(inputs) == 1 and inputs[0].type in _ONNX_FLOAT and not game.categorical:
        width = inputs[0].shape[-1] if inputs[0].shape else None
        if isinstance(width, int) and width != len(game.features):
            raise InvalidInput(f"the candidate model takes {width} features, the evaluation file has "
                               f"{len(game.features)} ({', '.join(game.features)})",
                               hint="export the model over the evaluation file's feature columns")
        matrix = np.column_stack([_as_float(x[c]) for c in game.features])
        return {inputs[0].name: matrix.astype(_ONNX_FLOAT[inputs[0].type])}
    unknown = sorted(set(names) - set(game.features))
    raise InvalidInput(f"the candidate model's inputs {', '.join(unknown or names)} are not feature columns of the "
                       f"evaluation file ({', '.join(game.features)})",
                       hint="export the model with one input per feature column, named after it")


def _as_float(column: pd.Series) -> np.ndarray:
    import numpy as np

    return np.asarray(column, dtype=float)


def measure_candidate(path: Path, game: _Game) -> CandidateResult:
    import numpy as np

    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a dependency of fullchain
        raise InvalidInput("onnxruntime is not installed", hint="pip install onnxruntime") from None
    if not path.is_file():
        raise InvalidInput(f"the candidate model {path} is not a readable file", hint="give the path of an ONNX file")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # only errors: a model's warnings are not ours to print
    try:
        session = ort.InferenceSession(path.read_bytes(), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for anything not ONNX
        raise InvalidInput(f"the candidate model {path.name} is not a loadable ONNX model "
                           f"({str(exc).splitlines()[0][:200]})",
                           hint="export it with skl2onnx (to_onnx); pickled estimators are not accepted") from None
    outputs = [o.name for o in session.get_outputs()]
    label = "label" if "label" in outputs else outputs[0]
    try:
        predicted = session.run([label], _onnx_inputs(session, game))[0]
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"the candidate model {path.name} failed on the evaluation file "
                           f"({str(exc).splitlines()[0][:200]})",
                           hint="check that its inputs match the evaluation file's feature columns") from None
    predicted = _labels_of(np.asarray(predicted).reshape(-1))
    if len(predicted) != len(game.y_eval):
        raise InvalidInput(f"the candidate model gave {len(predicted)} labels for {len(game.y_eval)} rows",
                           hint="its label output must have one prediction per row")
    accuracy = float(np.mean(predicted == game.y_eval))
    return CandidateResult(name=path.name, sha256=sha256_hex(path), format="onnx", accuracy=100 * accuracy,
                           gain=100 * (accuracy - game.baseline))


def _labels_of(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return _labels(pd.Series([v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                              for v in values], dtype=object))


# ---- datasets on chain ----

def value_datasets(fc: Fullchain, dataset_ids: Sequence[int], *, eval_file: Path, target: str,
                   model: ModelKind = "logistic", seed: int = 0, permutations: int | None = None,
                   exact_limit: int = EXACT_LIMIT, candidate: Path | None = None,
                   purpose: Purpose | None = None, versions: Mapping[int, int] | None = None,
                   files: Mapping[str, Sequence[Path]] | None = None) -> ValuationReport:
    """Value datasets on chain that this profile may read (its own, and those it holds a
    license for): each is fetched and decrypted into a private temporary directory (deleted
    afterwards, whatever happens), grouped by owner, and valued with `value_providers`: a
    provider is a dataset owner's account. Licensed datasets are fetched for `purpose` (default:
    each license's own), and the fetch is recorded on chain as any licensee's access is.
    `files` adds local files per provider (a provider named like an owner joins its datasets)."""
    import shutil
    import tempfile

    from ..home import private_dir

    if not dataset_ids and not files:
        raise InvalidInput("no dataset to value", hint="give at least one dataset id")
    if len(set(dataset_ids)) != len(dataset_ids):
        raise InvalidInput("a dataset is named more than once", hint="give each dataset id once")
    index = fc.read_index() if dataset_ids else None
    owners = {}
    for dataset_id in dataset_ids:
        entry = index.dataset(dataset_id)  # type: ignore[union-attr]
        if entry is None:
            from ..errors import UnknownDataset

            raise UnknownDataset(f"there is no dataset {dataset_id}", hint="list them with `fullchain dataset list`")
        owners[dataset_id] = entry.info.owner
    scratch = Path(tempfile.mkdtemp(prefix="value-", dir=private_dir(fc.home / "tmp")))
    try:
        grouped: dict[str, list[Path]] = {p: list(paths) for p, paths in (files or {}).items()}
        for dataset_id in dataset_ids:
            version = (versions or {}).get(dataset_id)
            fetched = fc.datasets.fetch(dataset_id, scratch / f"dataset-{dataset_id}.csv", version=version,
                                        purpose=None if owners[dataset_id] == fc.address else purpose)
            # The report names the dataset version, not the local file.
            named = scratch / f"dataset-{dataset_id}-v{fetched.version}.csv"
            Path(fetched.path).rename(named)
            grouped.setdefault(owners[dataset_id], []).append(named)
        return value_providers(grouped, eval_file, target, model, seed, permutations=permutations,
                               exact_limit=exact_limit, candidate=candidate)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
