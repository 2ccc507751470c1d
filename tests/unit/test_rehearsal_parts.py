"""The rehearsal's parts that need no Docker: the compiled YAML's Secrets as each step's env, the object store's
credential check, the MLflow container built from its manifest, and reading a step container's identity."""

from __future__ import annotations

import uuid

import boto3
import botocore.exceptions
import pytest
import yaml

from cluster.rehearsal import mlflow_server, pipeline
from cluster.rehearsal.common import MANIFESTS, RehearsalError, on_loopback, secret_data
from cluster.rehearsal.objectstore import BUCKET, CLUSTER_S3_URL, start_object_store
from pipelines._kubernetes import REGISTRY_CREDENTIALS_ENV, REGISTRY_CREDENTIALS_SECRET

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


def test_on_loopback_replaces_only_the_cluster_address():
    values = {"A": f"{CLUSTER_S3_URL}", "B": "s3", "C": f"x {CLUSTER_S3_URL}/p"}
    assert on_loopback(values, CLUSTER_S3_URL, LOCAL_S3) == {"A": LOCAL_S3, "B": "s3", "C": f"x {LOCAL_S3}/p"}


def test_step_name_is_the_function_a_kfp_container_executes():
    args = ["--executor_input", "{}", "--function_to_execute", "train_model"]
    assert pipeline._step_name(args) == "train_model"
    assert pipeline._step_name(["--executor_input", "{}"]) == "unknown"
