"""What the Seldon Core 1.17.1 operator and its storage initializer do for a rendered SeldonDeployment, with real
processes and containers (serving-notes §A1, §A3, "Container contract"; model_initializer_injector.go v1.17.1).

- ``operator_env``: the environment the operator injects into the graph's custom container, from the manifest alone;
- ``storage_copy``: the init container ``seldonio/rclone-storage-initializer:1.17.1`` (ENTRYPOINT ``rclone copy``,
  USER 8888, args ``[modelUri, /mnt/models]``, ``envFrom`` the ``envSecretRefName`` Secret) as Debian's rclone;
- ``pod_container``: the graph's container as the operator's pod runs it (that environment, the named ports, the
  metrics port at the operator's path); ``start_model_container`` starts it (cluster.rehearsal.model_pod, which
  the KServe form shares: the image's user, the copy read-only at /mnt/models, the probes as the kubelet checks
  them);
- ``prove_serving``: the deploy step's smoke test against it, its answer against the model file, a metrics scrape,
  and the operator's preStop hook;
- ``refuses_tampered_model``: the same container on a copy whose model.joblib was altered must exit, not serve.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import requests

import model_bundle
from cluster.rehearsal import model_pod
from cluster.rehearsal.common import RehearsalError, container_log
from cluster.rehearsal.model_pod import (  # noqa: F401  (GRACE_SECONDS: still part of this module's interface)
    GRACE_SECONDS,
    MODEL_MOUNT,
    PodContainer,
    ServingContainer,
    liveness_budget,
    named_ports,
)
from components.deploy_model.manifests import model_container

STORAGE_UID = 8888  # the initializer image's USER
RCLONE = Path("/usr/bin/rclone")  # Debian's package; the initializer image has rclone 1.59.1, Debian 12 has 1.60
# A container runtime gives a uid without a passwd entry HOME=/; no rclone.conf there, so only the env configures it.
RCLONE_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/"}
COPY_TIMEOUT = 300.0
METRICS_ENDPOINT_ENV = "PREDICTIVE_UNIT_METRICS_ENDPOINT"
SELDON_PORTS = ("http", "grpc", "metrics")  # the named ports operator_env turns into the operator's variables


# --- the operator's environment -----------------------------------------------------------------------------------


def operator_env(manifest: dict) -> dict[str, str]:
    """The env Seldon Core 1.17.1 sets on the graph's custom container (`createContainerService`, `addPortEnvs`,
    `addModelEnvs`; serving-notes §A1): ports from the container's named ports (which the operator keeps), the
    node's parameters as JSON, /mnt/models for a modelUri, the container name as the model's id, the metrics
    port at the executor's Prometheus path."""
    (p,) = manifest["spec"]["predictors"]
    graph, container = p["graph"], model_container(manifest)
    ports = {port["name"]: str(port["containerPort"]) for port in container["ports"]}
    env = {
        "PREDICTIVE_UNIT_SERVICE_PORT": ports["http"],  # transport rest
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": ports["http"],
        "MLSERVER_HTTP_PORT": ports["http"],
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": ports["grpc"],
        "MLSERVER_GRPC_PORT": ports["grpc"],
        "PREDICTIVE_UNIT_ID": container["name"],
        "MLSERVER_MODEL_NAME": container["name"],
        "PREDICTIVE_UNIT_IMAGE": container["image"],
        "PREDICTOR_ID": p["name"],
        "PREDICTOR_LABELS": json.dumps(p.get("labels", {}), separators=(",", ":")),
        "SELDON_DEPLOYMENT_ID": manifest["metadata"]["name"],
        "SELDON_EXECUTOR_ENABLED": "true",
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": ports["metrics"],
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        "MLSERVER_METRICS_PORT": ports["metrics"],
        "MLSERVER_METRICS_ENDPOINT": "/prometheus",
    }
    if graph.get("parameters"):
        # Go's json.Marshal of []Parameter: fields in struct order name, value, type.
        parameters = [{"name": q["name"], "value": q["value"], "type": q["type"]} for q in graph["parameters"]]
        env["PREDICTIVE_UNIT_PARAMETERS"] = json.dumps(parameters, separators=(",", ":"))
    if graph.get("modelUri"):
        env["MLSERVER_MODEL_URI"] = MODEL_MOUNT
    # What the container itself declares comes first in the pod spec; the operator never overrides it.
    env.update({variable["name"]: variable["value"] for variable in container.get("env", [])})
    return env


# --- the storage initializer --------------------------------------------------------------------------------------


def storage_copy(model_uri: str, rclone_env: dict[str, str], destination: Path) -> Path:
    """``rclone copy <model_uri> <destination>`` as the initializer runs it: uid/gid 8888, the environment of the
    Secret (``rclone_env``: its stringData, the S3 endpoint moved to loopback by the caller) plus PATH and HOME and
    nothing of this machine's (its CA and proxy variables would change rclone's behaviour; a pod has none of
    them). ``destination`` must not exist; it is created owned by 8888 and the copy is made read-only afterwards,
    as the model container sees it. Returns ``destination``.

    The URI is passed unchanged, as the operator does (it rewrites only ``pvc://``). Seldon's docs give
    ``s3:bucket/key`` (remote ``S3`` from ``RCLONE_CONFIG_S3_*``) and state ``s3://bucket/key`` is the same; with
    rclone 1.60 it is: the remote is the part before ``:``, and the S3 backend strips the leading ``//`` of the
    path, so MLflow's ``s3://mlpipeline/...`` URIs need no rewriting.
    """
    if not RCLONE.is_file():
        raise RehearsalError(
            f"storage initializer: {RCLONE} not found; the rehearsal runs the initializer's `rclone copy` with "
            "Debian's rclone: `apt-get install rclone`"
        )
    destination = Path(destination)
    _check_reachable_by_storage_uid(destination.parent)
    destination.mkdir()
    os.chown(destination, STORAGE_UID, STORAGE_UID)
    command = [str(RCLONE), "copy", model_uri, str(destination)]
    try:
        result = subprocess.run(
            command,
            env={**rclone_env, **RCLONE_BASE_ENV},
            user=STORAGE_UID,
            group=STORAGE_UID,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=COPY_TIMEOUT,
            check=False,
        )
    except PermissionError as error:
        raise RehearsalError(
            f"storage initializer: cannot run rclone as uid {STORAGE_UID} ({error}); the rehearsal must run as root "
            "to switch to the initializer's user, as the kubelet does"
        ) from error
    except subprocess.TimeoutExpired as error:
        raise RehearsalError(f"storage initializer: `{' '.join(command)}` ran over {COPY_TIMEOUT:.0f} s") from error
    if result.returncode != 0:
        raise RehearsalError(
            f"storage initializer: `{' '.join(command)}` exited with code {result.returncode} (the init container "
            f"would fail the same way):\n{result.stderr[-3000:]}"
        )
    if not any(destination.iterdir()):
        # rclone copies nothing and exits 0 for a prefix without objects: the init container would succeed and
        # the model container then find an empty /mnt/models.
        raise RehearsalError(
            f"storage initializer: `{' '.join(command)}` succeeded but copied nothing: no object under {model_uri} "
            f"(the real init container succeeds too; the model server would then find {MODEL_MOUNT} empty)"
        )
    _make_read_only(destination)
    return destination


def _check_reachable_by_storage_uid(directory: Path) -> None:
    """uid 8888 must traverse every ancestor of the copy (pytest's and mkdtemp's directories are 0700)."""
    for ancestor in [directory.resolve(), *directory.resolve().parents]:
        mode = ancestor.stat()
        if not (mode.st_mode & stat.S_IXOTH or mode.st_uid == STORAGE_UID):
            raise RehearsalError(
                f"storage initializer: uid {STORAGE_UID} cannot enter {ancestor} (mode {stat.filemode(mode.st_mode)}); "
                "put the copy under a directory others may traverse"
            )


def _make_read_only(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


# --- the model container ------------------------------------------------------------------------------------------


def pod_container(manifest: dict) -> PodContainer:
    """The graph's container as the operator's pod runs it: ``operator_env``, the named ports the operator's
    contract needs, the container name as the OIP model name, metrics on the `metrics` port at the operator's
    Prometheus path (what Seldon's PodMonitor scrapes)."""
    spec = model_container(manifest)
    named_ports(spec, SELDON_PORTS)  # before operator_env, which reads them
    env = operator_env(manifest)
    return PodContainer(
        spec=spec,
        env=env,
        model_name=spec["name"],
        metrics_port="metrics",
        metrics_path=env[METRICS_ENDPOINT_ENV],
        required_ports=SELDON_PORTS,
    )


def start_model_container(client, image: str, manifest: dict, model_dir: Path) -> ServingContainer:
    """The serving image started as the operator's pod runs it, ready (model_pod.start: its probes answered as the
    kubelet checks them). The container is removed again when it does not get there."""
    return model_pod.start(client, image, pod_container(manifest), model_dir)


def prove_serving(serving: ServingContainer, manifest: dict, model_dir: Path, rows: pd.DataFrame) -> dict:
    """model_pod.prove_serving (the deploy step's smoke test against the model file's own predictions, the metrics
    port counting those requests), then the operator's preStop hook must be runnable. Returns the figures."""
    figures = model_pod.prove_serving(serving, model_dir, rows)
    _check_pre_stop(serving, manifest)
    return figures


def _check_pre_stop(serving: ServingContainer, manifest: dict) -> None:
    """The operator adds the preStop hook `/bin/sh -c "/bin/sleep 10"` (serving-notes §A1); run with 0 seconds, the
    same binaries must exist in the image."""
    result = serving.container.exec_run(["/bin/sh", "-c", "/bin/sleep 0"])
    if result.exit_code != 0:
        name = model_container(manifest)["name"]
        raise RehearsalError(
            f"container {name}: the operator's preStop hook cannot run (/bin/sh -c /bin/sleep exited "
            f"{result.exit_code}: {result.output.decode(errors='replace')[:300]})"
        )


# --- a tampered model ---------------------------------------------------------------------------------------------


def refuses_tampered_model(client, image: str, manifest: dict, model_dir: Path, tmp: Path) -> str:
    """Starts the model container on a copy of ``model_dir`` whose model.joblib has one byte flipped: it must exit
    non-zero without ever answering its readiness probe, and its log must name model.joblib, the digest the
    manifest expects and the one found. Returns that log line; the container is always removed."""
    tampered = Path(tmp) / f"tampered-{uuid.uuid4().hex[:6]}"
    shutil.copytree(model_dir, tampered)
    model_file = tampered / model_bundle.MODEL_FILE
    model_file.chmod(0o644)
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    _make_read_only(tampered)
    expected = _parameter(manifest, "model_sha256")
    found = model_bundle.file_sha256(model_file)

    pod = pod_container(manifest)
    container = model_pod.run(client, image, pod, tampered)
    try:
        code = _wait_for_refusal(container, pod.probe_url("readinessProbe"), pod.spec)
        log = container_log(container, lines=200)
    finally:
        model_pod.remove(container)
    if code == 0:
        raise RehearsalError(f"the model container exited 0 on a tampered model.joblib; it must fail:\n{log}")
    for line in log.splitlines():
        if model_bundle.MODEL_FILE in line and expected in line and found in line:
            return line.strip()
    raise RehearsalError(
        f"the model container refused the tampered model (exit {code}) but no log line names "
        f"{model_bundle.MODEL_FILE} with the expected digest {expected} and the found {found}:\n{log}"
    )


def _wait_for_refusal(container, readiness_url: str, spec: dict) -> int:
    """The container's exit code once it exits; RehearsalError when it becomes ready or is still running when the
    kubelet would restart it."""
    budget = liveness_budget(spec)
    started = time.monotonic()
    while time.monotonic() - started < budget:
        container.reload()
        if container.status in {"exited", "dead"}:
            return int(container.attrs["State"]["ExitCode"])
        try:
            if requests.get(readiness_url, timeout=2).status_code == 200:
                raise RehearsalError(
                    f"the model container became ready ({readiness_url}) serving a tampered model.joblib:\n"
                    + container_log(container)
                )
        except requests.RequestException:
            pass  # not listening: what a refusing server looks like until it exits
        time.sleep(0.5)
    raise RehearsalError(
        f"the model container on a tampered model.joblib neither exited nor became ready within {budget:.0f} s:\n"
        + container_log(container)
    )


def _parameter(manifest: dict, name: str) -> str:
    (predictor,) = manifest["spec"]["predictors"]
    for parameter in predictor["graph"].get("parameters", []):
        if parameter["name"] == name:
            return str(parameter["value"])
    raise RehearsalError(f"SeldonDeployment {manifest['metadata']['name']} has no graph parameter {name!r}")
