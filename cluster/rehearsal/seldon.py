"""What the Seldon Core 1.17.1 operator and its storage initializer do for a rendered SeldonDeployment, with real
processes and containers (serving-notes §A1, §A3, "Container contract"; model_initializer_injector.go v1.17.1).

- ``operator_env``: the environment the operator injects into the graph's custom container, from the manifest alone;
- ``storage_copy``: the init container ``seldonio/rclone-storage-initializer:1.17.1`` (ENTRYPOINT ``rclone copy``,
  USER 8888, args ``[modelUri, /mnt/models]``, ``envFrom`` the ``envSecretRefName`` Secret) as Debian's rclone;
- ``start_model_container``: the serving image with that environment, its declared user, the named ports, the copy
  mounted read-only at /mnt/models, and the manifest's probes checked as the kubelet would (HTTP GET -> 200);
- ``prove_serving``: the deploy step's smoke test against it, its answer against the model file, a metrics scrape;
- ``refuses_tampered_model``: the same container on a copy whose model.joblib was altered must exit, not serve.

The model container binds all interfaces (KServe's and prometheus_client's default; a pod has its own network
namespace): on the host network the rehearsal cannot narrow that without changing the container's arguments.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import requests
from prometheus_client.parser import text_string_to_metric_families

import model_bundle
from cluster.rehearsal.common import (
    RehearsalError,
    container_log,
    memory_bytes,
    port_is_free,
    run_container,
    wait_http,
)
from components.deploy_model.manifests import model_container
from components.deploy_model.smoke import DeploymentError, smoke_test

MODEL_MOUNT = "/mnt/models"  # DefaultModelLocalMountPath: the initializer writes it, the model container reads it
STORAGE_UID = 8888  # the initializer image's USER
RCLONE = Path("/usr/bin/rclone")  # Debian's package; the initializer image has rclone 1.59.1, Debian 12 has 1.60
# A container runtime gives a uid without a passwd entry HOME=/; no rclone.conf there, so only the env configures it.
RCLONE_BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/"}
COPY_TIMEOUT = 300.0
GRACE_SECONDS = 30  # a pod's default terminationGracePeriodSeconds
METRICS_ENDPOINT_ENV = "PREDICTIVE_UNIT_METRICS_ENDPOINT"
REQUEST_COUNTER = "model_requests_total"  # serving.metrics.REQUESTS, labelled model_name, outcome, reason
# Kubernetes' probe defaults, for fields a probe leaves out.
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "failureThreshold": 3}


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


@dataclass
class ServingContainer:
    """The running model container: its OIP model name, URLs on loopback and how long it took to become ready."""

    container: Any
    model_name: str
    base_url: str
    metadata_url: str
    metrics_url: str
    start_seconds: float

    def stop(self) -> int | None:
        """Stops the container as the kubelet does (SIGTERM, SIGKILL after the pod's default grace period) and
        removes it; returns its exit code, or None when it was already removed (idempotent)."""
        import docker

        try:
            self.container.stop(timeout=GRACE_SECONDS)
            self.container.reload()
            code = int(self.container.attrs["State"]["ExitCode"])
        except docker.errors.NotFound:
            return None
        _remove(self.container)
        return code


def start_model_container(client, image: str, manifest: dict, model_dir: Path) -> ServingContainer:
    """The serving image started as the operator's pod runs it, ready: its readiness and liveness probes (HTTP GET on
    their named ports) answered 200 within the time the liveness probe allows before the kubelet would restart it.
    The container is removed again when it does not get there."""
    spec = model_container(manifest)
    env = operator_env(manifest)
    ports = _named_ports(spec)
    probes = {probe: _probe_url(spec, probe, ports) for probe in ("readinessProbe", "livenessProbe")}
    budget = liveness_budget(spec)
    started = time.monotonic()
    container = _run_model_container(client, image, manifest, model_dir)
    try:
        what = f"the model container {spec['name']} ({image})"
        for probe, url in probes.items():
            remaining = budget - (time.monotonic() - started)
            wait_http(url, container, max(remaining, 1.0), f"{what}, {probe}")
    except BaseException:
        _remove(container)
        raise
    base_url = f"http://127.0.0.1:{ports['http']}"
    return ServingContainer(
        container=container,
        model_name=spec["name"],
        base_url=base_url,
        metadata_url=f"{base_url}/v2/models/{spec['name']}",
        metrics_url=f"http://127.0.0.1:{ports['metrics']}{env[METRICS_ENDPOINT_ENV]}",
        start_seconds=time.monotonic() - started,
    )


def _run_model_container(client, image: str, manifest: dict, model_dir: Path):
    """Starts (does not wait for) the model container: env = operator_env only, the image's own user, the named
    ports on the host network, ``model_dir`` read-only at /mnt/models, the manifest's memory limit."""
    spec = model_container(manifest)
    for name, number in _named_ports(spec).items():
        if not port_is_free(number):
            raise RehearsalError(
                f"port {number} (the model container's `{name}` port) is in use on this machine: with host networking "
                "the manifest's ports cannot be remapped; stop what listens there (`ss -ltnp`) and run again"
            )
    _check_non_root(client, image)
    options: dict[str, Any] = {}
    limits = spec.get("resources", {}).get("limits", {})
    if "memory" in limits:
        options["mem_limit"] = memory_bytes(limits["memory"])
    return run_container(
        client,
        image,
        f"model-{spec['name']}-{uuid.uuid4().hex[:6]}",  # unique: the served and the tampered one never collide
        environment=operator_env(manifest),
        volumes={str(Path(model_dir).resolve()): {"bind": MODEL_MOUNT, "mode": "ro"}},
        **options,
    )


def _named_ports(spec: dict) -> dict[str, int]:
    ports = {port.get("name"): int(port["containerPort"]) for port in spec.get("ports", [])}
    missing = {"http", "grpc", "metrics"} - set(ports)
    if missing:
        raise RehearsalError(f"container {spec['name']} declares no port(s) named {sorted(missing)}")
    return ports


def _probe_url(spec: dict, probe: str, ports: dict[str, int]) -> str:
    http_get = spec.get(probe, {}).get("httpGet")
    if not http_get:
        raise RehearsalError(
            f"container {spec['name']} has no httpGet {probe}: the operator would add a TCP one, which passes "
            "before the model is loaded"
        )
    port = http_get["port"]
    number = ports[port] if isinstance(port, str) else int(port)
    return f"http://127.0.0.1:{number}{http_get['path']}"


def liveness_budget(spec: dict) -> float:
    """Seconds until the kubelet would restart a container whose liveness probe never answers."""
    probe = {**PROBE_DEFAULTS, **spec.get("livenessProbe", {})}
    return float(probe["initialDelaySeconds"] + probe["periodSeconds"] * probe["failureThreshold"])


def _check_non_root(client, image: str) -> None:
    """The pod sets no runAsUser, so the image's USER runs the server: it must not be root."""
    user = client.images.get(image).attrs["Config"].get("User") or ""
    if user.split(":")[0] in {"", "0", "root"}:
        raise RehearsalError(f"image {image} runs as root (USER {user!r}); the serving image must declare a user")


def _remove(container) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):  # already removed
        container.remove(force=True)


# --- what the running container proves ----------------------------------------------------------------------------


def prove_serving(serving: ServingContainer, manifest: dict, model_dir: Path, rows: pd.DataFrame) -> dict:
    """The deploy step's smoke test (components.deploy_model.smoke) against the container: it must report the card's
    sha256 and answer ``rows`` over OIP exactly as ``joblib.load(model.joblib).predict(rows)`` computed here; then
    the metrics port must show those requests, and the operator's preStop hook must be runnable. ``rows`` may hold
    other columns (a test set's target): only the card's features are sent. Returns the figures for the summary."""
    model_dir = Path(model_dir)
    card = model_bundle.read_card(model_dir)
    missing = [name for name in card.feature_names if name not in rows.columns]
    if missing:
        raise RehearsalError(f"the smoke rows lack the model's feature(s) {missing}")
    rows = rows[card.feature_names]  # as the deploy step sends them: the model's features only
    expected = joblib.load(model_dir / model_bundle.MODEL_FILE).predict(rows)
    started = time.monotonic()
    try:
        smoke_test(serving.base_url, serving.model_name, rows, expected, card.sha256)
    except DeploymentError as error:
        raise RehearsalError(f"{error}\n{container_log(serving.container)}") from error
    smoke_seconds = time.monotonic() - started
    counted = _requests_counted(serving)
    if counted < 1:
        raise RehearsalError(
            f"{serving.metrics_url} counts no successful request of model {serving.model_name} ({REQUEST_COUNTER}) "
            "after the smoke test"
        )
    _check_pre_stop(serving, manifest)
    return {
        "model_name": serving.model_name,
        "start_seconds": round(serving.start_seconds, 2),
        "smoke_seconds": round(smoke_seconds, 3),
        "rows": len(rows),
        "requests_counted": counted,
        "sha256": card.sha256,
    }


def _requests_counted(serving: ServingContainer) -> float:
    """Successful requests of the model in the Prometheus text on the metrics port (what Seldon's PodMonitor
    scrapes)."""
    try:
        answer = requests.get(serving.metrics_url, timeout=10)
    except requests.RequestException as error:
        raise RehearsalError(f"metrics: cannot scrape {serving.metrics_url}: {error}") from error
    if answer.status_code != 200:
        raise RehearsalError(f"metrics: {serving.metrics_url} answered {answer.status_code}: {answer.text[:300]}")
    try:
        families = list(text_string_to_metric_families(answer.text))
    except ValueError as error:
        raise RehearsalError(f"metrics: {serving.metrics_url} is no Prometheus text ({error})") from error
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == REQUEST_COUNTER
        and sample.labels.get("model_name") == serving.model_name
        and sample.labels.get("outcome") == "ok"
    )


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

    spec = model_container(manifest)
    container = _run_model_container(client, image, manifest, tampered)
    try:
        code = _wait_for_refusal(container, _probe_url(spec, "readinessProbe", _named_ports(spec)), spec)
        log = container_log(container, lines=200)
    finally:
        _remove(container)
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
