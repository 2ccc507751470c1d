"""model.joblib is the whole model: loaded with joblib where only scikit-learn, pandas and numpy are installed (no
code of this repository), it predicts from raw rows read by pandas.read_csv exactly what the model server and MLflow
answer. The rows hold what real files hold: true/false, integer-coded categories (read as 1.0, 2.0, NaN when a
value is blank), missing numbers and categories, and numbers stored as text."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from kfp import dsl

import model_bundle
from components._common.datasets import read_dataset
from components.ingest_data.component import ingest_data
from components.register_model.logic import add_sklearn_flavour
from components.train_model.logic import train

pytestmark = pytest.mark.serving

REPO_ROOT = Path(__file__).resolve().parents[2]
# What a user of model.joblib needs: the pinned versions of these, nothing else (scipy and joblib come with them).
STANDALONE_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "joblib")
INSTALL_TIMEOUT = 600
# The scoring file read as a user would read it, balances kept as text (an export that quoted its numbers).
READ_OPTIONS = {"dtype": {"balance": "str"}}

# Runs in the standalone environment with `python -I` from an empty folder: nothing of this repository importable.
STANDALONE_SCRIPT = r"""
import json
import shutil
import sys

import joblib
import pandas as pd

model_file, rows_file, read_options, result_file = sys.argv[1:5]
try:
    import model_bundle  # noqa: F401
except ImportError:
    importable = False
else:
    importable = True
model = joblib.load(model_file)
rows = pd.read_csv(rows_file, **json.loads(read_options))
result = {"repository_importable": importable, "predictions": model.predict(rows).tolist()}
if hasattr(model, "predict_proba"):
    result["probabilities"] = model.predict_proba(rows).tolist()
with open(result_file, "w") as stream:
    json.dump(result, stream)
"""


def _table(rows: int, seed: int, scoring: bool) -> pd.DataFrame:
    """Customers with a spend (regression target) and a default flag (classification target).

    Training rows spell a region "X" now and then, so the region column is text; scoring rows hold only the
    numeric codes and blanks, which pandas.read_csv reads as floats.
    """
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, rows).round(2)
    balance = rng.gamma(2.0, 800.0, rows).round(2)
    student = rng.random(rows) < 0.3
    codes = rng.choice(["1", "2", "3"] if scoring else ["1", "2", "3", "X"], rows)
    segment = rng.choice(["retail", "premium", "business"], rows).astype(object)
    spend = 0.02 * income + 0.5 * balance + 900 * student + (codes == "2") * 700 + rng.normal(0, 150, rows)
    default = np.where(balance / 1600 + student + (codes == "3") + rng.normal(0, 0.4, rows) > 2.0, "yes", "no")
    frame = pd.DataFrame(
        {
            "income": income,
            "balance": balance,
            "student": student,
            "region": codes.astype(object),
            "segment": segment,
            "spend": spend.round(2),
            "default": default,
        }
    )
    blank = rng.random((rows, 3)) < 0.1
    frame.loc[blank[:, 0], "income"] = np.nan
    frame.loc[blank[:, 1], "region"] = None
    frame.loc[blank[:, 2], "segment"] = None
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("customers")
    paths = {"train": directory / "train.csv", "score": directory / "score.csv"}
    _table(600, 1, scoring=False).to_csv(paths["train"], index=False)
    _table(80, 2, scoring=True).to_csv(paths["score"], index=False)
    return paths


@pytest.fixture(scope="module")
def scoring_rows(files) -> pd.DataFrame:
    rows = pd.read_csv(files["score"], **READ_OPTIONS)
    # The raw kinds this test is about, as pandas gives them.
    assert rows["student"].dtype == bool
    assert rows["region"].dtype == "float64" and rows["region"].isna().any()
    assert rows["balance"].dtype == object and isinstance(rows["balance"].iloc[0], str)
    assert rows["income"].isna().any() and rows["segment"].isna().any()
    return rows


@pytest.fixture(scope="module")
def standalone_python(tmp_path_factory) -> Path:
    """A fresh virtual environment with only the pinned scientific packages (uv from .venv installs them)."""
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name in STANDALONE_PACKAGES:
            pins[name] = version.split()[0]
    assert set(pins) == set(STANDALONE_PACKAGES), f"requirements.txt pins {pins}"
    venv = tmp_path_factory.mktemp("standalone") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    uv = Path(sys.executable).parent / "uv"
    requirements = [f"{name}=={version}" for name, version in pins.items()]
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *requirements],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    return venv / "bin" / "python"


def _ingested(training_file: Path, directory: Path) -> pd.DataFrame:
    """The training file as the pipeline's steps read it: through ingest_data, then the Parquet dataset."""
    dataset = dsl.Dataset(name="dataset", uri=str(directory / "dataset"), metadata={})
    ingest_data.python_func(source_uri=str(training_file), dataset=dataset)
    return read_dataset(dataset.path)


def _bundle(directory: Path, training_file: Path, target: str, task: str) -> model_bundle.Bundle:
    frame = _ingested(training_file, directory.parent)
    assert frame["student"].dtype == bool and frame["region"].dtype == object  # as ingest_data types them
    # The other target is excluded: whole rows still predict, everywhere.
    other = {"spend": "default", "default": "spend"}[target]
    model, card = train(frame, target, task, validation_fraction=0, excluded_columns={other: "exclude_columns"})
    assert other not in [feature["name"] for feature in card.features]
    model_bundle.save(directory, model, card)
    bundle = model_bundle.load(directory)
    add_sklearn_flavour(bundle, directory)
    return bundle


def _standalone(python: Path, bundle: model_bundle.Bundle, rows_file: Path, workdir: Path) -> dict:
    workdir.mkdir()
    result_file = workdir / "result.json"
    subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            STANDALONE_SCRIPT,
            str(bundle.directory / model_bundle.MODEL_FILE),
            str(rows_file),
            json.dumps(READ_OPTIONS),
            str(result_file),
        ],
        cwd=workdir,
        check=True,
        timeout=120,
    )
    return json.loads(result_file.read_text())


def _served(server, bundle: model_bundle.Bundle, rows: pd.DataFrame, oip_table) -> tuple[list, list | None]:
    """The server's answers to the rows sent as an OIP client sends a table: booleans as BOOL, numbers as FP64
    (the integer-coded categories too), text as BYTES, missing values as null. The balances read as text go as
    the numbers they are: an OIP numeric column takes a numeric datatype."""
    body = oip_table(bundle, rows.assign(balance=rows["balance"].astype("float64")))
    datatypes = {entry["name"]: entry["datatype"] for entry in body["inputs"]}
    assert datatypes["student"] == "BOOL" and datatypes["region"] == "FP64" and datatypes["segment"] == "BYTES"
    if bundle.task == "classification":
        body["parameters"]["probabilities"] = True
    response = requests.post(
        server.infer_url,
        data=json.dumps(body, allow_nan=False),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
    predictions = outputs[bundle.card.target]
    if bundle.task != "classification":
        return predictions, None
    classes = [str(label) for label in bundle.card.classes]
    columns = [outputs[f"probability_{label}"] for label in classes]
    return predictions, [list(row) for row in zip(*columns, strict=True)]


@pytest.mark.parametrize(("target", "task"), [("spend", "regression"), ("default", "classification")])
def test_model_file_alone_predicts_raw_csv_rows_as_the_server_and_mlflow_do(
    target, task, files, scoring_rows, standalone_python, serve_bundle, free_ports, tmp_path, oip_table
):
    bundle = _bundle(tmp_path / "model", files["train"], target, task)

    alone = _standalone(standalone_python, bundle, files["score"], tmp_path / "empty")
    assert alone["repository_importable"] is False

    import mlflow.pyfunc
    import mlflow.sklearn

    pyfunc = mlflow.pyfunc.load_model(str(bundle.directory)).predict(scoring_rows)
    assert list(np.asarray(pyfunc)) == alone["predictions"]
    with serve_bundle(bundle, tmp_path / "state", free_ports(3)) as server:
        served, probabilities = _served(server, bundle, scoring_rows, oip_table)
    assert served == alone["predictions"]
    if task == "classification":
        assert set(alone["predictions"]) == {"yes", "no"}
        assert probabilities == alone["probabilities"]
        native = mlflow.sklearn.load_model(str(bundle.directory)).predict_proba(scoring_rows)
        assert native.tolist() == alone["probabilities"]


def test_an_integer_coded_category_read_as_floats_is_the_category_training_saw(files, scoring_rows, tmp_path):
    # pandas reads the codes 1, 2, 3 and blanks as 1.0, 2.0, 3.0, NaN; the model must see "1", "2", "3".
    bundle = _bundle(tmp_path / "model", files["train"], "spend", "regression")
    as_text = scoring_rows.assign(
        region=scoring_rows["region"].map(lambda code: None if pd.isna(code) else f"{code:.0f}")
    )

    np.testing.assert_array_equal(bundle.predict(scoring_rows), bundle.predict(as_text))
    preprocess = bundle.model.named_steps["preprocess"]
    categorical = {name: columns for name, _, columns in preprocess.transformers_}["categorical"]
    encoder = preprocess.named_transformers_["categorical"].named_steps["one_hot"]
    regions = encoder.categories_[list(categorical).index("region")].tolist()
    assert {"1", "2", "3"} <= set(regions) and "1.0" not in regions


def test_the_readme_lines_predict_with_only_the_pinned_libraries(
    regression_bundle, houses_csv, standalone_python, tmp_path
):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("`model.joblib` **is the whole model**") :]
    snippet = section[section.index("```python\n") + len("```python\n") : section.index("```\n", 10)]
    assert len([line for line in snippet.splitlines() if line.strip()]) == 3, snippet
    bundle, _ = regression_bundle
    workdir = tmp_path / "user"
    workdir.mkdir()
    shutil.copy(bundle.directory / model_bundle.MODEL_FILE, workdir / "model.joblib")
    shutil.copy(houses_csv, workdir / "houses.csv")

    result = subprocess.run(
        [str(standalone_python), "-I", "-c", snippet], cwd=workdir, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    printed = np.array(result.stdout.replace("[", " ").replace("]", " ").split(), dtype="float64")
    expected = bundle.predict(pd.read_csv(houses_csv))
    np.testing.assert_allclose(printed, expected, rtol=1e-6)  # numpy prints 8 significant digits
