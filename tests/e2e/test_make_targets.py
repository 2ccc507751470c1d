"""The Makefile's local targets as the README promises them, run for real with the environment under test, each in
its own state and build directories on free ports: `make serve`, `make status`, `make stop`, `make clean`,
`make monitor-demo`, and `make run` as far as it goes without a cluster (it compiles with the image tag, then the
KFP client must fail, naming the endpoint; the run itself is tests/cluster/'s).

`make demo` and `make stop` after it are tests/e2e/test_demo.py's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
import requests
import yaml

import model_bundle
from cluster.rehearsal.common import built_image_tag
from components._common import registry
from serving import local_server, processes

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CURL = re.compile(r"^curl -s -X POST .*\\\n\s+-d .*$", re.MULTILINE)
MODEL_NAME = "house-prices"
# monitor_demo.py's data: the features its shifted market moves (bigger, newer, closer to the centre).
SHIFTED_FEATURES = ("size_sqm", "age_years", "distance_to_center_km")


def dirs(tmp_path: Path) -> list[str]:
    """STATE_DIR and BUILD_DIR of a test: never the repository's own."""
    return [f"STATE_DIR={tmp_path / 'state'}", f"BUILD_DIR={tmp_path / 'build'}"]


def succeeded(completed) -> str:
    assert completed.returncode == 0, f"{completed.args}:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
    return completed.stdout


def answer_to_printed_curl(stdout: str) -> requests.Response:
    """Sends the last curl example the output printed, as a user pasting it would."""
    commands = CURL.findall(stdout)
    assert commands, f"no curl example printed:\n{stdout[-3000:]}"
    command = shlex.split(commands[-1].replace("\\\n", " "))
    return requests.post(
        command[4],
        data=command[command.index("-d") + 1],
        headers=dict([command[command.index("-H") + 1].split(": ", 1)]),
        timeout=60,
    )


# --- make serve, make status, make stop ---------------------------------------------------------------------------


def test_serve_without_a_model_directory_prints_the_usage(make, tmp_path):
    completed = make("serve", *dirs(tmp_path))

    assert completed.returncode == 2
    assert "usage: make serve MODEL_DIR=<model directory> [MODEL_NAME=<OIP model name>]" in completed.stdout
    assert not (tmp_path / "state").exists()


def test_serve_then_status_lists_the_server_and_stop_stops_it(make, tmp_path, free_ports, regression_bundle):
    bundle, _ = regression_bundle
    port, metrics_port = free_ports(2)
    settings = [*dirs(tmp_path), f"PORT={port}", f"METRICS_PORT={metrics_port}"]
    serving_dir = tmp_path / "state" / "serving"
    try:
        served = succeeded(make("serve", *settings, f"MODEL_DIR={bundle.directory}", "MODEL_NAME=houses"))

        [server] = local_server.running(serving_dir)
        assert (server.http_port, server.metrics_port, server.model_name) == (port, metrics_port, "houses")
        assert f"serving {bundle.directory} as model 'houses'" in served
        assert f"predictions: http://127.0.0.1:{port}/v2/models/houses/infer" in served
        assert f"metrics:     http://127.0.0.1:{metrics_port}/metrics" in served
        # The digest the server verified is the one model.json records (no --sha256 given).
        metadata = requests.get(server.metadata_url, timeout=30).json()
        assert metadata["parameters"]["sha256"] == bundle.card.sha256
        answer = answer_to_printed_curl(served)
        assert answer.status_code == 200, answer.text
        [output] = answer.json()["outputs"]
        assert output["name"] == bundle.card.target and len(output["data"]) == 1
        assert requests.get(server.metrics_url, timeout=30).status_code == 200

        status = succeeded(make("status", *settings))
        assert status.strip() == local_server.describe(server).strip()

        stopped = succeeded(make("stop", *settings))
        assert f"stopped server(s) on port(s) [{port}]" in stopped
        assert not processes.is_alive(server.pid)
        assert not any(processes.port_in_use(used) for used in (port, metrics_port, server.grpc_port))
        assert "no local model server is running" in succeeded(make("status", *settings))
        assert "no local model server was running" in succeeded(make("stop", *settings))
    finally:
        local_server.stop_all(serving_dir)


def test_serve_refuses_a_model_file_other_than_its_card_records(make, tmp_path, free_ports, regression_bundle):
    bundle, _ = regression_bundle
    tampered = tmp_path / "model"
    shutil.copytree(bundle.directory, tampered)
    with open(tampered / model_bundle.MODEL_FILE, "ab") as stream:
        stream.write(b"\x00not the trained model")
    port, metrics_port = free_ports(2)
    settings = [*dirs(tmp_path), f"PORT={port}", f"METRICS_PORT={metrics_port}"]
    try:
        completed = make("serve", *settings, f"MODEL_DIR={tampered}")

        assert completed.returncode != 0
        assert "error: model server exited with code 1" in completed.stderr
        assert "digest mismatch" in completed.stderr and bundle.card.sha256 in completed.stderr
        assert "no local model server is running" in succeeded(make("status", *settings))
        assert not processes.port_in_use(port)
    finally:
        local_server.stop_all(tmp_path / "state" / "serving")


# --- make clean ---------------------------------------------------------------------------------------------------


def test_clean_stops_the_servers_and_removes_build_and_state(
    make, tmp_path, free_ports, regression_bundle, mlflow_state
):
    bundle, _ = regression_bundle
    state, build = mlflow_state, tmp_path / "build"  # the state directory holds a registry, as a run leaves it
    assert state == tmp_path / "state" and (state / "mlflow.db").is_file()
    port, metrics_port = free_ports(2)
    settings = [*dirs(tmp_path), f"PORT={port}", f"METRICS_PORT={metrics_port}"]
    try:
        # What compile and a run leave (compiling itself is tested with `make run` below).
        build.mkdir()
        (build / "training_pipeline.yaml").write_text("{}\n")
        succeeded(make("serve", *settings, f"MODEL_DIR={bundle.directory}"))
        [server] = local_server.running(state / "serving")

        cleaned = succeeded(make("clean", *settings))

        assert f"stopped server(s) on port(s) [{port}]" in cleaned
        assert not processes.is_alive(server.pid) and not processes.port_in_use(port)
        assert not state.exists() and not build.exists()
    finally:
        if state.exists():
            local_server.stop_all(state / "serving")


def test_clean_stops_the_monitor_demo_server_too(make, tmp_path, free_ports, regression_bundle):
    """make monitor-demo serves from STATE_DIR/monitor-demo: make clean deletes that directory, so it must stop that
    server first, or the server keeps its ports with no record left for make stop to find it by."""
    bundle, _ = regression_bundle
    state, monitor_state = tmp_path / "state", tmp_path / "state" / "monitor-demo"
    port, metrics_port = free_ports(2)
    served_as_monitor_demo = [f"STATE_DIR={monitor_state}", f"BUILD_DIR={tmp_path / 'build'}"]
    succeeded(
        make(
            "serve",
            *served_as_monitor_demo,
            f"PORT={port}",
            f"METRICS_PORT={metrics_port}",
            f"MODEL_DIR={bundle.directory}",
        )
    )
    [server] = local_server.running(monitor_state / "serving")
    try:
        cleaned = succeeded(make("clean", *dirs(tmp_path)))

        assert f"stopped server(s) on port(s) [{port}]" in cleaned
        assert not processes.is_alive(server.pid)
        assert not any(processes.port_in_use(used) for used in (port, metrics_port, server.grpc_port))
        assert not state.exists()
    finally:
        processes.stop_group(server.pid)  # by its process: the record that make stop reads may be gone


# --- make run, without a cluster ----------------------------------------------------------------------------------


def _images(pipeline_yaml: Path) -> tuple[set[str], str]:
    """(every step's image, the serving_image parameter's default) of a compiled pipeline."""
    spec = next(yaml.safe_load_all(pipeline_yaml.read_text()))
    steps = {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()}
    return steps, spec["root"]["inputDefinitions"]["parameters"]["serving_image"]["defaultValue"]


def test_run_compiles_for_the_image_tag_and_fails_naming_the_endpoint_when_none_answers(make, tmp_path, free_ports):
    [port] = free_ports(1)  # nothing listens there
    completed = make(
        "run",
        *dirs(tmp_path),
        f"KF_PIPELINES_ENDPOINT=http://127.0.0.1:{port}",
        "IMAGE_TAG=1.2.3-abc1234",
        "IMAGE_REGISTRY=registry.example/ml",
        "RUN_ARGS=target=price",
    )

    assert completed.returncode != 0
    steps, serving_image = _images(tmp_path / "build" / "training_pipeline.yaml")
    assert steps == {"registry.example/ml/kfp-mlops-components:1.2.3-abc1234"}
    assert serving_image == "registry.example/ml/kfp-mlops-serving:1.2.3-abc1234"
    # The run it would start: the training pipeline deploying to the cluster's Seldon, with the MLflow server.
    [command] = [line for line in completed.stdout.splitlines() if " run create " in line]
    assert f"--endpoint http://127.0.0.1:{port} run create -e kfp-mlops" in command
    parameters = completed.stdout[completed.stdout.index(" run create ") :]
    for parameter in (
        "tracking_uri=http://mlflow.kubeflow.svc.cluster.local:5000",
        "deploy_target=kubernetes",
        "namespace=models",
        "target=price",
    ):
        assert parameter in parameters
    output = completed.stdout + completed.stderr
    assert f"host='127.0.0.1', port={port}" in output and "Connection refused" in output
    assert f"KF_PIPELINES_ENDPOINT=http://127.0.0.1:{port}" in completed.stderr


def test_run_tags_the_images_with_the_version_and_commit_by_default(make, tmp_path, free_ports):
    [port] = free_ports(1)
    completed = make("run", *dirs(tmp_path), f"KF_PIPELINES_ENDPOINT=http://127.0.0.1:{port}")

    assert completed.returncode != 0
    tag = built_image_tag()  # the Makefile's rule: IMAGE_TAG if set, else <version>-<short commit>
    assert tag != "latest"
    if not os.environ.get("IMAGE_TAG"):
        version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert re.fullmatch(rf"{re.escape(version)}-[0-9a-f]{{7,}}", tag), tag
    steps, serving_image = _images(tmp_path / "build" / "training_pipeline.yaml")
    assert steps == {f"kfp-mlops-components:{tag}"}
    assert serving_image == f"kfp-mlops-serving:{tag}"


# --- make monitor-demo: one real run, several claims ---------------------------------------------------------------


@pytest.fixture(scope="module")
def monitor_demo(make, tmp_path_factory, free_ports):
    """`make monitor-demo` run once (two pipeline runs: minutes), its server stopped at the end."""
    root = tmp_path_factory.mktemp("monitor-demo")
    port, metrics_port = free_ports(2)
    settings = [f"STATE_DIR={root / 'state'}", f"BUILD_DIR={root / 'build'}"]
    settings += [f"MONITOR_PORT={port}", f"MONITOR_METRICS_PORT={metrics_port}"]
    state = root / "state" / "monitor-demo"
    try:
        completed = make("monitor-demo", *settings, timeout=1500)
        yield completed, state, port, settings
    finally:
        local_server.stop_all(state / "serving")


def _printed_path(stdout: str, label: str) -> Path:
    match = re.search(rf"^{re.escape(label)}: (\S+)$", stdout, re.MULTILINE)
    assert match, f"no {label!r} line printed:\n{stdout[-3000:]}"
    return Path(match[1])


def test_monitor_demo_serves_a_champion_whose_live_drift_gauges_rise_and_detects_drift(monitor_demo):
    completed, state, port, _ = monitor_demo
    stdout = succeeded(completed)

    # Its own state directory, beside `make demo`'s (STATE_DIR/monitor-demo).
    assert (state / "mlflow.db").is_file()
    assert "== 1. training a champion on houses-2025.csv and serving it" in stdout
    assert f"== 2. replaying houses-2026.csv to http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer" in stdout
    printed = stdout[stdout.index("live drift per feature (model_feature_drift):") :].split(":", 1)[1]
    drift = json.loads(printed[: printed.index("}") + 1])
    assert min(drift[feature] for feature in SHIFTED_FEATURES) > 0.3, drift
    # The monitoring pipeline's verdict, and the reports it points to.
    assert "\n# Drift detected\n" in stdout
    assert _printed_path(stdout, "drift summary").read_text().startswith("# Drift detected")
    assert "<html" in _printed_path(stdout, "drift report (Evidently)").read_text()[:2000].lower()
    assert _printed_path(stdout, "evaluation report of the retrained model").is_file()
    assert _printed_path(stdout, "gate decision").is_file()
    # What it says about the champion is the registry's truth, and that version is what serves.
    client = registry.connect(f"sqlite:///{state / 'mlflow.db'}")
    champion = str(registry.version_by_alias(client, MODEL_NAME, registry.CHAMPION).version)
    assert re.search(rf"^champion: v1 -> v{champion} \((replaced|kept)\), served at ", stdout, re.MULTILINE)
    served = requests.get(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}", timeout=30).json()
    assert served["parameters"]["model_version"] == champion


def test_monitor_demo_retrains_a_model_that_passes_the_gate_and_is_served(monitor_demo):
    """The README's promise: the model retrained on this year's sales passes the gate and replaces the champion."""
    completed, state, port, _ = monitor_demo
    stdout = succeeded(completed)

    replaced = f"champion: v1 -> v2 (replaced), served at http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer"
    assert replaced in stdout, _printed_path(stdout, "gate decision").read_text()[:2000]
    # On merit: the gain over the champion on rows neither model trained on has a confidence interval above zero.
    assert re.search(r"^- passed champion v1: r2 [0-9.]+ vs [0-9.]+, gain \+[0-9.]+ \(95% CI \[\+", stdout, re.M)
    client = registry.connect(f"sqlite:///{state / 'mlflow.db'}")
    assert str(registry.version_by_alias(client, MODEL_NAME, registry.CHAMPION).version) == "2"
    served = requests.get(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}", timeout=30).json()
    assert served["parameters"]["model_version"] == "2"


def test_monitor_demo_prints_the_stop_command_that_stops_its_server(make, monitor_demo):
    completed, state, port, settings = monitor_demo
    stdout = succeeded(completed)
    assert f"stop the server: make stop STATE_DIR={state}" in stdout

    build = next(setting for setting in settings if setting.startswith("BUILD_DIR="))
    stopped = succeeded(make("stop", f"STATE_DIR={state}", build))

    assert f"stopped server(s) on port(s) [{port}]" in stopped
    assert local_server.running(state / "serving") == []
