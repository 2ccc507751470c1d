"""The suite's shared fixtures and hooks, for tests/ and every ``components/<name>/tests/`` (the root conftest.py loads
this module as a plugin): artifacts as KFP hands them to a step, small sample data, trained model bundles for both
tasks, a fresh MLflow registry, free ports; the restoring of process-wide MLflow settings after each test; and the CI
rule: with ``CI`` set, a skip outside the ``cluster`` tier fails the run (pytest_runtest_makereport,
pytest_make_collect_report)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

import model_bundle
from components._common import registry
from components.ingest_data.samples import house_prices
from components.prepare_data.logic import prepare
from components.train_model.logic import train
from model_bundle.profile import build_profile

REPO_ROOT = Path(__file__).resolve().parents[1]
# The one tier that may skip in CI: it needs a live cluster, which CI does not build (tests/cluster).
MAY_SKIP_IN_CI = "cluster"


# --- CI: a skip outside the cluster tier is a failure ----------------------------------------------------------------


def in_ci() -> bool:
    """CI services set ``CI`` (GitHub Actions: ``CI=true``, as ci.yml does for .ci/run); any non-empty value counts."""
    return bool(os.environ.get("CI"))


def _skip_reason(longrepr) -> str:
    # A skip's longrepr is (path, line, "Skipped: <reason>").
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _skip_in_ci(what: str, longrepr) -> str:
    return (
        f"{what} was skipped, and in CI (CI={os.environ['CI']!r}) only the {MAY_SKIP_IN_CI} tier may skip: "
        f"{_skip_reason(longrepr)}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, a test skipped outside the cluster tier (a missing tool, file or image) fails, naming the test and the
    skip's reason, so a check can never be hidden by what the machine lacks. xfail is not a skip and stays."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and in_ci() and not item.get_closest_marker(MAY_SKIP_IN_CI):
        report.longrepr = _skip_in_ci(item.nodeid, report.longrepr)
        report.outcome = "failed"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while it is collected (``pytest.skip(allow_module_level=True)``,
    ``pytest.importorskip``): judged by the markers of its parents, since the module's own never loaded."""
    report = yield
    if report.outcome == "skipped" and in_ci() and not collector.get_closest_marker(MAY_SKIP_IN_CI):
        report.longrepr = _skip_in_ci(collector.nodeid, report.longrepr)
        report.outcome = "failed"
    return report


# --- MLflow's process-wide settings ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_mlflow_uris() -> Iterator[None]:
    with registry.mlflow_uris_restored():
        yield


@pytest.fixture(scope="session")
def houses() -> pd.DataFrame:
    """600 rows of the built-in house-price sample (regression target `price`, class target `energy_label`)."""
    return house_prices(rows=600, seed=3)


def _train_bundle(
    directory: Path, frame: pd.DataFrame, target: str, task: str
) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    prepared = prepare(frame, target=target, task=task, seed=1)
    # neighbourhood as a sensitive column: the card lists its groups, the served model counts predictions per group.
    pipeline, card = train(prepared.train, target=target, task=task, seed=1, sensitive_columns=["neighbourhood"])
    # As the pipeline does: the data contract of the whole dataset and the training rows' profile travel with it.
    documents = {
        model_bundle.SCHEMA_FILE: model_bundle.schema.infer(frame, target),
        model_bundle.PROFILE_FILE: build_profile(prepared.train, target),
    }
    model_bundle.save(directory, pipeline, card, documents)
    return model_bundle.load(directory), prepared.test


@pytest.fixture(scope="session")
def regression_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    """A trained price model (directory on disk, sensitive column ``neighbourhood``) and its held-out test rows."""
    return _train_bundle(tmp_path_factory.mktemp("regression") / "model", houses, "price", "regression")


@pytest.fixture(scope="session")
def classification_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    """A trained energy-label classifier (directory on disk, sensitive column ``neighbourhood``) and its held-out test
    rows."""
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
    with pytest.MonkeyPatch.context() as patch, registry.mlflow_uris_restored():
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


# The environment under test: make must use it as it is (-o: never rebuild it), not a parent `make test`'s settings.
VENV = Path(sys.executable).parent.parent
_MAKE_FLAGS = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="session")
def make() -> Callable[..., subprocess.CompletedProcess]:
    """``make(target, "STATE_DIR=...", "BUILD_DIR=...", *more_settings, timeout=600)``: the repository's Makefile
    run as a user runs it, with the environment under test as VENV and no parent make's flags; ANSI colours are
    removed from its output. STATE_DIR and BUILD_DIR must be given (temporary directories): a test never touches
    the repository's own local_state/ or build/."""

    def run(target: str, *settings: str, timeout: float = 600) -> subprocess.CompletedProcess:
        named = {setting.split("=", 1)[0] for setting in settings}
        if not {"STATE_DIR", "BUILD_DIR"} <= named:
            raise ValueError(f"make {target}: pass STATE_DIR= and BUILD_DIR= (got {sorted(named)})")
        completed = subprocess.run(
            ["make", "-o", f"{VENV}/.installed", f"VENV={VENV}", target, *settings],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={name: value for name, value in os.environ.items() if name not in _MAKE_FLAGS},
            check=False,
        )
        completed.stdout, completed.stderr = _ANSI.sub("", completed.stdout), _ANSI.sub("", completed.stderr)
        return completed

    return run


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


@pytest.fixture
def artifact(tmp_path) -> Callable:
    """``artifact(kind, name)``: an input or output artifact of a component function, as KFP hands it to the step:
    a ``kind`` (``dsl.Dataset``, ``dsl.Model``, ...) whose ``uri`` is ``tmp_path / name``, with empty metadata."""

    def make(kind, name: str):
        return kind(name=name, uri=str(tmp_path / name), metadata={})

    return make


@pytest.fixture
def sample_dataset(artifact) -> tuple:
    """(Dataset artifact, rows, content_sha256): 200 rows of the house-price sample as ingest_data writes a
    dataset (Parquet, with its rows, columns and content hash in the metadata)."""
    from kfp import dsl

    from components._common.datasets import write_dataset
    from components.ingest_data.samples import house_prices

    dataset = artifact(dsl.Dataset, "dataset")
    info = write_dataset(house_prices(rows=200, seed=5), dataset.path)
    dataset.metadata.update(info)
    return dataset, info["rows"], info["content_sha256"]
