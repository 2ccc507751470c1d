"""Shared fixtures: small sample data and trained model bundles for both tasks."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

import model_bundle
from components._common import registry
from components.ingest_data.logic import house_prices
from components.prepare_data.logic import prepare
from components.train_model.logic import train
from model_bundle.profile import build_profile

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def houses() -> pd.DataFrame:
    """600 rows of the built-in house-price sample (regression target `price`, class target `energy_label`)."""
    return house_prices(rows=600, seed=3)


def _train_bundle(
    directory: Path, frame: pd.DataFrame, target: str, task: str
) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    prepared = prepare(frame, target=target, task=task, seed=1)
    pipeline, card = train(prepared.train, target=target, task=task, seed=1)
    # As the pipeline does: the data contract of the whole dataset and the training rows' profile travel with it.
    documents = {
        model_bundle.SCHEMA_FILE: model_bundle.schema.infer(frame, target),
        model_bundle.PROFILE_FILE: build_profile(prepared.train, target),
    }
    model_bundle.save(directory, pipeline, card, documents)
    return model_bundle.load(directory), prepared.test


@pytest.fixture(scope="session")
def regression_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    """A trained price model (directory on disk) and its held-out test rows."""
    return _train_bundle(tmp_path_factory.mktemp("regression") / "model", houses, "price", "regression")


@pytest.fixture(scope="session")
def classification_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    """A trained energy-label classifier (directory on disk) and its held-out test rows."""
    return _train_bundle(tmp_path_factory.mktemp("classification") / "model", houses, "energy_label", "classification")


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free a moment ago on 127.0.0.1 (bound all at once, so they differ).

    The local launcher puts gRPC on ``http_port + 500`` unless told otherwise, so that must be a valid port too.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port + 500 < 65536:
                ports.append(port)
        return ports


@pytest.fixture(scope="session")
def free_ports():
    """``free_ports(count)``: distinct TCP ports on 127.0.0.1 that are free now."""
    return _free_ports


@pytest.fixture(scope="session")
def houses_csv(tmp_path_factory, houses) -> Path:
    """The house sample as a CSV file, as a user would bring it."""
    path = tmp_path_factory.mktemp("data") / "houses.csv"
    houses.to_csv(path, index=False)
    return path


# Creating an MLflow SQLite store runs its schema migrations (seconds), so one empty store is created once per
# session and copied into each test's own state directory (milliseconds).
@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory) -> Path:
    state = tmp_path_factory.mktemp("mlflow-template")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(registry.STATE_DIR_ENV, str(state))
        client = registry.connect("")
        client.search_registered_models()  # forces the schema to be created
    database = state / "mlflow.db"
    assert database.is_file(), f"MLflow did not create {database}"
    return database


@pytest.fixture
def mlflow_state(tmp_path, monkeypatch, _empty_mlflow_db) -> Path:
    """A fresh local state directory (``$KFP_MLOPS_STATE_DIR``) holding an empty MLflow registry."""
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(_empty_mlflow_db, state / "mlflow.db")
    monkeypatch.setenv(registry.STATE_DIR_ENV, str(state))
    return state


# What a fresh clone holds: environments, generated files and caches stay behind.
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-serving",
    "build",
    "local_state",
    "mlruns",
    "mlartifacts",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
)


@pytest.fixture
def repository_copy(tmp_path) -> Path:
    """A copy of the repository's sources in a temporary directory, for tests that change the tree.

    File times are kept (copytree copies them). Run make there with ``VENV=<the running .venv>`` and
    ``-o <that .venv>/.installed``, so make uses that environment as it is and never rebuilds it.
    """
    copy = tmp_path / "repository"
    shutil.copytree(REPO_ROOT, copy, ignore=_NOT_IN_A_CLONE, symlinks=True)
    return copy


@pytest.fixture
def stub_server(monkeypatch):
    """``stub_server(handler_class)``: an HTTP server with that request handler on a free 127.0.0.1 port, serving in
    a thread until the test ends (proxy variables unset, so requests reach it)."""
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    started = []

    def start(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
