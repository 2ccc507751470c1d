"""The training pipeline on a real cluster (`make cluster && make images`), deploying with target kubernetes to the
serving platform the cluster was made with: a SeldonDeployment (`make cluster`) or a KServe InferenceService
(`make cluster SERVING=kserve`), each reached the way the README tells users to and serving its metrics.

Skipped, with the reason shown, when no KFP API answers at $KF_PIPELINES_ENDPOINT (default
http://localhost:8080: `kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`), no kubeconfig is found, or
the cluster was made with the other platform (conftest.py).
"""

from __future__ import annotations

import pandas as pd
import pytest
import requests

pytestmark = pytest.mark.cluster

MODEL_NAME = "houses-on-kind"
KSERVE_MODEL_NAME = "houses-on-kserve"


def test_training_pipeline_deploys_a_seldon_deployment_that_serves_with_metrics(
    cluster_of, train_and_deploy, port_forward, house_row
):
    cluster = cluster_of("seldon")
    train_and_deploy(cluster, MODEL_NAME, "seldon")
    namespace = cluster.namespace

    from components.deploy_model.manifests import PORTS
    from serving.oip import table_request

    deployment = cluster.custom.get_namespaced_custom_object(
        "machinelearning.seldon.io", "v1", namespace, "seldondeployments", MODEL_NAME
    )
    assert deployment["status"]["state"] == "Available"
    assert deployment["spec"]["protocol"] == "v2"
    # The operator's address names the predictor Service and the OIP path of the graph's model.
    assert deployment["status"]["address"]["url"] == (
        f"http://{MODEL_NAME}-default.{namespace}.svc.cluster.local:8000/v2/models/{MODEL_NAME}/infer"
    )
    # The way the README reaches the model: a port-forward to the predictor's service (Seldon's executor), the
    # Open Inference Protocol path of the model (through an ingress: /seldon/<namespace>/<name>/v2/models/...).
    with port_forward(f"svc/{MODEL_NAME}-default", 8000) as port:
        base = f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}"
        metadata = requests.get(base, timeout=60).json()
        assert metadata["parameters"]["sha256"] == deployment["metadata"]["annotations"]["kfp-mlops/model-sha256"]
        answer = requests.post(f"{base}/infer", json=table_request(pd.DataFrame([house_row])), timeout=60)
        assert answer.status_code == 200, answer.text
        assert [output["name"] for output in answer.json()["outputs"]] == ["price"]
        executor_metrics = requests.get(f"http://127.0.0.1:{port}/prometheus", timeout=60).text
    assert "seldon_api_executor_server_requests_seconds" in executor_metrics

    pods = cluster.core.list_namespaced_pod(namespace, label_selector=f"seldon-deployment-id={MODEL_NAME}").items
    assert pods, f"no pods of SeldonDeployment {MODEL_NAME}"
    # The model container's port named `metrics`, at the path the operator passes it.
    with port_forward(f"pod/{pods[0].metadata.name}", PORTS["metrics"]) as port:
        model_metrics = requests.get(f"http://127.0.0.1:{port}/prometheus", timeout=60).text
    assert f'model_name="{MODEL_NAME}"' in model_metrics and "model_requests_total" in model_metrics


def test_training_pipeline_deploys_a_kserve_inference_service_that_serves_with_metrics(
    cluster_of, train_and_deploy, port_forward, house_row
):
    cluster = cluster_of("kserve")
    train_and_deploy(cluster, KSERVE_MODEL_NAME, "kserve")
    namespace = cluster.namespace

    from components.deploy_model.manifests import KSERVE_CONTAINER, METRICS_PATH, PORTS, STORAGE_URI_ENV
    from components.deploy_model.platforms import KSERVE
    from serving.oip import table_request

    service = cluster.custom.get_namespaced_custom_object(
        KSERVE.group, KSERVE.version, namespace, KSERVE.plural, KSERVE_MODEL_NAME
    )
    status = service["status"]
    conditions = {condition["type"]: condition["status"] for condition in status["conditions"]}
    assert conditions["Ready"] == conditions["PredictorReady"] == "True", status["conditions"]
    # Standard mode, no ingress: the address is the predictor's Service inside the cluster.
    assert status["deploymentMode"] == "Standard"
    assert status["address"]["url"] == f"http://{KSERVE_MODEL_NAME}-predictor.{namespace}.svc.cluster.local"

    pods = [
        pod
        for pod in cluster.core.list_namespaced_pod(namespace, label_selector=KSERVE.workloads_selector(service)).items
        if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running"
    ]
    assert pods, f"no running pods of InferenceService {KSERVE_MODEL_NAME}"
    pod = pods[0]
    # KServe's pod webhook added its storage initializer (the model copied from SeaweedFS with the ServiceAccount's
    # Secret) and pointed the container's STORAGE_URI at the copy.
    assert [container.name for container in pod.spec.init_containers or []] == ["storage-initializer"]
    (served,) = [container for container in pod.spec.containers if container.name == KSERVE_CONTAINER]
    assert {variable.name: variable.value for variable in served.env or []}[STORAGE_URI_ENV] == "/mnt/models"

    # The way the README reaches the model: a port-forward to the predictor's Service (port 80 to the container's
    # http port), the Open Inference Protocol path of the model.
    with port_forward(f"svc/{KSERVE_MODEL_NAME}-predictor", KSERVE.service_port) as port:
        base = f"http://127.0.0.1:{port}/v2/models/{KSERVE_MODEL_NAME}"
        metadata = requests.get(base, timeout=60).json()
        assert metadata["parameters"]["sha256"] == service["metadata"]["annotations"]["kfp-mlops/model-sha256"]
        answer = requests.post(f"{base}/infer", json=table_request(pd.DataFrame([house_row])), timeout=60)
        assert answer.status_code == 200, answer.text
        assert [output["name"] for output in answer.json()["outputs"]] == ["price"]
    # What the KServe PodMonitor scrapes: the model container's port named `metrics`, at the path it serves there.
    with port_forward(f"pod/{pod.metadata.name}", PORTS["metrics"]) as port:
        model_metrics = requests.get(f"http://127.0.0.1:{port}{METRICS_PATH}", timeout=60).text
    assert f'model_name="{KSERVE_MODEL_NAME}"' in model_metrics and "model_requests_total" in model_metrics
