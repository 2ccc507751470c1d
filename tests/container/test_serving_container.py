"""The serving image as Seldon Core 1.17.1 runs it, really run: the registered model's files in a real S3 server,
the storage initializer's `rclone copy` with the cluster's Secret, the model container with the operator's
environment, ports, user, read-only volume and probes, the deploy step's smoke test, a metrics scrape, and a
tampered model that must not start (cluster.rehearsal.seldon).

Skipped, saying why, without a Docker daemon or the images `make images` built (conftest.py); in CI (CI set) the
skip fails the run (tests/fixtures.py). The model container takes the manifest's ports 8080-8082 on the host network.
"""

from __future__ import annotations

import copy
import os
import shutil
import stat
import tempfile
import time
import uuid
from pathlib import Path

import joblib
import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import model_bundle
from cluster.rehearsal import seldon
from cluster.rehearsal.common import (
    MANIFESTS,
    RehearsalError,
    on_loopback,
    rehearsal_containers,
    secret_data,
)
from cluster.rehearsal.objectstore import BUCKET, CLUSTER_S3_URL, start_object_store
from components.deploy_model.manifests import RCLONE_SECRET, build_seldon_deployment, model_container
from serving.oip import table_request

pytestmark = pytest.mark.container

SECRET_MANIFEST = MANIFESTS / "seldon-rclone-secret.yaml"
SMOKE_ROWS = 5


@pytest.fixture(scope="module")
def rclone_secret() -> dict[str, str]:
    return secret_data(SECRET_MANIFEST, RCLONE_SECRET)


@pytest.fixture(scope="module")
def object_store(rclone_secret):
    """The S3 server standing in for SeaweedFS, accepting only the Secret's access key."""
    store = start_object_store(
        rclone_secret["RCLONE_CONFIG_S3_ACCESS_KEY_ID"], rclone_secret["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"]
    )
    yield store
    store.stop()


@pytest.fixture(scope="module")
def model_uri(object_store, regression_bundle) -> str:
    """The bundle's files where MLflow puts a run's model artifacts; its URI as the registry reports it."""
    bundle, _ = regression_bundle
    prefix = f"mlflow/1/{uuid.uuid4().hex}/artifacts/model"
    s3 = object_store.s3()
    for path in sorted(bundle.directory.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(bundle.directory).as_posix()}")
    return f"s3://{BUCKET}/{prefix}"


@pytest.fixture(scope="module")
def rclone_env(rclone_secret, object_store) -> dict[str, str]:
    env = on_loopback(rclone_secret, CLUSTER_S3_URL, object_store.endpoint_url)
    assert env["RCLONE_CONFIG_S3_ENDPOINT"] == object_store.endpoint_url, (
        f"{SECRET_MANIFEST} does not name SeaweedFS's in-cluster address {CLUSTER_S3_URL}"
    )
    return env


@pytest.fixture(scope="module")
def work_dir(docker):
    """A directory uid 8888 may traverse (pytest's temporary directories are 0700). Asks for Docker: the tier
    skips as a whole without it, the storage copy included."""
    directory = Path(tempfile.mkdtemp(prefix="kfp-mlops-rehearsal-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def copy_model(model_uri: str, rclone_env: dict[str, str], destination: Path) -> Path:
    try:
        return seldon.storage_copy(model_uri, rclone_env, destination)
    except RehearsalError as error:
        if not seldon.RCLONE.is_file() or os.geteuid() != 0:  # no rclone, or no switching to the initializer's uid
            pytest.skip(f"the storage copy needs rclone and root (to switch to uid {seldon.STORAGE_UID}): {error}")
        raise


@pytest.fixture(scope="module")
def mnt_models(model_uri, rclone_env, work_dir) -> Path:
    return copy_model(model_uri, rclone_env, work_dir / "mnt-models")


@pytest.fixture(scope="module")
def manifest(images, model_uri, regression_bundle) -> dict:
    """The deploy step's SeldonDeployment for the uploaded model; a name of its own, so this module's containers
    are told from any other rehearsal's."""
    bundle, _ = regression_bundle
    name = f"houses-{uuid.uuid4().hex[:6]}"
    return build_seldon_deployment(name, "3", model_uri, bundle.card.sha256, image=images.serving)


@pytest.fixture(scope="module")
def serving(images, docker, manifest, mnt_models):
    started = seldon.start_model_container(docker, images.serving, manifest, mnt_models)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def rows(regression_bundle):
    bundle, test_rows = regression_bundle
    return test_rows[bundle.feature_names].head(SMOKE_ROWS)


# --- the storage initializer ----------------------------------------------------------------------------------------


def test_storage_copy_lands_the_model_read_only_owned_by_the_initializer_uid(mnt_models, regression_bundle):
    bundle, _ = regression_bundle
    source = {path.relative_to(bundle.directory): path for path in bundle.directory.rglob("*") if path.is_file()}
    copied = {path.relative_to(mnt_models): path for path in mnt_models.rglob("*") if path.is_file()}

    assert sorted(copied) == sorted(source)
    assert all(copied[name].read_bytes() == source[name].read_bytes() for name in source)
    for path in [mnt_models, *mnt_models.rglob("*")]:
        status = path.stat()
        assert (status.st_uid, status.st_gid) == (seldon.STORAGE_UID, seldon.STORAGE_UID), path
        assert not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), f"{path} is writable"


def test_storage_copy_uses_only_the_secret_not_this_machines_environment(model_uri, rclone_env, work_dir, monkeypatch):
    # The key id, missing from the Secret's variables, is in this process's environment: it must not reach rclone.
    without_key = {name: value for name, value in rclone_env.items() if name != "RCLONE_CONFIG_S3_ACCESS_KEY_ID"}
    monkeypatch.setenv("RCLONE_CONFIG_S3_ACCESS_KEY_ID", rclone_env["RCLONE_CONFIG_S3_ACCESS_KEY_ID"])

    refusal = r"(?s)`/usr/bin/rclone copy s3://\S+ \S+` exited with code 1 .*: access_key_id not found"
    with pytest.raises(RehearsalError, match=refusal):
        copy_model(model_uri, without_key, work_dir / f"no-key-{uuid.uuid4().hex[:6]}")


def test_storage_copy_reports_what_the_object_store_refused(model_uri, rclone_env, work_dir, object_store):
    wrong_key = {**rclone_env, "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "not-the-secrets"}
    refused_before = len(object_store.refused)

    with pytest.raises(RehearsalError, match=r"(?s)exited with code 1 .*InvalidAccessKeyId"):
        copy_model(model_uri, wrong_key, work_dir / f"wrong-key-{uuid.uuid4().hex[:6]}")
    assert len(object_store.refused) > refused_before


def test_storage_copy_of_a_uri_without_objects_is_refused(model_uri, rclone_env, work_dir):
    missing = model_uri.replace("/artifacts/model", "/artifacts/no-such-model")

    with pytest.raises(RehearsalError, match="succeeded but copied nothing: no object under s3://"):
        copy_model(missing, rclone_env, work_dir / f"empty-{uuid.uuid4().hex[:6]}")


def test_storage_copy_without_rclone_names_the_package(monkeypatch, work_dir):
    monkeypatch.setattr(seldon, "RCLONE", work_dir / "no-rclone-here")

    with pytest.raises(RehearsalError, match=r"`apt-get install rclone`"):
        seldon.storage_copy("s3://mlpipeline/x", {}, work_dir / "never-created")
    assert not (work_dir / "never-created").exists()


# --- the model container ------------------------------------------------------------------------------------------


def test_the_container_answers_its_probes_and_oip_health(serving, manifest):
    container = model_container(manifest)

    assert requests.get(f"{serving.base_url}/v2/health/ready", timeout=10).status_code == 200
    for probe in ("readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert requests.get(f"{serving.base_url}{path}", timeout=10).status_code == 200, probe
    assert serving.start_seconds < seldon.liveness_budget(container)


def test_the_container_runs_as_the_images_non_root_user_with_a_read_only_model(serving):
    user = serving.container.exec_run(["id", "-u"])
    write = serving.container.exec_run(["/bin/sh", "-c", "touch /mnt/models/written"])

    assert (user.exit_code, user.output.decode().strip()) == (0, str(seldon.STORAGE_UID))
    assert write.exit_code != 0 and b"Read-only file system" in write.output


def test_the_container_gets_the_operators_environment_and_the_manifests_memory_limit(images, docker, serving, manifest):
    image_env = docker.images.get(images.serving).attrs["Config"]["Env"] or []
    expected = {*image_env, *(f"{name}={value}" for name, value in seldon.operator_env(manifest).items())}
    limit = model_container(manifest)["resources"]["limits"]["memory"]

    assert set(serving.container.attrs["Config"]["Env"]) == expected
    assert (limit, serving.container.attrs["HostConfig"]["Memory"]) == ("1Gi", 2**30)


def test_the_oip_answer_is_what_the_model_file_predicts(serving, mnt_models, rows):
    expected = joblib.load(mnt_models / model_bundle.MODEL_FILE).predict(rows)

    answer = requests.post(f"{serving.metadata_url}/infer", json=table_request(rows), timeout=30)

    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["shape"][0] == len(rows)
    assert np.allclose(np.asarray(output["data"], dtype=float).reshape(-1), expected, rtol=1e-9, atol=0.0)


def test_prove_serving_smoke_tests_and_scrapes_the_metrics_port(serving, manifest, mnt_models, regression_bundle):
    _, test_rows = regression_bundle  # with the target column, as a pipeline's test set has it

    figures = seldon.prove_serving(serving, manifest, mnt_models, test_rows.head(SMOKE_ROWS))

    assert figures["model_name"] == model_container(manifest)["name"]
    assert figures["sha256"] == model_bundle.read_card(mnt_models).sha256
    assert figures["rows"] == SMOKE_ROWS
    assert figures["requests_counted"] >= 1
    assert serving.metrics_url == "http://127.0.0.1:8082/prometheus"
    scraped = requests.get(serving.metrics_url, timeout=10)
    names = {sample.name for family in text_string_to_metric_families(scraped.text) for sample in family.samples}
    assert {"model_requests_total", "model_prediction_rows_total"} <= names


def test_prove_serving_fails_on_another_models_files(serving, manifest, mnt_models, rows, work_dir):
    other = work_dir / f"other-card-{uuid.uuid4().hex[:6]}"
    shutil.copytree(mnt_models, other)
    card = other / model_bundle.CARD_FILE
    card.chmod(0o644)
    card.write_text(card.read_text().replace(model_bundle.read_card(mnt_models).sha256, "0" * 64))

    with pytest.raises(RehearsalError, match=f"serves sha256 .* expected {'0' * 64}"):
        seldon.prove_serving(serving, manifest, other, rows)


def test_a_busy_manifest_port_is_named(images, docker, serving, manifest, mnt_models):
    with pytest.raises(RehearsalError, match=r"port 8080 \(the model container's `http` port\) is in use"):
        seldon.start_model_container(docker, images.serving, manifest, mnt_models)


def test_a_manifest_without_http_probes_is_refused_before_starting(images, docker, serving, manifest, mnt_models):
    tcp_only = copy.deepcopy(manifest)
    del model_container(tcp_only)["readinessProbe"]
    name = model_container(manifest)["name"]

    with pytest.raises(RehearsalError, match="has no httpGet readinessProbe: the operator would add a TCP one"):
        seldon.start_model_container(docker, images.serving, tcp_only, mnt_models)
    started = [started for started in rehearsal_containers(docker) if name in started]
    assert started == [serving.container.name]  # none besides the one already serving


def test_the_server_exits_cleanly_on_the_kubelets_sigterm(serving):
    started = time.monotonic()

    assert serving.stop() == 0
    assert time.monotonic() - started < seldon.GRACE_SECONDS  # not killed at the end of the grace period
    assert serving.stop() is None


def test_a_tampered_model_refuses_to_start(images, docker, serving, manifest, mnt_models, work_dir):
    serving.stop()  # host networking: the tampered container needs the same ports

    line = seldon.refuses_tampered_model(docker, images.serving, manifest, mnt_models, work_dir)

    expected = model_bundle.read_card(mnt_models).sha256
    assert f"{seldon.MODEL_MOUNT}/{model_bundle.MODEL_FILE}" in line
    assert f"expected {expected}, found " in line and "refusing to load" in line


def test_no_container_of_this_rehearsal_is_left(docker, serving, manifest):
    serving.stop()
    name = model_container(manifest)["name"]

    assert [started for started in rehearsal_containers(docker) if name in started] == []
