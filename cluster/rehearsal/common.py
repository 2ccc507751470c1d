"""What every rehearsal stage shares: the Docker client, containers that are always cleaned up, the cluster's
Secrets read from their manifests, and waiting for an HTTP endpoint.

Every container the rehearsal starts carries the labels ``LABEL`` and ``RUN_LABEL`` and runs on the host network
(the daemon may have no bridge), listening on loopback only where its arguments allow it; ``remove_containers``
removes them all, so nothing outlives the command, whatever failed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import time
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = REPO_ROOT / "cluster" / "manifests"
LABEL = "kfp-mlops.rehearsal"
# This process's rehearsal: its containers carry it, so clean-up never touches another rehearsal's.
RUN_LABEL = "kfp-mlops.rehearsal.run"
RUN_ID = uuid.uuid4().hex[:8]
_cleanup_registered: list[bool] = []


class RehearsalError(RuntimeError):
    """A stage of the rehearsal failed; the message names the stage's input at fault and what to look at."""


@dataclass(frozen=True)
class Stage:
    """One line of the summary: what ran, how long it took, what it proved."""

    name: str
    seconds: float
    proved: str


def built_image_tag() -> str:
    """The tag `make images` gives both images: IMAGE_TAG when set, else the project version and short commit
    (the Makefile's rule, for tests and tools that must find those images)."""
    if os.environ.get("IMAGE_TAG"):
        return os.environ["IMAGE_TAG"]
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    if commit.returncode != 0:
        raise RehearsalError(f"no image tag: IMAGE_TAG is unset and git rev-parse failed ({commit.stderr.strip()})")
    return f"{version}-{commit.stdout.strip()}"


def docker_client():
    """The Docker daemon's client, or RehearsalError naming why there is none (the reason the container tier
    prints when it skips)."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as error:  # docker raises several unrelated types for "no daemon"
        raise RehearsalError(
            f"no Docker daemon reachable ({type(error).__name__}: {error}); start one (e.g. "
            "`dockerd --iptables=false --ip-masq=false --bridge=none &`) or set DOCKER_HOST"
        ) from error
    return client


def require_image(client, image: str) -> None:
    """Stops with the command that builds ``image`` when it is missing: the rehearsal never pulls."""
    import docker

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise RehearsalError(
            f"image {image} is not built here: run `make images` (after `make base-image` on a machine that "
            "reaches no image registry: make base-image images IMAGE_BASE=kfp-mlops-base:bookworm), or pass the "
            "tag it was built with as IMAGE_TAG"
        ) from None


def run_container(client, image: str, name: str, **options):
    """Starts a labelled, detached container on the host network; ``options`` go to docker-py's
    ``containers.run`` (command, environment, volumes, user, entrypoint, ...)."""
    labels = {LABEL: name, RUN_LABEL: RUN_ID, **options.pop("labels", {})}
    if not _cleanup_registered:
        # A second net under the callers' own clean-up: whatever stops this process, its containers go with it.
        atexit.register(remove_containers, client)
        _cleanup_registered.append(True)
    return client.containers.run(
        image, name=f"kfp-mlops-rehearsal-{name}-{RUN_ID}", detach=True, network_mode="host", labels=labels, **options
    )


def rehearsal_containers(client, every_run: bool = False) -> list[str]:
    """Names of every container (running or not) this rehearsal started; ``every_run``: any rehearsal's. Read
    from the daemon's listing alone: kfp.local's step containers remove themselves at any moment."""
    label = LABEL if every_run else f"{RUN_LABEL}={RUN_ID}"
    return [entry["Names"][0].lstrip("/") for entry in client.api.containers(all=True, filters={"label": label})]


def remove_containers(client) -> None:
    """Force-removes every container this rehearsal started: a rehearsal leaves nothing behind."""
    import docker

    for name in rehearsal_containers(client):
        with contextlib.suppress(docker.errors.NotFound):  # a step container that just removed itself
            client.api.remove_container(name, force=True)


def container_log(container, lines: int = 40) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace")
    except Exception as error:  # the container may already be gone
        return f"(no log: {error})"


def secret_data(manifest: Path, name: str) -> dict[str, str]:
    """``stringData`` of the Secret ``name`` in ``manifest`` (a multi-document YAML file): exactly what the
    cluster's pods receive from it."""
    for document in yaml.safe_load_all(manifest.read_text()):
        if document and document.get("kind") == "Secret" and document["metadata"]["name"] == name:
            return {key: str(value) for key, value in document["stringData"].items()}
    raise RehearsalError(f"{manifest} has no Secret named {name!r}")


def on_loopback(values: Mapping[str, str], cluster_url: str, local_url: str) -> dict[str, str]:
    """``values`` with the in-cluster address ``cluster_url`` (a Service's DNS name) replaced by the loopback
    address standing in for it: the only change the rehearsal makes to what a Secret holds."""
    return {key: value.replace(cluster_url, local_url) for key, value in values.items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of loopback now. With SO_REUSEADDR, as servers make their
    sockets: a port whose last connections linger in TIME_WAIT (a removed container's) is free, one with a
    listener is not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes memory quantity such as ``1Gi`` or ``512M`` (a container's memory limit)."""
    for suffix, factor in MEMORY_UNITS.items():
        if quantity.endswith(suffix) and quantity[: -len(suffix)].isdigit():
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def wait_http(url: str, container, timeout: float, what: str) -> float:
    """Polls ``url`` until it answers 200 (as a kubelet's HTTP probe would); returns the seconds it took. Raises
    RehearsalError with the container's log when it exits or the time is up."""
    start = time.monotonic()
    last = "no answer"
    while time.monotonic() - start < timeout:
        container.reload()
        if container.status in {"exited", "dead"}:
            raise RehearsalError(
                f"{what} exited with code {container.attrs['State']['ExitCode']} before {url} answered:\n"
                + container_log(container)
            )
        try:
            answer = requests.get(url, timeout=5)
            if answer.status_code == 200:
                return time.monotonic() - start
            last = f"HTTP {answer.status_code}"
        except requests.RequestException as error:
            last = type(error).__name__
        time.sleep(0.5)
    log = container_log(container)
    raise RehearsalError(f"{what}: {url} did not answer 200 within {timeout:.0f} s ({last}):\n{log}")
