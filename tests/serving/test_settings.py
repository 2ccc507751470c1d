"""Where the server's settings come from (serving.settings.resolve), and the real entry point started as the Seldon
Core 1.17.1 operator starts a custom ``protocol: v2`` container, and as a KServe InferenceService does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import requests

from serving import processes
from serving.settings import Settings, SettingsError, resolve

START_TIMEOUT = 60.0


# ---------------------------------------------------------------------------------------------------------------
# resolve: flags > Seldon environment > KServe environment > defaults


def test_defaults_are_the_kserve_ports_and_mnt_models():
    assert resolve([], {}) == Settings(
        model_name="model",
        model_dir="/mnt/models",
        http_port=8080,
        grpc_port=8081,
        metrics_port=8082,
        metrics_path="/prometheus",
        model_sha256="",
        model_version="",
        max_rows=100_000,
        schema_checks="domain",
        max_body_bytes=8 * 1024 * 1024,
        max_header_bytes=64 * 1024,
    )


SELDON_ENV = {
    "PREDICTIVE_UNIT_ID": "house-prices",
    "MLSERVER_MODEL_NAME": "other-name",
    "MLSERVER_MODEL_URI": "/mnt/models/seldon",
    "STORAGE_URI": "/mnt/models/kserve",
    "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": "9000",
    "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": "9500",
    "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": "6000",
    "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/metrics-here",
    "PREDICTIVE_UNIT_PARAMETERS": json.dumps(
        [
            {"name": "model_sha256", "type": "STRING", "value": "ab" * 32},
            {"name": "model_version", "type": "STRING", "value": "7"},
            {"name": "max_rows", "type": "INT", "value": "500"},
            {"name": "schema_checks", "type": "STRING", "value": "domain,range"},
            {"name": "unrelated", "type": "FLOAT", "value": "0.5"},
        ]
    ),
}


def test_the_seldon_environment_sets_everything():
    settings = resolve([], SELDON_ENV)

    assert settings == Settings(
        model_name="house-prices",
        model_dir="/mnt/models/seldon",
        http_port=9000,
        grpc_port=9500,
        metrics_port=6000,
        metrics_path="/metrics-here",
        model_sha256="ab" * 32,
        model_version="7",
        max_rows=500,
        schema_checks="domain,range",
    )


def test_flags_win_over_the_environment():
    argv = ["--model_name=cli", "--model_dir", "/models/cli", "--http_port", "1", "--grpc_port=2"]
    argv += ["--metrics_port", "3", "--model_sha256", "cd" * 32, "--model_version", "9", "--max_rows", "10"]
    argv += ["--schema_checks", "none", "--max_body_bytes", "2048", "--max_header_bytes", "4096"]

    settings = resolve(argv, SELDON_ENV)

    assert (settings.model_name, settings.model_dir) == ("cli", "/models/cli")
    assert (settings.http_port, settings.grpc_port, settings.metrics_port) == (1, 2, 3)
    assert (settings.model_sha256, settings.model_version, settings.max_rows) == ("cd" * 32, "9", 10)
    assert (settings.schema_checks, settings.max_body_bytes, settings.max_header_bytes) == ("none", 2048, 4096)


def test_mlserver_name_and_kserve_storage_uri_come_next():
    env = {"MLSERVER_MODEL_NAME": "from-mlserver", "STORAGE_URI": "/mnt/models"}

    settings = resolve(["--workers", "1", "--enable_docs_url", "false"], env)  # KServe's own flags are left alone

    assert (settings.model_name, settings.model_dir) == ("from-mlserver", "/mnt/models")


def test_a_file_uri_is_a_local_path():
    assert resolve([], {"STORAGE_URI": "file:///models/house"}).model_dir == "/models/house"


@pytest.mark.parametrize("variable", ["STORAGE_URI", "MLSERVER_MODEL_URI"])
def test_a_remote_model_uri_is_refused_naming_the_variable(variable):
    with pytest.raises(SettingsError, match=rf"{variable}=s3://models/house is a remote URI.*storage initializer"):
        resolve([], {variable: "s3://models/house"})


@pytest.mark.parametrize(
    ("env", "argv", "fragment"),
    [
        ({"PREDICTIVE_UNIT_PARAMETERS": "[{"}, [], "PREDICTIVE_UNIT_PARAMETERS is not valid JSON"),
        ({"PREDICTIVE_UNIT_PARAMETERS": '{"name": "x"}'}, [], "must be a JSON list"),
        (
            {"PREDICTIVE_UNIT_PARAMETERS": '[{"name": "max_rows", "type": "INT", "value": "many"}]'},
            [],
            "max_rows must be an integer, got 'many'",
        ),
        ({"PREDICTIVE_UNIT_HTTP_SERVICE_PORT": "http"}, [], "PREDICTIVE_UNIT_HTTP_SERVICE_PORT='http'"),
        ({}, ["--schema_checks", "spelling"], "unknown check(s) ['spelling']"),
        ({}, ["--max_rows", "0"], "max_rows must be a positive integer"),
        ({}, ["--http_port", "eighty"], "invalid command line"),
    ],
    ids=["json", "not-a-list", "not-an-int", "port", "checks", "max-rows", "flag"],
)
def test_malformed_settings_are_refused_naming_them(env, argv, fragment):
    with pytest.raises(SettingsError) as refused:
        resolve(argv, env)

    assert fragment in str(refused.value)


# ---------------------------------------------------------------------------------------------------------------
# the real entry point


def _base_env() -> dict[str, str]:
    """What the image's own environment provides (PATH, HOME), nothing of this test process."""
    return {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}


def _refused_start(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """``python -m serving ARGV`` with exactly ``env`` (plus PATH/HOME), run until it exits (it must refuse)."""
    return subprocess.run(
        [sys.executable, "-m", "serving", *argv],
        env={**_base_env(), **env},
        cwd=processes.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def _seldon_operator_env(
    container: str, model_dir: Path, http: int, grpc: int, metrics: int, sha256: str
) -> dict[str, str]:
    """Exactly what the Seldon Core 1.17.1 operator injects into a custom graph container with ``protocol: v2``,
    ``modelUri`` and graph parameters (seldondeployment_controller.go:845-883, 921-970), the storage initializer's
    /mnt/models replaced by the bundle's directory and the ports by free ones."""
    parameters = [
        {"name": "model_sha256", "value": sha256, "type": "STRING"},
        {"name": "model_version", "value": "3", "type": "STRING"},
    ]
    return {
        "PREDICTIVE_UNIT_SERVICE_PORT": str(http),
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(http),
        "MLSERVER_HTTP_PORT": str(http),
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(grpc),
        "MLSERVER_GRPC_PORT": str(grpc),
        "PREDICTIVE_UNIT_PARAMETERS": json.dumps(parameters),
        "MLSERVER_MODEL_URI": str(model_dir),
        "PREDICTIVE_UNIT_ID": container,
        "MLSERVER_MODEL_NAME": container,
        "PREDICTIVE_UNIT_IMAGE": "kfp-mlops/serving:latest",
        "PREDICTOR_ID": "default",
        "PREDICTOR_LABELS": json.dumps({"version": "default"}),
        "SELDON_DEPLOYMENT_ID": container,
        "SELDON_EXECUTOR_ENABLED": "true",
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(metrics),
        "MLSERVER_METRICS_PORT": str(metrics),
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        "MLSERVER_METRICS_ENDPOINT": "/prometheus",
    }


def test_the_entry_point_serves_under_the_seldon_operators_environment(
    regression_bundle, oip_table, free_ports, spawn_server, grpc_client, tmp_path
):
    bundle, test = regression_bundle
    http, grpc, metrics = free_ports(3)
    env = _seldon_operator_env("house-prices", bundle.directory, http, grpc, metrics, bundle.card.sha256)
    base = f"http://127.0.0.1:{http}"

    # Exactly the operator's env (plus PATH/HOME), as the image's ENTRYPOINT runs.
    with spawn_server(
        [], tmp_path / "server.log", http_port=http, model_name="house-prices", env=env, base_env=_base_env()
    ):
        metadata = requests.get(f"{base}/v2/models/house-prices", timeout=30).json()
        rows = test[bundle.feature_names].head(5)
        answer = requests.post(
            f"{base}/v2/models/house-prices/infer",
            data=json.dumps(oip_table(bundle, rows), allow_nan=False),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        (grpc_health,) = grpc_client(grpc, [{"kind": "ready", "model": "house-prices"}])
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/prometheus", timeout=30) as response:
            scraped = response.read().decode()

    assert metadata["versions"] == ["3"]
    assert metadata["parameters"]["sha256"] == bundle.card.sha256
    assert metadata["parameters"]["model_version"] == "3"
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == bundle.predict(rows).tolist()
    assert grpc_health["ok"] and grpc_health["model_ready"], grpc_health
    assert 'model_requests_total{model_name="house-prices",outcome="ok",reason=""} 1.0' in scraped


def test_the_entry_point_refuses_a_model_other_than_the_graph_parameters_digest(
    regression_bundle, free_ports, tmp_path
):
    bundle, _ = regression_bundle
    http, grpc, metrics = free_ports(3)
    env = _seldon_operator_env("house-prices", bundle.directory, http, grpc, metrics, "0" * 64)

    result = _refused_start([], env)

    assert result.returncode == 1
    assert "digest mismatch" in result.stderr and "0" * 64 in result.stderr and bundle.card.sha256 in result.stderr


def test_the_entry_point_serves_in_the_kserve_form(
    classification_bundle, oip_table, free_ports, spawn_server, tmp_path
):
    """A KServe InferenceService's custom predictor: STORAGE_URI (rewritten to the local copy by the storage
    initializer), ``--model_name`` and KServe's ports (given here, as 8080 may be taken on this machine)."""
    bundle, test = classification_bundle
    http, grpc, metrics = free_ports(3)
    env = {"STORAGE_URI": str(bundle.directory), "PROTOCOL": "v2"}
    argv = ["--model_name=energy-label", f"--http_port={http}", f"--grpc_port={grpc}", f"--metrics_port={metrics}"]
    base = f"http://127.0.0.1:{http}"

    with spawn_server(
        argv, tmp_path / "server.log", http_port=http, model_name="energy-label", env=env, base_env=_base_env()
    ):
        rows = test[bundle.feature_names].head(5)
        answer = requests.post(
            f"{base}/v2/models/energy-label/infer",
            data=json.dumps(oip_table(bundle, rows, probabilities=True), allow_nan=False),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        metrics_text = requests.get(f"{base}/metrics", timeout=30).text

    assert answer.status_code == 200, answer.text
    outputs = {output["name"]: output["data"] for output in answer.json()["outputs"]}
    assert outputs["energy_label"] == bundle.predict(rows).tolist()
    assert outputs[f"probability_{bundle.card.classes[0]}"] == bundle.predict_proba(rows)[:, 0].tolist()
    assert 'model_requests_total{model_name="energy-label",outcome="ok",reason=""} 1.0' in metrics_text


def test_the_entry_point_refuses_a_remote_storage_uri(free_ports):
    result = _refused_start(["--model_name=energy-label"], {"STORAGE_URI": "s3://models/energy-label"})

    assert result.returncode == 2
    assert "STORAGE_URI=s3://models/energy-label is a remote URI" in result.stderr
