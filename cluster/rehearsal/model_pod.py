"""The model container as the kubelet runs it, whichever control plane rendered its pod: the Seldon Core operator
(cluster.rehearsal.seldon) or KServe's Standard mode (cluster.rehearsal.kserve). Each of those only says what its
control plane hands the kubelet, a ``PodContainer``: the manifest's container, the environment it ends up with,
the OIP model name clients call and the port and path Prometheus scrapes. This module does the rest, once for both:

- ``start``: the serving image with exactly that environment and the container's own command and args, the
  image's user (neither control plane sets runAsUser), the declared ports on the host network, the storage copy
  mounted read-only at /mnt/models, the container's memory limit; ready once its readiness and liveness probes
  answer as the kubelet checks them (HTTP GET -> 200), within the time the liveness probe allows;
- ``prove_serving``: the deploy step's smoke test against it (components.deploy_model.smoke), its answers against
  the model file's own predictions, and a scrape of its metrics where the PodMonitor scrapes them.

The model container binds all interfaces (KServe's and prometheus_client's default; a pod has its own network
namespace): on the host network the rehearsal cannot narrow that without changing the container's arguments.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable
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
from components.deploy_model.smoke import DeploymentError, smoke_test

# DefaultModelLocalMountPath of both: Seldon's rclone initializer and KServe's storage initializer write it, the
# model container reads it.
MODEL_MOUNT = "/mnt/models"
GRACE_SECONDS = 30  # a pod's default terminationGracePeriodSeconds (neither control plane changes it)
REQUEST_COUNTER = "model_requests_total"  # serving.metrics.REQUESTS, labelled model_name, outcome, reason
PROBES = ("readinessProbe", "livenessProbe")
# Kubernetes' probe defaults, for fields a probe leaves out.
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "failureThreshold": 3}


@dataclass(frozen=True)
class PodContainer:
    """The model container as a control plane hands it to the kubelet.

    ``spec``: the container as the manifest declares it (name, image, command/args, ports, probes, resources);
    ``env``: every variable the container gets, after the control plane's additions and rewrites; ``model_name``:
    the OIP model name clients (and the deploy step's smoke test) call; ``metrics_port`` (a port name) and
    ``metrics_path``: where the platform's PodMonitor scrapes; ``required_ports``: the port names the control
    plane's contract needs declared besides ``http`` and the metrics port (RehearsalError naming the missing ones
    otherwise)."""

    spec: dict
    env: dict[str, str]
    model_name: str
    metrics_port: str
    metrics_path: str
    required_ports: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        named_ports(self.spec, {*self.required_ports, "http", self.metrics_port})

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def args(self) -> list[str]:
        """The container's args as rendered: what the kubelet passes to the image's ENTRYPOINT."""
        return list(self.spec.get("args", []))

    @property
    def ports(self) -> dict[str, int]:
        return named_ports(self.spec)

    def probe_url(self, probe: str) -> str:
        """The URL the kubelet's HTTP GET of ``probe`` asks, on loopback (host network)."""
        http_get = self.spec.get(probe, {}).get("httpGet")
        if not http_get:
            raise RehearsalError(
                f"container {self.name} has no httpGet {probe}: the operator would add a TCP one, which passes "
                "before the model is loaded"
            )
        port = http_get["port"]
        number = self.ports[port] if isinstance(port, str) else int(port)
        return f"http://127.0.0.1:{number}{http_get['path']}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['http']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports[self.metrics_port]}{self.metrics_path}"


def named_ports(spec: dict, required: Iterable[str] = ()) -> dict[str, int]:
    """The container's ports by name; RehearsalError naming the ``required`` names it does not declare."""
    ports = {port.get("name"): int(port["containerPort"]) for port in spec.get("ports", [])}
    missing = set(required) - set(ports)
    if missing:
        raise RehearsalError(f"container {spec['name']} declares no port(s) named {sorted(missing)}")
    return ports


def liveness_budget(spec: dict) -> float:
    """Seconds until the kubelet would restart a container whose liveness probe never answers."""
    probe = {**PROBE_DEFAULTS, **spec.get("livenessProbe", {})}
    return float(probe["initialDelaySeconds"] + probe["periodSeconds"] * probe["failureThreshold"])


# --- the running container ----------------------------------------------------------------------------------------


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
        remove(self.container)
        return code


def start(client, image: str, pod: PodContainer, model_dir: Path) -> ServingContainer:
    """``pod`` started from ``image`` and ready: its readiness and liveness probes (HTTP GET) answered 200 within
    the time the liveness probe allows before the kubelet would restart it. The container is removed again when it
    does not get there. Both probes are checked before anything starts: without HTTP probes the control plane adds
    TCP ones, which would pass before the model is loaded."""
    probes = {probe: pod.probe_url(probe) for probe in PROBES}
    budget = liveness_budget(pod.spec)
    started = time.monotonic()
    container = run(client, image, pod, model_dir)
    try:
        what = f"the model container {pod.name} ({image})"
        for probe, url in probes.items():
            remaining = budget - (time.monotonic() - started)
            wait_http(url, container, max(remaining, 1.0), f"{what}, {probe}")
    except BaseException:
        remove(container)
        raise
    return ServingContainer(
        container=container,
        model_name=pod.model_name,
        base_url=pod.base_url,
        metadata_url=f"{pod.base_url}/v2/models/{pod.model_name}",
        metrics_url=pod.metrics_url,
        start_seconds=time.monotonic() - started,
    )


def run(client, image: str, pod: PodContainer, model_dir: Path):
    """Starts (does not wait for) ``pod``: its env only, its command and args, the image's own user, its declared
    ports on the host network, ``model_dir`` read-only at /mnt/models, its memory limit."""
    for name, number in pod.ports.items():
        if not port_is_free(number):
            raise RehearsalError(
                f"port {number} (the model container's `{name}` port) is in use on this machine: with host networking "
                "the manifest's ports cannot be remapped; stop what listens there (`ss -ltnp`) and run again"
            )
    check_non_root(client, image)
    options: dict[str, Any] = {}
    # Kubernetes' command replaces the image's ENTRYPOINT and args its CMD, as docker's entrypoint and command do.
    if pod.spec.get("command"):
        options["entrypoint"] = list(pod.spec["command"])
    if pod.args:
        options["command"] = pod.args
    limits = pod.spec.get("resources", {}).get("limits", {})
    if "memory" in limits:
        options["mem_limit"] = memory_bytes(limits["memory"])
    return run_container(
        client,
        image,
        f"model-{pod.model_name}-{uuid.uuid4().hex[:6]}",  # unique: no two model containers ever collide
        environment=dict(pod.env),
        volumes={str(Path(model_dir).resolve()): {"bind": MODEL_MOUNT, "mode": "ro"}},
        **options,
    )


def check_non_root(client, image: str) -> None:
    """The pod sets no runAsUser, so the image's USER runs the server: it must not be root."""
    user = client.images.get(image).attrs["Config"].get("User") or ""
    if user.split(":")[0] in {"", "0", "root"}:
        raise RehearsalError(f"image {image} runs as root (USER {user!r}); the serving image must declare a user")


def remove(container) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):  # already removed
        container.remove(force=True)


# --- what the running container proves ----------------------------------------------------------------------------


def prove_serving(serving: ServingContainer, model_dir: Path, rows: pd.DataFrame) -> dict:
    """The deploy step's smoke test (components.deploy_model.smoke) against the container: it must report the card's
    sha256 and answer ``rows`` over OIP exactly as ``joblib.load(model.joblib).predict(rows)`` computed here; then
    the metrics endpoint must show those requests. ``rows`` may hold other columns (a test set's target): only the
    card's features are sent. Returns the figures for the summary, with the predictions the answers equalled."""
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
    counted = requests_counted(serving)
    if counted < 1:
        raise RehearsalError(
            f"{serving.metrics_url} counts no successful request of model {serving.model_name} ({REQUEST_COUNTER}) "
            "after the smoke test"
        )
    return {
        "model_name": serving.model_name,
        "start_seconds": round(serving.start_seconds, 2),
        "smoke_seconds": round(smoke_seconds, 3),
        "rows": len(rows),
        "predictions": expected.tolist(),
        "requests_counted": counted,
        "metrics_url": serving.metrics_url,
        "sha256": card.sha256,
    }


def requests_counted(serving: ServingContainer) -> float:
    """Successful requests of the model in the Prometheus text at the metrics URL (what the PodMonitor scrapes)."""
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
