"""The rehearsal's parts that need no Docker: the compiled YAML's Secrets as each step's env, the object store's
credential check, the MLflow container built from its manifest, reading a step container's identity, and the
model container in its Seldon and KServe forms as the kubelet would be handed it."""

from __future__ import annotations

import stat
import uuid

import boto3
import botocore.exceptions
import pytest
import yaml

from cluster.rehearsal import kserve, mlflow_server, model_pod, pipeline, seldon
from cluster.rehearsal.common import MANIFESTS, RehearsalError, on_loopback, secret_data
from cluster.rehearsal.objectstore import BUCKET, CLUSTER_S3_URL, start_object_store
from components.deploy_model.manifests import (
    STORAGE_URI_ENV,
    build_inference_service,
    build_seldon_deployment,
    model_container,
    served_model_name,
)
from pipelines._kubernetes import REGISTRY_CREDENTIALS_ENV, REGISTRY_CREDENTIALS_SECRET
from serving.settings import resolve

LOCAL_S3 = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return pipeline.compile_training_pipeline(tmp_path_factory.mktemp("build"), "1.2.3-abc1234")


def _executor_env(path) -> dict[str, dict[str, str]]:
    spec = next(yaml.safe_load_all(path.read_text()))
    return {
        label: {variable["name"]: variable["value"] for variable in executor["container"].get("env", [])}
        for label, executor in spec["deploymentSpec"]["executors"].items()
    }


def test_the_compiled_yaml_runs_the_images_of_the_tag(compiled):
    spec = next(yaml.safe_load_all(compiled.read_text()))
    images = {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()}
    assert images == {"kfp-mlops-components:1.2.3-abc1234"}


def test_secrets_become_the_env_of_exactly_the_steps_the_yaml_gives_them(compiled, tmp_path):
    given = pipeline.with_secrets_as_env(compiled, tmp_path / "rehearsed.yaml", {CLUSTER_S3_URL: LOCAL_S3})

    assert set(given) == {"exec-validate-data", "exec-gate-model", "exec-register-model", "exec-deploy-model"}
    secret = secret_data(MANIFESTS / "mlflow.yaml", REGISTRY_CREDENTIALS_SECRET)
    env = _executor_env(tmp_path / "rehearsed.yaml")
    for label, variables in env.items():
        if label in given:
            assert variables == {
                name: secret[key].replace(CLUSTER_S3_URL, LOCAL_S3) for key, name in REGISTRY_CREDENTIALS_ENV.items()
            }
        else:  # a step without the Secret on the cluster gets none here either
            assert not set(variables) & set(REGISTRY_CREDENTIALS_ENV.values()), label
    assert env["exec-register-model"]["MLFLOW_S3_ENDPOINT_URL"] == LOCAL_S3


def test_a_secret_no_manifest_defines_fails_unless_optional(compiled, tmp_path):
    documents = list(yaml.safe_load_all(compiled.read_text()))
    executors = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    executors["exec-gate-model"]["secretAsEnv"][0]["secretName"] = "nowhere"
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump_all(documents))

    given = pipeline.with_secrets_as_env(changed, tmp_path / "optional.yaml", {})
    assert "exec-gate-model" not in given  # optional: the kubelet starts the pod without it

    executors["exec-gate-model"]["secretAsEnv"][0]["optional"] = False
    changed.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(RehearsalError, match="exec-gate-model needs Secret 'nowhere'"):
        pipeline.with_secrets_as_env(changed, tmp_path / "required.yaml", {})


def test_object_store_accepts_only_the_secrets_access_key():
    secret = secret_data(MANIFESTS / "mlflow.yaml", REGISTRY_CREDENTIALS_SECRET)
    store = start_object_store(secret["AWS_ACCESS_KEY_ID"], secret["AWS_SECRET_ACCESS_KEY"])
    try:
        # moto keeps its buckets per process: an earlier store in this process (the container tier's rehearsal)
        # may have left objects, so this test lists a prefix of its own.
        prefix = f"mlflow/{uuid.uuid4().hex}/"
        store.s3().put_object(Bucket=BUCKET, Key=f"{prefix}a.txt", Body=b"a")
        assert store.keys(prefix) == [f"{prefix}a.txt"]

        stranger = boto3.session.Session(
            aws_access_key_id="someone-else", aws_secret_access_key="x", region_name="us-east-1"
        ).client("s3", endpoint_url=store.endpoint_url)
        with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId"):
            stranger.get_object(Bucket=BUCKET, Key="mlflow/a.txt")
        assert store.refused and "key=someone-else" in store.refused[0]
    finally:
        store.stop()


def test_mlflow_container_keeps_the_manifests_command_but_binds_loopback():
    container = mlflow_server.deployment_container()
    command = mlflow_server._with_option(
        mlflow_server._with_option(container["command"], "--host", "127.0.0.1"), "--port", "5123"
    )

    assert command[:2] == ["mlflow", "server"] and "--no-serve-artifacts" in command
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "5123"
    assert [part for part in command if part not in {"127.0.0.1", "5123"}] == [
        part for part in container["command"] if part not in {"0.0.0.0", "5000"}
    ]


def test_mlflow_env_is_the_manifests_env_and_secret_with_s3_on_loopback():
    class Store:
        endpoint_url = LOCAL_S3

    env = mlflow_server.container_environment(mlflow_server.deployment_container(), Store())

    assert env["MLFLOW_S3_ENDPOINT_URL"] == LOCAL_S3
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    secret = secret_data(MANIFESTS / "mlflow.yaml", "mlflow-s3-credentials")
    assert env["AWS_ACCESS_KEY_ID"] == secret["AWS_ACCESS_KEY_ID"]


def test_mlflow_container_runs_as_the_pods_user_with_the_volumes_group():
    pod = mlflow_server.deployment_pod()
    (container,) = pod["containers"]
    context = pod["securityContext"]

    options = mlflow_server.security_options("0", pod, container)

    assert options["user"] == f"{context['runAsUser']}:{context['runAsGroup']}"
    assert options["group_add"] == [str(context["fsGroup"])]
    assert options["cap_drop"] == ["ALL"] and options["security_opt"] == ["no-new-privileges"]


@pytest.mark.parametrize(
    ("image_user", "pod_context", "container_context", "user"),
    [
        ("1000", {}, {}, "1000"),  # the image's user, its group from the image's /etc/passwd
        ("1000:1000", {"runAsGroup": 5}, {}, "1000:5"),
        ("1000", {"runAsUser": 7, "runAsGroup": 8}, {"runAsUser": 9}, "9:8"),  # the container's settings win
        ("", {"runAsNonRoot": True, "runAsUser": 7}, {}, "7"),
    ],
)
def test_mlflow_container_user_is_the_one_the_kubelet_would_run(image_user, pod_context, container_context, user):
    pod = {"securityContext": pod_context}
    options = mlflow_server.security_options(image_user, pod, {"securityContext": container_context})

    assert options["user"] == user and "group_add" not in options


@pytest.mark.parametrize("image_user", ["", "0", "root", "kfp-mlops", "0:1000"])
def test_mlflow_container_is_refused_where_the_kubelet_refuses_run_as_non_root(image_user):
    with pytest.raises(RehearsalError, match="runAsNonRoot"):
        mlflow_server.security_options(image_user, {"securityContext": {"runAsNonRoot": True}}, {})


def test_on_loopback_replaces_only_the_cluster_address():
    values = {"A": f"{CLUSTER_S3_URL}", "B": "s3", "C": f"x {CLUSTER_S3_URL}/p"}
    assert on_loopback(values, CLUSTER_S3_URL, LOCAL_S3) == {"A": LOCAL_S3, "B": "s3", "C": f"x {LOCAL_S3}/p"}


def test_step_name_is_the_function_a_kfp_container_executes():
    args = ["--executor_input", "{}", "--function_to_execute", "train_model"]
    assert pipeline._step_name(args) == "train_model"
    assert pipeline._step_name(["--executor_input", "{}"]) == "unknown"


# --- the model container in its two forms (no Docker: what the kubelet would be handed) ----------------------------

MODEL_URI = "s3://mlpipeline/mlflow/1/models/m-0a1b/artifacts/model"
MODEL_SHA256 = "ab" * 32
SERVING_IMAGE = "kfp-mlops-serving:1.2.3-abc1234"


@pytest.fixture
def seldon_deployment() -> dict:
    return build_seldon_deployment(
        "House_Prices", "7", MODEL_URI, MODEL_SHA256, image=SERVING_IMAGE, pipeline_job_id="run-42"
    )


@pytest.fixture
def inference_service(seldon_deployment) -> dict:
    return kserve.inference_service(seldon_deployment)


def _literal_env(container: dict) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", [])}


def test_the_inference_service_is_the_deploy_steps_for_the_seldon_deployments_version(seldon_deployment):
    assert kserve.inference_service(seldon_deployment) == build_inference_service(
        "House_Prices", "7", MODEL_URI, MODEL_SHA256, image=SERVING_IMAGE, pipeline_job_id="run-42"
    )

    del seldon_deployment["metadata"]["annotations"]["kfp-mlops/model-sha256"]
    with pytest.raises(RehearsalError, match=r"lacks the annotation\(s\) \['kfp-mlops/model-sha256'\]"):
        kserve.inference_service(seldon_deployment)


def test_kserve_form_rewrites_storage_uri_as_the_webhook_does_and_keeps_the_rendered_args(inference_service):
    rendered = model_container(inference_service)
    pod = kserve.pod_container(inference_service)

    assert _literal_env(rendered)[STORAGE_URI_ENV] == MODEL_URI  # the manifest itself stays as rendered
    # The controller adds the object's name, the storage initializer's webhook points STORAGE_URI at its copy.
    assert pod.env == {
        **_literal_env(rendered),
        "INFERENCE_SERVICE_NAME": "house-prices",
        STORAGE_URI_ENV: "/mnt/models",
    }
    assert pod.args == rendered["args"]
    assert pod.model_name == served_model_name(inference_service) == "house-prices"


def test_the_server_reads_the_kserve_form_as_the_rendered_version(inference_service):
    pod = kserve.pod_container(inference_service)

    settings = resolve(pod.args, pod.env)  # what `python -m serving` makes of the container's args and env

    assert (settings.model_name, settings.model_dir) == (pod.model_name, "/mnt/models")
    assert (settings.model_sha256, settings.model_version) == (MODEL_SHA256, "7")
    assert settings.http_port == pod.ports["http"]
    assert pod.base_url == f"http://127.0.0.1:{settings.http_port}"


def test_kserve_form_probes_and_metrics_are_on_the_declared_ports(inference_service):
    rendered = model_container(inference_service)
    pod = kserve.pod_container(inference_service)
    settings = resolve(pod.args, pod.env)
    scraped_port, scraped_path = kserve.scrape_endpoint()

    assert pod.ports == {port["name"]: port["containerPort"] for port in rendered["ports"]}
    assert pod.probe_url("readinessProbe") == f"{pod.base_url}/v2/models/house-prices/ready"
    assert pod.probe_url("livenessProbe") == f"{pod.base_url}/v2/health/live"
    # Where the KServe PodMonitor scrapes is where the server's metrics port listens (it answers on any path).
    assert pod.metrics_url == f"http://127.0.0.1:{pod.ports[scraped_port]}{scraped_path}"
    assert pod.ports[scraped_port] == settings.metrics_port


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda isvc: isvc.update(kind="SeldonDeployment"), r"is no InferenceService \(serving.kserve.io/v1beta1\)"),
        (
            lambda isvc: isvc["metadata"]["annotations"].update({kserve.DEPLOYMENT_MODE_ANNOTATION: "Knative"}),
            "serving.kserve.io/deploymentMode is 'Knative'; the rehearsal starts the pod of 'Standard' mode only",
        ),
        (lambda isvc: model_container(isvc).update(env=[]), "has no STORAGE_URI; KServe would add no storage"),
        (lambda isvc: model_container(isvc).update(args=[]), "passes no --model_name argument"),
        (
            lambda isvc: model_container(isvc)["env"].append({"name": "TOKEN", "valueFrom": {"secretKeyRef": {}}}),
            r"env TOKEN of container kserve-container has no literal value \(\['valueFrom'\]\)",
        ),
        (lambda isvc: model_container(isvc).update(ports=[]), r"declares no port\(s\) named \['http', 'metrics'\]"),
        (
            lambda isvc: model_container(isvc).update(ports=model_container(isvc)["ports"][:1]),
            r"declares no port\(s\) named \['metrics'\]",  # nothing where the PodMonitor scrapes
        ),
    ],
)
def test_kserve_form_names_what_it_cannot_start(inference_service, change, refusal):
    change(inference_service)
    with pytest.raises(RehearsalError, match=refusal):
        kserve.pod_container(inference_service)


def test_seldon_form_is_the_operators_env_and_metrics_port(seldon_deployment):
    pod = seldon.pod_container(seldon_deployment)

    assert pod.env == seldon.operator_env(seldon_deployment)
    assert pod.args == []  # the image's CMD, as the operator leaves it
    assert pod.model_name == model_container(seldon_deployment)["name"] == "house-prices"
    assert pod.metrics_url == "http://127.0.0.1:8082/prometheus"

    model_container(seldon_deployment)["ports"].pop()
    with pytest.raises(RehearsalError, match=r"declares no port\(s\) named \['metrics'\]"):
        seldon.pod_container(seldon_deployment)


class _Images:
    def get(self, image):
        return type("Image", (), {"attrs": {"Config": {"User": "8888"}}})()


def test_both_forms_start_through_one_container_runner(monkeypatch, seldon_deployment, inference_service, tmp_path):
    started: list[dict] = []
    monkeypatch.setattr(model_pod, "port_is_free", lambda port: True)
    monkeypatch.setattr(model_pod, "run_container", lambda client, image, name, **options: started.append(options))
    client = type("Client", (), {"images": _Images()})()

    for pod in (seldon.pod_container(seldon_deployment), kserve.pod_container(inference_service)):
        model_pod.run(client, SERVING_IMAGE, pod, tmp_path)
    seldon_run, kserve_run = started

    assert seldon_run["environment"] == seldon.operator_env(seldon_deployment) and "command" not in seldon_run
    assert kserve_run["environment"] == kserve.pod_container(inference_service).env
    assert kserve_run["command"] == model_container(inference_service)["args"]  # Kubernetes' args: the image's CMD
    for options in started:
        assert options["volumes"] == {str(tmp_path.resolve()): {"bind": "/mnt/models", "mode": "ro"}}
        assert options["mem_limit"] == 2**30 and "entrypoint" not in options


def test_kserve_provision_leaves_the_files_as_its_storage_initializer_does(monkeypatch, tmp_path):
    storage_copy = tmp_path / "mnt-models"
    (storage_copy / "sub").mkdir(parents=True)
    (storage_copy / "model.joblib").write_bytes(b"model")
    (storage_copy / "sub" / "schema.json").write_text("{}")
    for path in (
        storage_copy / "model.joblib",
        storage_copy / "sub" / "schema.json",
        storage_copy / "sub",
        storage_copy,
    ):
        path.chmod(0o555 if path.is_dir() else 0o444)  # read-only, as the storage stage leaves its copy
    owners: dict[str, tuple[int, int]] = {}
    monkeypatch.setattr(kserve.os, "chown", lambda path, uid, gid, **_: owners.update({str(path): (uid, gid)}))

    provisioned = kserve.provision(storage_copy, tmp_path / "kserve-mnt-models")

    files = sorted(path.relative_to(provisioned).as_posix() for path in provisioned.rglob("*"))
    assert files == ["model.joblib", "sub", "sub/schema.json"]
    assert (provisioned / "sub" / "schema.json").read_text() == "{}"
    assert set(owners) == {str(provisioned), *(str(path) for path in provisioned.rglob("*"))}
    assert set(owners.values()) == {(1000, 1000)}  # the initializer image's USER, not the server's
    modes = {
        path.relative_to(provisioned).as_posix(): stat.S_IMODE(path.stat().st_mode) for path in provisioned.rglob("*")
    }
    assert modes == {"model.joblib": 0o644, "sub": 0o755, "sub/schema.json": 0o644}
    assert stat.S_IMODE(provisioned.stat().st_mode) == 0o777  # the emptyDir
