"""`make demo` as a user runs it, more than once: every run ends with the champion served and how to call it printed
(a Python example with kserve's OIP client, then an OIP curl; both are run here as a user would paste them), whether
the run deployed a model, the gate kept the champion after `make stop`, or a server was already up.

Runs the real Makefile (in its own state and build directories, on free ports) with the environment under test
(the ``make`` fixture of tests/fixtures.py).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import requests

from components._common import registry
from components.deploy_model.manifests import deployment_name
from serving import local_server

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CURL = re.compile(r"^curl -s -X POST .*\\\n\s+-d .*$", re.MULTILINE)
PYTHON_EXAMPLE = re.compile(r"^\S+python - <<'EOF'\n.*?^EOF$", re.MULTILINE | re.DOTALL)
MODEL_NAME = "house-prices"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, free_ports, make):
    """``demo(target)`` runs ``make <target>`` with this module's state, build directory and ports; the first demo
    has run (a cold start: its model deployed). Every server is stopped at the end."""
    state_dir = tmp_path_factory.mktemp("demo-state")
    build_dir = tmp_path_factory.mktemp("demo-build")
    port, metrics_port = free_ports(2)
    settings = [f"STATE_DIR={state_dir}", f"BUILD_DIR={build_dir}", f"PORT={port}", f"METRICS_PORT={metrics_port}"]

    def run(target: str) -> subprocess.CompletedProcess:
        completed = make(target, *settings)
        assert completed.returncode == 0, f"make {target}:\n{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        return completed

    run.state_dir, run.port, run.metrics_port = state_dir, port, metrics_port
    try:
        first = run("demo")
        assert f"{MODEL_NAME} v1 is the champion, served at http://127.0.0.1:{port}/" in first.stdout
        yield run
    finally:
        local_server.stop_all(state_dir / "serving")


def answer_to_printed_curl(stdout: str, port: int) -> requests.Response:
    """Sends the request of the last curl example the run printed, as a user pasting it would."""
    commands = CURL.findall(stdout)
    assert commands, f"no curl example printed:\n{stdout[-3000:]}"
    command = shlex.split(commands[-1].replace("\\\n", " "))
    infer_url = f"http://127.0.0.1:{port}/v2/models/{deployment_name(MODEL_NAME)}/infer"
    assert command[:5] == ["curl", "-s", "-X", "POST", infer_url]
    return requests.post(
        command[4],
        data=command[command.index("-d") + 1],
        headers=dict([command[command.index("-H") + 1].split(": ", 1)]),
        timeout=60,
    )


def output_of_printed_python_example(stdout: str) -> str:
    """Runs the last Python example the run printed (a shell block: interpreter and script), as a user would."""
    examples = PYTHON_EXAMPLE.findall(stdout)
    assert examples, f"no Python example printed:\n{stdout[-3000:]}"
    completed = subprocess.run(
        ["bash", "-c", examples[-1]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def champion(state_dir: Path) -> str:
    client = registry.connect(f"sqlite:///{state_dir / 'mlflow.db'}")
    return str(registry.version_by_alias(client, MODEL_NAME, registry.CHAMPION).version)


def assert_answers(stdout: str, port: int, metrics_port: int) -> None:
    response = answer_to_printed_curl(stdout, port)
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["outputs"]
    assert prediction["name"] == "price"
    assert len(prediction["data"]) == 1 and prediction["data"][0] > 0
    # The curl is what the run ends with, followed only by make's two hints (metrics, stop).
    curl = CURL.findall(stdout)[-1]
    after = stdout[stdout.rindex(curl) + len(curl) :].strip().splitlines()
    assert [line.split(":")[0] for line in after] == ["metrics", "stop"], after
    python_output = output_of_printed_python_example(stdout)
    assert python_output.strip() == f"{{'price': {prediction['data']}}}"
    assert f"metrics: curl -s http://127.0.0.1:{metrics_port}/metrics | grep ^model_" in stdout


def test_demo_after_stop_serves_the_kept_champion_again(demo):
    stopped = demo("stop")
    assert f"stopped server(s) on port(s) [{demo.port}]" in stopped.stdout

    again = demo("demo")

    # The same data and configuration give the same model: a tie, the champion stays and deploy is skipped...
    assert "(a tie; policy ties=keep_champion)" in again.stdout
    assert champion(demo.state_dir) == "1"
    # ...and the champion is served anyway, from the registry.
    assert f"{MODEL_NAME} v1, the champion, was not served on port {demo.port}: started it" in again.stdout
    [server] = local_server.running(demo.state_dir / "serving")
    assert server.http_port == demo.port
    assert_answers(again.stdout, demo.port, demo.metrics_port)


def test_demo_while_serving_keeps_the_one_server(demo):
    [before] = local_server.running(demo.state_dir / "serving")

    again = demo("demo")

    assert f"{MODEL_NAME} v1, the champion, is served on port {demo.port}" in again.stdout
    assert local_server.running(demo.state_dir / "serving") == [before]
    assert_answers(again.stdout, demo.port, demo.metrics_port)
