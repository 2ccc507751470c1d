"""The cluster tier's access to a real cluster (`make cluster && make images`): the KFP client and Kubernetes APIs,
the serving platform `make cluster` installed, a training run deploying with target kubernetes, and port-forwards to
what it deployed. Helpers are fixtures rather than importable functions, so the tests work under any pytest import
mode.

Every test here skips, with the reason shown, when no KFP API answers at $KF_PIPELINES_ENDPOINT (default
http://localhost:8080: `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`) or no kubeconfig is found; a
test of one serving platform also skips on a cluster made with the other (`make cluster SERVING=...`).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import urllib3

from cluster.rehearsal.common import built_image_tag

REPO_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = os.environ.get("KF_PIPELINES_ENDPOINT", "http://localhost:8080")
NAMESPACE = "models"
RUN_TIMEOUT_S = 1800
# Where cluster/up.sh records the platform it installed (SERVING), which `make run` reads too.
SERVING_RECORD = ("models", "kfp-mlops-serving", "serving_platform")
# A cluster made before up.sh recorded its platform had Seldon Core, the only one it installed then.
UNRECORDED_PLATFORM = "seldon"


class Cluster(NamedTuple):
    kfp: object  # kfp.Client
    core: object  # kubernetes CoreV1Api
    custom: object  # kubernetes CustomObjectsApi
    serving_platform: str  # what `make cluster` installed: seldon or kserve
    namespace: str = NAMESPACE  # where the tests deploy models (and port_forward reaches them)


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The cluster's clients and serving platform, or a skip saying what is not reachable."""
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/apis/v2beta1/healthz", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as error:
        pytest.skip(f"no KFP API at {ENDPOINT} ({error}); run `make cluster`, `make images` and port-forward the UI")
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    try:
        config.load_kube_config()
    except (config.ConfigException, OSError) as error:
        pytest.skip(f"no kubeconfig for the cluster ({error})")
    import kfp

    core = client.CoreV1Api()
    namespace, name, key = SERVING_RECORD
    try:
        recorded = core.read_namespaced_config_map(name, namespace).data or {}
    except ApiException as error:
        if error.status != 404:
            raise
        recorded = {}
    except urllib3.exceptions.HTTPError as error:
        pytest.skip(f"the kubeconfig's cluster does not answer ({error})")
    platform = recorded.get(key) or UNRECORDED_PLATFORM
    return Cluster(kfp.Client(host=ENDPOINT), core, client.CustomObjectsApi(), platform)


@pytest.fixture
def cluster_of(cluster) -> Callable[[str], Cluster]:
    """``cluster_of("kserve")``: the cluster, or a skip when `make cluster` installed another serving platform."""

    def require(serving_platform: str) -> Cluster:
        if cluster.serving_platform != serving_platform:
            namespace, name, key = SERVING_RECORD
            pytest.skip(
                f"the cluster serves with {cluster.serving_platform} (ConfigMap {namespace}/{name}, {key}), not "
                f"{serving_platform}: `make cluster SERVING={serving_platform}` installs and records it"
            )
        return cluster

    return require


@pytest.fixture
def train_and_deploy(tmp_path) -> Callable[..., None]:
    """``train_and_deploy(cluster, model_name, serving_platform)``: compiles the pipelines with the tag `make images`
    built and runs the training pipeline to completion, deploying with target kubernetes to `models`."""

    def train(cluster: Cluster, model_name: str, serving_platform: str) -> None:
        compiled = subprocess.run(
            [sys.executable, "compile.py", "--output-dir", str(tmp_path), "--image-tag", built_image_tag()],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert compiled.returncode == 0, compiled.stderr
        started = cluster.kfp.create_run_from_pipeline_package(
            str(tmp_path / "training_pipeline.yaml"),
            arguments={
                "source_uri": "sample://house-prices?rows=1000&seed=5",
                "model_name": model_name,
                "tracking_uri": "http://mlflow.kubeflow.svc.cluster.local:5000",
                "deploy_target": "kubernetes",
                "serving_platform": serving_platform,
                "namespace": NAMESPACE,
            },
            run_name=f"kfp-mlops cluster test ({serving_platform})",
            experiment_name="kfp-mlops-tests",
        )
        finished = cluster.kfp.wait_for_run_completion(started.run_id, timeout=RUN_TIMEOUT_S)
        assert finished.state == "SUCCEEDED", f"run {started.run_id} ended {finished.state}"

    return train


@pytest.fixture
def house_row() -> dict:
    """One house of the sample's schema, as a caller would send it."""
    return {
        "size_sqm": 95.0,
        "rooms": 3,
        "age_years": 20.0,
        "renovated": False,
        "distance_to_center_km": 4.2,
        "neighbourhood": "Riverside",
        "energy_label": "C",
    }


@pytest.fixture
def port_forward() -> Callable[[str, int], contextlib.AbstractContextManager[int]]:
    """``with port_forward(target, remote_port) as local_port``: `kubectl port-forward` in `models` to a free local
    port for the duration of the block."""

    @contextlib.contextmanager
    def forward(target: str, remote_port: int) -> Iterator[int]:
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

    return forward
