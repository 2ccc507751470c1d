"""A model trained in the pipeline runtime (.venv) predicts exactly the same in the serving runtime (.venv-serving)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import model_bundle

pytestmark = pytest.mark.serving

# Runs in .venv-serving: loads the bundle (digest-checked), reads the rows, writes predictions as JSON.
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
def test_serving_runtime_predicts_exactly_like_the_training_runtime(
    request, task, tmp_path, json_rows, run_serving_script
):
    bundle, test_frame = request.getfixturevalue(f"{task}_bundle")
    frame = test_frame[bundle.feature_names]
    assert frame.isna().any().any(), "the rows should include missing values"
    payload = _rows_payload(frame, json_rows)
    rows_file, result_file = tmp_path / "rows.json", tmp_path / "predictions.json"
    rows_file.write_text(json.dumps(payload, allow_nan=False))
    # The file carries the rows faithfully, so any difference below comes from the runtime.
    pd.testing.assert_frame_equal(_read_back(json.loads(rows_file.read_text())), frame.reset_index(drop=True))

    run_serving_script(PREDICT_SCRIPT, str(bundle.directory), bundle.card.sha256, str(rows_file), str(result_file))
    served = json.loads(result_file.read_text())

    # Two runtimes with the same pinned libraries.
    trained_with = model_bundle.library_versions()
    for name in ("scikit-learn", "numpy", "pandas", "joblib"):
        assert served["library_versions"][name] == trained_with[name], name
    # One thread here (the serving script uses its default): a row's prediction does not depend on it.
    with threadpool_limits(limits=1):
        expected = np.asarray(bundle.predict(frame)).tolist()
        inputs = model_bundle.coerce_features(frame, bundle.features)
        probabilities = bundle.model.predict_proba(inputs).tolist() if task == "classification" else None
    assert len(served["predictions"]) == len(frame)
    assert served["predictions"] == expected
    if task == "classification":
        assert served["classes"] == [str(label) for label in bundle.model.classes_]
        assert served["probabilities"] == probabilities


def test_the_runtimes_are_distinct(run_serving_script):
    """The serving interpreter has seldon-core and no kfp; this one has kfp and no seldon-core."""
    import importlib.util

    assert importlib.util.find_spec("kfp") is not None
    assert importlib.util.find_spec("seldon_core") is None
    result = run_serving_script(
        "import importlib.util, json; "
        "print(json.dumps([importlib.util.find_spec(n) is not None for n in ('seldon_core', 'kfp')]))"
    )
    assert json.loads(result.stdout) == [True, False]
