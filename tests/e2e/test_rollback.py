"""One-command rollback on this machine, as the README promises it (issue 18, acceptance 1): two training runs each
serve a new champion, `make rollback` serves the previous one again through the training pipeline's deploy step,
`make history` shows the three champion moves with their causes, and a rollback to a version whose files were
altered is refused naming the file while the served version stays served.

Real steps under kfp.local, a real MLflow SQLite registry and a real model server, in a temporary state directory
on ports of this module's own range.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import requests

import model_bundle
from components._common import registry
from serving import local_server

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "house-prices"
PORT_RANGE = range(19200, 19300)  # this module's own: no other test serves there
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# v1 is a deliberately weak model (the gate approves it on a cold start: it beats the constant baseline); v2, a
# linear model on other rows, is significantly better, so the gate approves it over v1. Both train in seconds.
WEAK = [{"model_type": "hist_gradient_boosting", "hyperparameters": {"max_iter": 3, "max_depth": 1}}]
LINEAR = [{"model_type": "linear", "hyperparameters": {}}]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ports_in_range(count: int) -> list[int]:
    """``count`` ports of PORT_RANGE free now, each with its gRPC port (+500) free too."""
    found = [port for port in PORT_RANGE if _free(port) and _free(port + 500)][:count]
    assert len(found) == count, f"fewer than {count} free ports in {PORT_RANGE}"
    return found


def train(state: Path, rows: int, seed: int, candidates: list, ports: dict) -> str:
    """A training run serving its champion locally; returns its output."""
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "run_local.py"),
            "training",
            "--state-dir",
            str(state),
            f"source_uri=sample://house-prices?rows={rows}&seed={seed}",
            f"candidates={json.dumps(candidates)}",
            "deploy_target=local",
            f"serving_port={ports['PORT']}",
            f"metrics_port={ports['METRICS_PORT']}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    output = ANSI.sub("", completed.stdout + completed.stderr)
    assert completed.returncode == 0, output[-4000:]
    return output


def served(ports: dict) -> dict:
    """The served model's OIP metadata parameters (its version and the digest it verified)."""
    url = f"http://127.0.0.1:{ports['PORT']}/v2/models/{MODEL_NAME}"
    return requests.get(url, timeout=30).json()["parameters"]


def champion_moves(history_output: str) -> list[list[str]]:
    """The champion rows of `make history`'s table: its columns, split where the table puts two spaces or more."""
    return [
        re.split(r"\s{2,}", line.strip())
        for line in history_output.splitlines()
        if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+champion\s", line)
    ]


def version_file(state: Path, version: str, name: str) -> Path:
    """A registered version's file in the local artifact store (STATE_DIR/mlartifacts)."""
    client = registry.connect(f"sqlite:///{state / 'mlflow.db'}")
    return Path(unquote(urlparse(client.get_model_version(MODEL_NAME, version).source).path)) / name


def test_rollback_serves_the_previous_champion_again_and_refuses_a_tampered_version(make, tmp_path):
    state, build = tmp_path / "state", tmp_path / "build"
    http_port, metrics_port = ports_in_range(2)
    ports = {"PORT": http_port, "METRICS_PORT": metrics_port}
    settings = [f"STATE_DIR={state}", f"BUILD_DIR={build}", *(f"{name}={port}" for name, port in ports.items())]
    client = registry.connect(f"sqlite:///{state / 'mlflow.db'}")
    try:
        # 1. v1 served (cold start), then v2 served: the gate approves it over v1.
        train(state, 600, 1, WEAK, ports)
        second = train(state, 600, 2, LINEAR, ports)
        assert "# Challenger approved" in second and "passed champion v1: r2 " in second, second[-4000:]
        digests = {v: client.get_model_version(MODEL_NAME, v).tags[registry.MODEL_SHA256_TAG] for v in ("1", "2")}
        assert served(ports)["sha256"] == digests["2"]

        # 2. make rollback, no version: the previous champion in the history, served and made the champion again.
        rolled = make("rollback", *settings, f"MODEL={MODEL_NAME}", "REASON=v2's answers look off")
        output = rolled.stdout + rolled.stderr
        assert rolled.returncode == 0, output[-4000:]
        assert served(ports)["sha256"] == digests["1"] and served(ports)["model_version"] == "1"
        assert str(registry.version_by_alias(client, MODEL_NAME, registry.CHAMPION).version) == "1"
        assert f"{MODEL_NAME} v1, the champion, is served on port {http_port}" in output

        # 3. make history: the three champion moves, with their causes and the rollback's reason.
        shown = make("history", *settings, f"MODEL={MODEL_NAME}")
        assert shown.returncode == 0, shown.stderr
        moves = champion_moves(shown.stdout)
        assert [(move[2], move[3], move[4]) for move in moves] == [
            ("(none) -> 1", digests["1"][:12], "training"),
            ("1 -> 2", digests["2"][:12], "training"),
            ("2 -> 1", digests["1"][:12], "rollback"),
        ], shown.stdout
        assert moves[2][5].startswith("rollback-pipeline-") and moves[2][-1] == "v2's answers look off"
        assert "moved outside the suite" not in shown.stdout

        # 4. v2's data contract altered in the artifact store: the rollback to it is refused, naming the file, and
        # v1 stays served and champion.
        with version_file(state, "2", model_bundle.SCHEMA_FILE).open("a") as stream:
            stream.write("\n")
        refused = make("rollback", *settings, f"MODEL={MODEL_NAME}", "VERSION=2")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0
        assert f"refusing to roll back to {MODEL_NAME} v2: its files fail their digest checks" in output
        assert re.search(r"digest mismatch for \S+/model/schema\.json", output), output[-4000:]
        assert served(ports)["sha256"] == digests["1"]
        assert str(registry.version_by_alias(client, MODEL_NAME, registry.CHAMPION).version) == "1"
        assert len(champion_moves(make("history", *settings, f"MODEL={MODEL_NAME}").stdout)) == 3
    finally:
        stopped = make("stop", *settings)
        local_server.stop_all(state / "serving")  # in case make itself failed
    assert stopped.returncode == 0 and f"stopped server(s) on port(s) [{http_port}]" in stopped.stdout


# --- usage ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "usage"),
    [
        ("history", "usage: make history MODEL=<registered model name>"),
        ("rollback", 'usage: make rollback MODEL=<registered model name> [VERSION=<version>] [REASON="why"] [FORCE=1]'),
    ],
)
def test_without_a_model_the_usage_is_printed(make, tmp_path, target, usage):
    completed = make(target, f"STATE_DIR={tmp_path / 'state'}", f"BUILD_DIR={tmp_path / 'build'}")

    assert completed.returncode == 2
    assert usage in completed.stdout
    assert not (tmp_path / "state").exists()


def test_history_of_an_unknown_model_fails_naming_it_and_creates_no_registry(make, tmp_path):
    completed = make("history", f"STATE_DIR={tmp_path / 'state'}", f"BUILD_DIR={tmp_path / 'build'}", "MODEL=houses")

    assert completed.returncode != 0
    assert "error: the registry at " in completed.stderr and "has no model 'houses'" in completed.stderr
    assert not (tmp_path / "state" / "mlflow.db").exists()


def test_a_rollback_of_an_unknown_model_fails_naming_it(make, tmp_path, mlflow_state):
    port, metrics_port = ports_in_range(2)
    completed = make(
        "rollback",
        f"STATE_DIR={mlflow_state}",
        f"BUILD_DIR={tmp_path / 'build'}",
        f"PORT={port}",
        f"METRICS_PORT={metrics_port}",
        "MODEL=houses",
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "has no model 'houses'" in output and "Inner task failed: 'rollback-model'" in output
    assert local_server.running(mlflow_state / "serving") == []


def test_make_run_starts_the_rollback_pipeline_on_the_cluster(make, tmp_path):
    [port] = ports_in_range(1)  # nothing listens there: the run cannot start, the command it ran is what counts
    completed = make(
        "run",
        f"STATE_DIR={tmp_path / 'state'}",
        f"BUILD_DIR={tmp_path / 'build'}",
        f"KF_PIPELINES_ENDPOINT=http://127.0.0.1:{port}",
        "IMAGE_TAG=1.2.3-abc1234",
        "PIPELINE=rollback",
        "RUN_ARGS=model_name=house-prices reason=slow",
    )

    assert completed.returncode != 0
    assert (tmp_path / "build" / "rollback_pipeline.yaml").is_file()
    [command] = [line for line in completed.stdout.splitlines() if " run create " in line]
    assert '-r "rollback 1.2.3-abc1234"' in command
    parameters = completed.stdout[completed.stdout.index(" run create ") :]
    assert f"-f {tmp_path / 'build'}/rollback_pipeline.yaml" in parameters
    for parameter in ("deploy_target=kubernetes", "namespace=models", "model_name=house-prices", "reason=slow"):
        assert parameter in parameters
    assert f"KF_PIPELINES_ENDPOINT=http://127.0.0.1:{port}" in completed.stderr
