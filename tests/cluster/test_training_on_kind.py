"""The training pipeline on a real cluster (`make cluster && make images`), deploying with target kubernetes.

Skipped, with the reason shown, when no KFP API answers at $KF_PIPELINES_ENDPOINT (default
http://localhost:8080: `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`) or no kubeconfig is found.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import requests

from cluster.rehearsal.common import built_image_tag

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = os.environ.get("KF_PIPELINES_ENDPOINT", "http://localhost:8080")
NAMESPACE = "models"
MODEL_NAME = "houses-on-kind"
RUN_TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def cluster():
    """(kfp.Client, kubernetes CoreV1Api, CustomObjectsApi), or a skip saying what is not reachable."""
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/apis/v2beta1/healthz", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as error:
        pytest.skip(f"no KFP API at {ENDPOINT} ({error}); run `make cluster`, `make images` and port-forward the UI")
    from kubernetes import client, config

    try:
        config.load_kube_config()
    except (config.ConfigException, OSError) as error:
        pytest.skip(f"no kubeconfig for the cluster ({error})")
    import kfp

    return kfp.Client(host=ENDPOINT), client.CoreV1Api(), client.CustomObjectsApi()


def test_training_pipeline_deploys_a_seldon_deployment_that_serves_with_metrics(cluster, tmp_path):
    kfp_client, core, custom = cluster
    compiled = subprocess.run(
        [sys.executable, "compile.py", "--output-dir", str(tmp_path), "--image-tag", built_image_tag()],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr

    run = kfp_client.create_run_from_pipeline_package(
        str(tmp_path / "training_pipeline.yaml"),
        arguments={
            "source_uri": "sample://house-prices?rows=1000&seed=5",
            "model_name": MODEL_NAME,
            "tracking_uri": "http://mlflow.kubeflow.svc.cluster.local:5000",
            "deploy_target": "kubernetes",
            "namespace": NAMESPACE,
        },
        run_name="kfp-mlops cluster test",
        experiment_name="kfp-mlops-tests",
    )
    finished = kfp_client.wait_for_run_completion(run.run_id, timeout=RUN_TIMEOUT_S)
    assert finished.state == "SUCCEEDED", f"run {run.run_id} ended {finished.state}"

    from components.deploy_model.manifests import PORTS
    from serving.oip import table_request

    deployment = custom.get_namespaced_custom_object(
        "machinelearning.seldon.io", "v1", NAMESPACE, "seldondeployments", MODEL_NAME
    )
    assert deployment["status"]["state"] == "Available"
    assert deployment["spec"]["protocol"] == "v2"
    # The operator's address names the predictor Service and the OIP path of the graph's model.
    assert deployment["status"]["address"]["url"] == (
        f"http://{MODEL_NAME}-default.{NAMESPACE}.svc.cluster.local:8000/v2/models/{MODEL_NAME}/infer"
    )
    row = {
        "size_sqm": 95.0,
        "rooms": 3,
        "age_years": 20.0,
        "renovated": False,
        "distance_to_center_km": 4.2,
        "neighbourhood": "Riverside",
        "energy_label": "C",
    }
    # The way the README reaches the model: a port-forward to the predictor's service (Seldon's executor), the
    # Open Inference Protocol path of the model (through an ingress: /seldon/<namespace>/<name>/v2/models/...).
    with _port_forward(f"svc/{MODEL_NAME}-default", 8000) as port:
        base = f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}"
        metadata = requests.get(base, timeout=60).json()
        assert metadata["parameters"]["sha256"] == deployment["metadata"]["annotations"]["kfp-mlops/model-sha256"]
        answer = requests.post(f"{base}/infer", json=table_request(pd.DataFrame([row])), timeout=60)
        assert answer.status_code == 200, answer.text
        assert [output["name"] for output in answer.json()["outputs"]] == ["price"]
        executor_metrics = requests.get(f"http://127.0.0.1:{port}/prometheus", timeout=60).text
    assert "seldon_api_executor_server_requests_seconds" in executor_metrics

    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"seldon-deployment-id={MODEL_NAME}").items
    assert pods, f"no pods of SeldonDeployment {MODEL_NAME}"
    # The model container's port named `metrics`, at the path the operator passes it.
    with _port_forward(f"pod/{pods[0].metadata.name}", PORTS["metrics"]) as port:
        model_metrics = requests.get(f"http://127.0.0.1:{port}/prometheus", timeout=60).text
    assert f'model_name="{MODEL_NAME}"' in model_metrics and "model_requests_total" in model_metrics


@contextlib.contextmanager
def _port_forward(target: str, remote_port: int):
    """`kubectl port-forward` to a free local port for the duration of the block."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local_port = probe.getsockname()[1]
    process = subprocess.Popen(
        ["kubectl", "-n", NAMESPACE, "port-forward", target, f"{local_port}:{remote_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", local_port)) == 0:
                    break
            time.sleep(0.2)
        yield local_port
    finally:
        process.terminate()
        process.wait(timeout=10)
