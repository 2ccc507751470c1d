"""A model trained in the pipeline environment predicts exactly the same in the model server's process, and the
serving image pins the same libraries (one resolution: images/serving/requirements.txt is resolved with
``-c requirements.txt``), so a pickle written by training is read by the very versions that wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import model_bundle

pytestmark = pytest.mark.serving

REPO_ROOT = Path(__file__).resolve().parents[2]
# What a pickled model depends on: the serving image must hold exactly the versions training used.
MODEL_LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")

# Runs in a fresh process, as the server does: loads the bundle (digest-checked), reads the rows, writes predictions.
PREDICT_SCRIPT = r"""
import json
import sys

import numpy as np
import pandas as pd

import model_bundle

bundle_dir, sha256, rows_file, result_file = sys.argv[1:5]
bundle = model_bundle.load(bundle_dir, expected_sha256=sha256)
with open(rows_file) as stream:
    payload = json.load(stream)
frame = pd.DataFrame(payload["rows"], columns=payload["columns"]).astype(payload["dtypes"])
frame = frame.where(frame.notna(), np.nan)
result = {
    "predictions": bundle.predict(frame).tolist(),
    "library_versions": model_bundle.library_versions(),
}
if bundle.task == "classification":
    result["probabilities"] = bundle.predict_proba(frame).tolist()
    result["classes"] = [str(label) for label in bundle.model.classes_]
with open(result_file, "w") as stream:
    json.dump(result, stream)
"""


def _rows_payload(frame: pd.DataFrame, json_rows) -> dict:
    """The rows as JSON (floats written with repr, so exact; missing values as null) plus the column dtypes."""
    return {
        "columns": list(frame.columns),
        "dtypes": {name: str(dtype) for name, dtype in frame.dtypes.items()},
        "rows": json_rows(frame),
    }


def _read_back(payload: dict) -> pd.DataFrame:
    """What the serving script builds from the payload (kept identical to PREDICT_SCRIPT)."""
    frame = pd.DataFrame(payload["rows"], columns=payload["columns"]).astype(payload["dtypes"])
    return frame.where(frame.notna(), np.nan)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_fresh_serving_process_predicts_exactly_like_training(request, task, tmp_path, json_rows, run_python):
    bundle, test_frame = request.getfixturevalue(f"{task}_bundle")
    frame = test_frame[bundle.feature_names]
    assert frame.isna().any().any(), "the rows should include missing values"
    payload = _rows_payload(frame, json_rows)
    rows_file, result_file = tmp_path / "rows.json", tmp_path / "predictions.json"
    rows_file.write_text(json.dumps(payload, allow_nan=False))
    # The file carries the rows faithfully, so any difference below comes from the process.
    pd.testing.assert_frame_equal(_read_back(json.loads(rows_file.read_text())), frame.reset_index(drop=True))

    run_python(PREDICT_SCRIPT, str(bundle.directory), bundle.card.sha256, str(rows_file), str(result_file))
    served = json.loads(result_file.read_text())

    trained_with = model_bundle.library_versions()
    for name in ("scikit-learn", "numpy", "pandas", "joblib"):
        assert served["library_versions"][name] == trained_with[name], name
    # One thread here (the script uses its default): a row's prediction does not depend on it.
    with threadpool_limits(limits=1):
        expected = np.asarray(bundle.predict(frame)).tolist()
        probabilities = bundle.predict_proba(frame).tolist() if task == "classification" else None
    assert len(served["predictions"]) == len(frame)
    assert served["predictions"] == expected
    if task == "classification":
        assert served["classes"] == [str(label) for label in bundle.model.classes_]
        assert served["probabilities"] == probabilities


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        name, separator, version = line.partition("==")
        if separator and not line.startswith((" ", "#")):
            pins[name.strip().lower()] = version.split()[0]
    return pins


def test_the_serving_image_pins_the_libraries_training_used_and_no_pipeline_packages():
    serving = _pins(REPO_ROOT / "images" / "serving" / "requirements.txt")
    training = _pins(REPO_ROOT / "requirements.txt")

    assert {name: serving.get(name) for name in MODEL_LIBRARIES} == {name: training[name] for name in MODEL_LIBRARIES}
    assert serving["kserve"] == training["kserve"]
    assert not {"kfp", "mlflow", "seldon-core"} & set(serving), "the serving image must stay slim"
