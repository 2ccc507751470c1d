"""monitor_demo.py without its pipeline runs: a failed first training stops the demo with its exit code, and
MLflow's progress bars are off for the runs' steps."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

MONITOR_DEMO = Path(__file__).resolve().parents[2] / "monitor_demo.py"
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@pytest.fixture
def monitor_demo():
    # monitor_demo.py is a script at the repository root, not part of an installed package.
    spec = importlib.util.spec_from_file_location("monitor_demo_under_test", MONITOR_DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_first_training_stops_the_demo_with_its_exit_code(monitor_demo, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(PROGRESS_BAR, raising=False)  # put back as it was after the test
    runs = []

    def failing_run(argv):
        runs.append((argv[0], os.environ.get(PROGRESS_BAR)))
        return 3

    monkeypatch.setattr(monitor_demo.run_local, "main", failing_run)

    assert monitor_demo.main(["--state-dir", str(tmp_path)]) == 3

    # No monitoring run after it, and the steps of the run it made drew no progress bars.
    assert runs == [("training", "false")]
    assert (
        "error: the first training run failed (exit code 3; its error is above): nothing to monitor"
        in capsys.readouterr().err
    )
