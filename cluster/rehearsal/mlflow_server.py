"""The MLflow server as cluster/manifests/mlflow.yaml runs it, started from the components image: the
Deployment's command and env, its Secret's values, its security contexts (the pod's user and groups) and memory
limit, its startup probe, and its volume as kind's storage provides it.

Two things differ, because a pod has its own network namespace and the rehearsal shares the host's: the server
binds loopback (not 0.0.0.0) and a free port (not 5000), and the Secret's in-cluster S3 address is the local
object store's. Everything else is read from the manifest, so a change there is rehearsed as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cluster.rehearsal.common import (
    MANIFESTS,
    RehearsalError,
    free_port,
    memory_bytes,
    on_loopback,
    run_container,
    secret_data,
    wait_http,
)
from cluster.rehearsal.objectstore import CLUSTER_S3_URL, ObjectStore

MANIFEST = MANIFESTS / "mlflow.yaml"


@dataclass
class MlflowServer:
    container: object
    tracking_uri: str
    start_seconds: float
    command: list[str]

    def stop(self) -> None:
        self.container.remove(force=True)


def deployment_pod(manifest: Path = MANIFEST) -> dict:
    """The MLflow Deployment's pod spec."""
    for document in yaml.safe_load_all(manifest.read_text()):
        if document and document["kind"] == "Deployment":
            return document["spec"]["template"]["spec"]
    raise RehearsalError(f"{manifest} has no Deployment")


def deployment_container(manifest: Path = MANIFEST) -> dict:
    """The MLflow Deployment's only container spec."""
    (container,) = deployment_pod(manifest)["containers"]
    return container


def security_options(image_user: str, pod: dict, container: dict) -> dict:
    """docker-py's options for the pod's and the container's security contexts, as the kubelet applies them (the
    container's settings win): runAsUser and runAsGroup as the user (else the image's USER, ``image_user``),
    fsGroup as a supplementary group, the capabilities dropped, no privilege escalation. Like the kubelet,
    refuses a user that runAsNonRoot forbids or cannot verify (root, or a name)."""
    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    uid, _, gid = (image_user or "0").partition(":")
    uid = str(context.get("runAsUser", uid))
    gid = str(context.get("runAsGroup", gid))
    if context.get("runAsNonRoot") and (not uid.isdigit() or int(uid) == 0):
        raise RehearsalError(f"{MANIFEST}: runAsNonRoot, but the server would run as user {uid!r}")
    options = {
        "user": f"{uid}:{gid}" if gid else uid,
        "cap_drop": context.get("capabilities", {}).get("drop", []),
        "security_opt": [] if context.get("allowPrivilegeEscalation", True) else ["no-new-privileges"],
    }
    if "fsGroup" in context:
        options["group_add"] = [str(context["fsGroup"])]
    return options


def _with_option(command: list[str], option: str, value: str) -> list[str]:
    if option not in command:
        raise RehearsalError(f"{MANIFEST}: the mlflow command has no {option} (the rehearsal sets it to {value})")
    index = command.index(option) + 1
    return [*command[:index], value, *command[index + 1 :]]


def container_environment(container: dict, store: ObjectStore, manifest: Path = MANIFEST) -> dict[str, str]:
    """``env`` plus every ``envFrom`` Secret, as the kubelet assembles them (env wins over envFrom)."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        secret = secret_data(manifest, source["secretRef"]["name"])
        environment.update(on_loopback(secret, CLUSTER_S3_URL, store.endpoint_url))
    environment.update({variable["name"]: str(variable["value"]) for variable in container.get("env", [])})
    return environment


def start_mlflow(client, image: str, store: ObjectStore, data_dir: Path) -> MlflowServer:
    pod = deployment_pod()
    (container,) = pod["containers"]
    port = free_port()
    command = _with_option(_with_option(list(container["command"]), "--host", "127.0.0.1"), "--port", str(port))
    security = security_options(client.images.get(image).attrs["Config"].get("User") or "", pod, container)
    (mount,) = container["volumeMounts"]
    # kind's local-path provisioner makes each claim's directory writable by everyone (mkdir -m 0777).
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o777)
    started = run_container(
        client,
        image,
        "mlflow",
        # A pod's `command` replaces the image's entrypoint, as docker's --entrypoint does.
        entrypoint=[command[0]],
        command=command[1:],
        environment=container_environment(container, store),
        volumes={str(data_dir): {"bind": mount["mountPath"], "mode": "rw"}},
        mem_limit=memory_bytes(container["resources"]["limits"]["memory"]),
        **security,
    )
    probe = container["startupProbe"]
    url = f"http://127.0.0.1:{port}{probe['httpGet']['path']}"
    try:
        seconds = wait_http(url, started, probe["periodSeconds"] * probe["failureThreshold"], "the MLflow server")
    except RehearsalError:
        started.remove(force=True)
        raise
    return MlflowServer(started, f"http://127.0.0.1:{port}", seconds, command)
