"""The training pipeline's compiled YAML, run step by step inside the components image.

What a cluster would run, and how: the YAML `compile.py` writes (the file users upload, with the images' tag), each
step in its own container of the components image, as the image's (non-root) user, through the executor entry point
in the YAML (`python3 -m kfp.dsl.executor_main`), with nothing mounted but the pipeline root (no source tree), on
the host network. The kfp-kubernetes `secretAsEnv` settings of the YAML's platform spec are what KFP's driver turns
into the pod's environment; kfp.local ignores platform specs, so the rehearsal writes each task's Secret values into
that task's container env, and only that task's: a step that lacks a Secret on the cluster lacks it here too.

While the steps run, each step container's memory and CPU are read from its cgroup: the figures the pipeline's
requests and limits are derived from.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.rehearsal.common import (
    LABEL,
    MANIFESTS,
    REPO_ROOT,
    RUN_ID,
    RUN_LABEL,
    RehearsalError,
    on_loopback,
    secret_data,
)

# Where the pipeline's Secrets are defined for the cluster (cluster/manifests), by Secret name.
SECRET_MANIFESTS = {"mlflow-s3-credentials": MANIFESTS / "mlflow.yaml"}
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def compile_training_pipeline(output_dir: Path, image_tag: str, image_registry: str = "") -> Path:
    """The training pipeline's YAML as a user makes it: `python compile.py` with the images' tag."""
    command = [sys.executable, "compile.py", "--output-dir", str(output_dir), "--image-tag", image_tag]
    command += ["--image-registry", image_registry]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RehearsalError(f"compile.py failed:\n{completed.stderr[-2000:]}")
    return output_dir / "training_pipeline.yaml"


def with_secrets_as_env(compiled: Path, output: Path, replace: Mapping[str, str]) -> dict[str, list[str]]:
    """Writes ``compiled`` to ``output`` with every task's `secretAsEnv` Secrets put into that task's container
    env (their in-cluster addresses replaced per ``replace``: cluster URL -> local URL). Returns, per executor,
    the variables it received. A Secret the manifests do not define fails, unless the task marks it optional
    (as the kubelet would start the pod without it)."""
    documents = list(yaml.safe_load_all(compiled.read_text()))
    pipeline_spec, platform_spec = documents[0], (documents[1] if len(documents) > 1 else {})
    executors = platform_spec.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    given: dict[str, list[str]] = {}
    for label, settings in executors.items():
        for secret in settings.get("secretAsEnv", []):
            name = secret["secretName"]
            if name not in SECRET_MANIFESTS:
                if secret.get("optional"):
                    continue
                raise RehearsalError(f"{compiled}: executor {label} needs Secret {name!r}, which no manifest defines")
            values = secret_data(SECRET_MANIFESTS[name], name)
            for cluster_url, local_url in replace.items():
                values = on_loopback(values, cluster_url, local_url)
            container = pipeline_spec["deploymentSpec"]["executors"][label]["container"]
            env = container.setdefault("env", [])
            for pair in secret["keyToEnv"]:
                if pair["secretKey"] not in values:
                    raise RehearsalError(f"Secret {name} has no key {pair['secretKey']} (executor {label} needs it)")
                env.append({"name": pair["envVar"], "value": values[pair["secretKey"]]})
                given.setdefault(label, []).append(pair["envVar"])
    output.write_text(yaml.safe_dump_all([pipeline_spec, platform_spec] if len(documents) > 1 else [pipeline_spec]))
    return given


@dataclass
class StepUsage:
    """One step container's resource use, read from its cgroup while it ran."""

    step: str
    seconds: float = 0.0
    peak_rss_mb: float = 0.0  # resident memory: what a memory limit must hold
    peak_usage_mb: float = 0.0  # rss plus page cache (the cgroup's own peak), reclaimable in part
    cpu_seconds: float = 0.0

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds if self.seconds else 0.0


@dataclass
class UsageMonitor:
    """Polls the running step containers (labelled by the rehearsal) and keeps each one's peak figures."""

    client: object
    interval: float = 0.2
    usage: dict[str, StepUsage] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> UsageMonitor:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        seen: dict[str, tuple[str, float]] = {}
        while not self._stop.is_set():
            running = self.client.api.containers(filters={"label": [f"{LABEL}=step", f"{RUN_LABEL}={RUN_ID}"]})
            for entry in running:
                container_id = entry["Id"]
                if container_id not in seen:
                    seen[container_id] = (_step_name(entry["Command"].split()), time.monotonic())
                name, started = seen[container_id]
                figures = _cgroup_figures(container_id)
                if figures is None:
                    continue
                key = f"{name}#{container_id[:12]}"
                record = self.usage.setdefault(key, StepUsage(name))
                rss, usage, cpu = figures
                record.peak_rss_mb = max(record.peak_rss_mb, rss / 1e6)
                record.peak_usage_mb = max(record.peak_usage_mb, usage / 1e6)
                record.cpu_seconds = max(record.cpu_seconds, cpu / 1e9)
                record.seconds = time.monotonic() - started
            self._stop.wait(self.interval)

    def by_step(self) -> dict[str, StepUsage]:
        """The largest figures of each step over its containers (train_model runs once per candidate)."""
        steps: dict[str, StepUsage] = {}
        for record in self.usage.values():
            best = steps.setdefault(record.step, StepUsage(record.step))
            best.peak_rss_mb = max(best.peak_rss_mb, record.peak_rss_mb)
            best.peak_usage_mb = max(best.peak_usage_mb, record.peak_usage_mb)
            if record.cpu_seconds > best.cpu_seconds:
                best.cpu_seconds, best.seconds = record.cpu_seconds, record.seconds
        return steps


def _step_name(args: list[str]) -> str:
    """The component function a KFP container runs (`--function_to_execute NAME` in its arguments)."""
    for flag, value in itertools.pairwise(args):
        if flag == "--function_to_execute":
            return value
    return "unknown"


def _cgroup_figures(container_id: str) -> tuple[int, int, int] | None:
    """(rss bytes, peak usage bytes, cpu nanoseconds) of a container from cgroup v1 or v2; None when gone."""
    try:
        v1 = _CGROUP_ROOT / "memory" / "docker" / container_id
        if v1.is_dir():
            stat = dict(line.split() for line in (v1 / "memory.stat").read_text().splitlines())
            peak = int((v1 / "memory.max_usage_in_bytes").read_text())
            cpu = int((_CGROUP_ROOT / "cpuacct" / "docker" / container_id / "cpuacct.usage").read_text())
            return int(stat["total_rss"]), peak, cpu
        v2 = _CGROUP_ROOT / "system.slice" / f"docker-{container_id}.scope"
        if v2.is_dir():
            stat = dict(line.split() for line in (v2 / "memory.stat").read_text().splitlines())
            peak_file = v2 / "memory.peak"
            peak = int(peak_file.read_text()) if peak_file.exists() else int((v2 / "memory.current").read_text())
            cpu = dict(line.split() for line in (v2 / "cpu.stat").read_text().splitlines())
            return int(stat["anon"]), peak, int(cpu["usage_usec"]) * 1000
    except (FileNotFoundError, ProcessLookupError, OSError):
        return None  # the step ended between the listing and the read
    return None


def run_in_containers(pipeline_yaml: Path, pipeline_root: Path, arguments: dict) -> None:
    """Runs the pipeline YAML under kfp.local's DockerRunner (host network, step containers labelled for the
    monitor and the clean-up). Raises RehearsalError naming the failed step. kfp.local's fixes and configuration,
    the warning filters and print are put back as they were when it returns (run_local owns them)."""
    from kfp import components, local

    from run_local import kfp_local_fixes, process_state_restored

    # kfp.local mounts the pipeline root into every step's container, where the step writes its outputs as the
    # image's user, as on a cluster; that user owns nothing on this machine, so the root is writable by everyone,
    # as the emptyDirs KFP mounts for the launcher's files are.
    pipeline_root.mkdir(parents=True, exist_ok=True)
    pipeline_root.chmod(0o777)
    with process_state_restored(), kfp_local_fixes():
        # The YAML's resources and timeouts are the cluster's to apply; kfp.local warns, step by step, that it cannot.
        warnings.filterwarnings(
            "ignore", message=".*have no effect in the current local runner.*", category=UserWarning
        )
        local.init(
            runner=local.DockerRunner(network_mode="host", labels={LABEL: "step", RUN_LABEL: RUN_ID}),
            pipeline_root=str(pipeline_root),
            raise_on_error=True,
        )
        pipeline = components.load_component_from_file(str(pipeline_yaml))
        try:
            pipeline(**arguments)
        except RuntimeError as error:
            raise RehearsalError(f"the training pipeline failed in its containers: {error}") from error


def find_output(pipeline_root: Path, task: str, name: str) -> Path:
    """The newest output artifact ``name`` of ``task`` under the pipeline root."""
    found = sorted(pipeline_root.glob(f"**/{task}/{name}"), key=lambda path: path.stat().st_mtime)
    if not found:
        raise RehearsalError(f"no output {name!r} of task {task} under {pipeline_root}: did the step run?")
    return found[-1]
