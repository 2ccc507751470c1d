"""Fixtures for the unit tests: an isolated, real MLflow SQLite registry per test.

Creating an MLflow SQLite store runs its schema migrations (seconds), so one empty store is created once per
session and copied into each test's own state directory (milliseconds). The tests then talk to a real
registry through ``tracking_uri=""``, exactly as the steps do locally.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components._common import registry


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
