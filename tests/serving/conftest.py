"""Real Seldon Core model servers (run from .venv-serving) for the serving tests, one per task, on free ports.

Helpers are fixtures rather than importable functions, so the tests work under any pytest import mode.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

import model_bundle
from serving import local_server

# Bounded waits: server start-up (sklearn + seldon imports, gunicorn) and one serving-environment script.
START_TIMEOUT = 60.0
SUBPROCESS_TIMEOUT = 120.0
# The regression server's batch limit (graph parameter max_rows), small enough to test cheaply.
MAX_ROWS = 1000


def start_server(
    model_dir: Path,
    sha256: str,
    state_dir: Path,
    ports: list[int],
    timeout: float = START_TIMEOUT,
    parameters: dict | None = None,
) -> local_server.LocalServer:
    """``local_server.start`` on the three given ports (http, metrics, grpc)."""
    executable = local_server.serving_venv() / "bin" / "seldon-core-microservice"
    if not executable.exists():
        pytest.fail(f"{executable} not found: run `make venv` (the serving tests need .venv-serving)")
    http_port, metrics_port, grpc_port = ports
    return local_server.start(
        model_dir, sha256, state_dir, http_port, metrics_port, grpc_port, timeout=timeout, parameters=parameters
    )


@contextlib.contextmanager
def serving(
    bundle: model_bundle.Bundle, state_dir: Path, ports: list[int], parameters: dict | None = None
) -> Iterator[local_server.LocalServer]:
    """A started server for ``bundle``, stopped afterwards whatever happens (start() cleans up its own failures)."""
    server = start_server(bundle.directory, bundle.card.sha256, state_dir, ports, parameters=parameters)
    try:
        yield server
    finally:
        local_server.stop(server.http_port, state_dir)
        leftover = local_server.running(state_dir)
        assert not leftover, f"server(s) still running after stop: {leftover}"


@pytest.fixture(scope="session")
def max_rows() -> int:
    """The regression server's batch limit."""
    return MAX_ROWS


@pytest.fixture(scope="session")
def regression_server(regression_bundle, tmp_path_factory, free_ports) -> Iterator[local_server.LocalServer]:
    """A real server for the regression bundle, with its own state directory."""
    bundle, _ = regression_bundle
    state_dir = tmp_path_factory.mktemp("regression-server-state")
    with serving(bundle, state_dir, free_ports(3), parameters={"max_rows": MAX_ROWS}) as server:
        yield server


@pytest.fixture(scope="session")
def classification_server(classification_bundle, tmp_path_factory, free_ports) -> Iterator[local_server.LocalServer]:
    """A real server for the classification bundle, with its own state directory."""
    bundle, _ = classification_bundle
    with serving(bundle, tmp_path_factory.mktemp("classification-server-state"), free_ports(3)) as server:
        yield server


def _json_value(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def rows_as_json(frame: pd.DataFrame) -> list[list]:
    """The rows of ``frame`` as JSON-native lists: missing values become None (JSON null)."""
    return [[_json_value(value) for value in row] for row in frame.astype(object).itertuples(index=False, name=None)]


@pytest.fixture(scope="session")
def json_rows() -> Callable[[pd.DataFrame], list[list]]:
    """``json_rows(frame)``: the frame's rows as JSON-native lists, NaN as None."""
    return rows_as_json


@pytest.fixture(scope="session")
def run_serving_script(serving_python) -> Callable[..., subprocess.CompletedProcess]:
    """``run_serving_script(source, *args)``: runs Python source with the .venv-serving interpreter from the
    repository root (so model_bundle and serving import) and fails the test with its output when it fails."""

    def run(source: str, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(serving_python), "-c", source, *args],
            cwd=local_server.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"serving-environment script exited with code {result.returncode}:\n"
                f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def serve_bundle() -> Callable[..., contextlib.AbstractContextManager[local_server.LocalServer]]:
    """``with serve_bundle(bundle, state_dir, ports) as server``: a real server for any bundle, stopped after."""
    return serving
