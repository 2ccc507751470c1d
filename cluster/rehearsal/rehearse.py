"""`make rehearse`: the cluster path with real containers, on one machine, nothing faked.

    python -m cluster.rehearsal [--image-tag TAG] [--image-registry PREFIX] [--rows N] [--keep]

Stages, each started and stopped by this command, every server on loopback:
1. an S3 API server (moto) standing in for KFP's SeaweedFS, accepting only the Secrets' access key;
2. the MLflow server from the components image, as cluster/manifests/mlflow.yaml runs it;
3. the compiled training pipeline, every step in the components image (kfp.local's DockerRunner), with the
   Secrets its YAML gives each step, `tracking_uri` at that MLflow server, `deploy_target=none`, so the deploy
   step renders the SeldonDeployment it would apply;
4. what the Seldon operator would then do: the storage initializer's rclone copy of the manifest's `modelUri`
   as uid 8888 into a read-only directory, the serving image started with the operator's environment, its
   probes, an OIP smoke test against the model file's own predictions, a metrics scrape; and the same with a
   tampered model file, which must refuse to start;
5. what KServe's Standard mode would do with the InferenceService the deploy step renders for the same version
   (`serving_platform=kserve`): the serving image started from its `kserve-container`, args as rendered,
   `STORAGE_URI` rewritten to /mnt/models as the storage initializer's webhook does, the same files there
   read-only, owned by the initializer's user; its probes, the same smoke test and metrics scrape.
What only a cluster can show (the KFP backend and Argo, the operators' reconcile and webhooks, KServe's own storage
initializer, Services, Istio, PodMonitors, scheduling under the requests and limits) is out of reach here:
`tests/cluster` covers it.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cluster.rehearsal.common import (
    MANIFESTS,
    RehearsalError,
    Stage,
    docker_client,
    on_loopback,
    rehearsal_containers,
    remove_containers,
    require_image,
    secret_data,
)
from cluster.rehearsal.objectstore import BUCKET, CLUSTER_S3_URL, start_object_store

RCLONE_SECRET_MANIFEST = MANIFESTS / "seldon-rclone-secret.yaml"


@dataclass
class Rehearsal:
    """What a rehearsal ran and measured: the summary's lines, each step's resource use, the served answers."""

    stages: list[Stage] = field(default_factory=list)
    step_usage: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    def stage(self, name: str, action: Callable[[], str]) -> None:
        """Runs ``action`` (which returns what it proved) and records it; a failure names the stage."""
        start = time.monotonic()
        try:
            proved = action()
        except RehearsalError as error:
            raise RehearsalError(f"stage '{name}' failed: {error}") from error
        self.stages.append(Stage(name, time.monotonic() - start, proved))


def rehearse(
    image_tag: str,
    image_registry: str = "",
    rows: int | None = None,
    work_dir: Path | None = None,
    result: Rehearsal | None = None,
) -> Rehearsal:
    """Runs every stage; always removes its containers and stops its servers, whatever failed. ``result`` (if
    given) collects the stages as they finish, so a caller can still show what ran and was measured."""
    from components._common.registry import mlflow_uris_restored
    from components._image import image_references

    components_image, serving_image = image_references(image_registry, image_tag)

    client = docker_client()
    for image in (components_image, serving_image):
        require_image(client, image)
    work = Path(work_dir or tempfile.mkdtemp(prefix="kfp-mlops-rehearsal-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    credentials = secret_data(MANIFESTS / "mlflow.yaml", "mlflow-s3-credentials")
    result = result if result is not None else Rehearsal()
    result.facts.update(components_image=components_image, serving_image=serving_image, work=work)
    store = start_object_store(credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"])
    try:
        result.stages.append(
            Stage("object store", 0.0, f"S3 API at {store.endpoint_url}, bucket {BUCKET}, only the Secrets' key id")
        )
        images = (components_image, serving_image, image_tag, image_registry)
        # The stages reach the MLflow server through registry.connect, which sets MLflow's URIs for the process;
        # a caller (the container tier's tests) goes on after the rehearsal with its own.
        with mlflow_uris_restored():
            _run_stages(result, client, store, work, images, rows)
    finally:
        remove_containers(client)
        store.stop()
        if "model_dir" in result.facts:
            shutil.rmtree(result.facts["model_dir"].parent, ignore_errors=True)
    left = rehearsal_containers(client)
    if left:
        raise RehearsalError(f"containers left behind: {left}")
    result.stages.append(Stage("clean-up", 0.0, "every container it started is gone, the S3 server stopped"))
    return result


def _run_stages(result, client, store, work, images, rows) -> None:
    from cluster.rehearsal import kserve, mlflow_server, model_pod, pipeline, seldon

    components_image, serving_image, image_tag, image_registry = images
    server = None

    def start_mlflow() -> str:
        nonlocal server
        server = mlflow_server.start_mlflow(client, components_image, store, work / "mlflow-data")
        return (
            f"{components_image} runs `{' '.join(server.command[:2])} ...` with the manifest's arguments, env, "
            f"Secret and memory limit; /health answered after {server.start_seconds:.0f} s"
        )

    result.stage("MLflow server", start_mlflow)

    def run_pipeline() -> str:
        compiled = pipeline.compile_training_pipeline(work / "build", image_tag, image_registry)
        given = pipeline.with_secrets_as_env(compiled, work / "rehearsed.yaml", {CLUSTER_S3_URL: store.endpoint_url})
        arguments = {"tracking_uri": server.tracking_uri, "deploy_target": "none"}
        if rows:
            arguments["source_uri"] = f"sample://house-prices?rows={rows}&seed=7"
        try:
            with pipeline.UsageMonitor(client) as monitor:
                pipeline.run_in_containers(work / "rehearsed.yaml", work / "pipeline_root", arguments)
        finally:
            result.step_usage = monitor.by_step()  # what the steps that ran used, even when one failed
        if store.refused:
            raise RehearsalError(f"the object store refused requests without the Secrets' key: {store.refused[:3]}")
        stored = store.keys("mlflow/")
        if not any(key.endswith("/model.joblib") for key in stored):
            raise RehearsalError(f"no model.joblib in s3://{BUCKET}/mlflow/ after the run: {stored[:10]}")
        result.facts["secrets"] = given
        return (
            f"{len(result.step_usage)} steps ran in {components_image} (executor_main, no source mounted); the "
            f"steps given the S3 Secret ({', '.join(sorted(given))}) wrote {len(stored)} files to s3://{BUCKET}/mlflow"
        )

    result.stage("training pipeline", run_pipeline)

    manifest = None

    def read_manifest() -> str:
        nonlocal manifest
        from components.deploy_model.logic import check_cluster_sources
        from components.deploy_model.manifests import model_container

        manifest = yaml.safe_load(pipeline.find_output(work / "pipeline_root", "deploy-model", "manifest").read_text())
        model_uri = manifest["spec"]["predictors"][0]["graph"]["modelUri"]
        check_cluster_sources(server.tracking_uri, model_uri)  # what target kubernetes checks before applying
        image = model_container(manifest)["image"]
        if image != serving_image:
            raise RehearsalError(f"the SeldonDeployment runs {image}, not the serving image {serving_image}")
        result.facts["model_uri"] = model_uri
        return f"the deploy step's SeldonDeployment: modelUri {model_uri}, image {image}"

    result.stage("SeldonDeployment", read_manifest)

    # rclone runs as uid 8888, which must traverse every directory above the copy: a fresh one in the system's
    # temporary directory, whatever the work directory's parents allow.
    model_dir = Path(tempfile.mkdtemp(prefix="kfp-mlops-rehearsal-models-")) / "mnt-models"
    model_dir.parent.chmod(0o755)
    result.facts["model_dir"] = model_dir

    def copy_model() -> str:
        rclone_env = on_loopback(
            secret_data(RCLONE_SECRET_MANIFEST, "seldon-rclone-secret"), CLUSTER_S3_URL, store.endpoint_url
        )
        seldon.storage_copy(result.facts["model_uri"], rclone_env, model_dir)
        files = sorted(path.name for path in model_dir.iterdir())
        return f"rclone copy with the Secret's RCLONE_CONFIG_* only, as uid 8888, read-only: {', '.join(files)}"

    result.stage("storage initializer", copy_model)

    def serve() -> str:
        test_rows = _smoke_rows(work / "pipeline_root")
        serving = seldon.start_model_container(client, serving_image, manifest, model_dir)
        try:
            figures = seldon.prove_serving(serving, manifest, model_dir, test_rows)
        finally:
            serving.stop()
        result.facts["serving"] = figures
        return (
            f"{serving_image} as the operator starts it (its env, uid 8888, /mnt/models read-only): probes pass, "
            f"the smoke test and {len(test_rows)} OIP answers equal model.joblib's predictions, metrics scraped"
        )

    result.stage("model server", serve)

    def serve_kserve() -> str:
        inference_service = kserve.inference_service(manifest)
        pod = kserve.pod_container(inference_service)
        provisioned = kserve.provision(model_dir, model_dir.parent / "kserve-mnt-models")
        test_rows = _smoke_rows(work / "pipeline_root")
        serving = model_pod.start(client, serving_image, pod, provisioned)
        try:
            figures = model_pod.prove_serving(serving, provisioned, test_rows)
        finally:
            serving.stop()
        result.facts["inference_service"] = inference_service
        result.facts["kserve"] = figures
        return (
            f"{serving_image} as KServe's Standard mode starts it: {kserve.STORAGE_URI_ENV}="
            f"{pod.env[kserve.STORAGE_URI_ENV]}, --model_name={pod.model_name} (the rendered args, the copy read-only "
            f"as uid {kserve.INITIALIZER_UID} left it): probes pass, the smoke test and {len(test_rows)} OIP answers "
            f"equal model.joblib's predictions, metrics scraped at :{pod.ports[pod.metrics_port]}{pod.metrics_path}"
        )

    result.stage("KServe predictor", serve_kserve)

    def tampered() -> str:
        line = seldon.refuses_tampered_model(client, serving_image, manifest, model_dir, work / "tampered")
        return f"a tampered model.joblib stops the container: {line.strip()[:160]}"

    result.stage("tampered model", tampered)
    server.stop()


def _smoke_rows(pipeline_root: Path):
    """The deploy step's smoke rows: the first rows of the run's held-out test set (prove_serving sends only the
    model's features)."""
    from cluster.rehearsal.pipeline import find_output
    from components._common.datasets import read_dataset
    from components.deploy_model.logic import SMOKE_ROWS

    return read_dataset(str(find_output(pipeline_root, "prepare-data", "test"))).head(SMOKE_ROWS)


def print_summary(result: Rehearsal, out=print) -> None:
    out("\nrehearsal summary")
    for stage in result.stages:
        out(f"  {stage.name:<20} {stage.seconds:6.1f} s  {stage.proved}")
    if result.step_usage:
        out("\neach step in its container (cgroup): peak resident MB, peak with page cache MB, CPU s, wall s, cores")
        for step, usage in result.step_usage.items():
            out(
                f"  {step:<16} {usage.peak_rss_mb:8.0f} {usage.peak_usage_mb:8.0f} {usage.cpu_seconds:7.1f}"
                f" {usage.seconds:7.1f} {usage.cores:6.2f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-tag", required=True, help="tag both images were built with (make images)")
    parser.add_argument("--image-registry", default="", help="prefix both images were built with")
    parser.add_argument("--rows", type=int, help="rows of the sample data (default: the pipeline's default)")
    parser.add_argument("--work-dir", type=Path, help="keep the pipeline root, registry and model copy here")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 server's access log
    result = Rehearsal()
    try:
        rehearse(args.image_tag, args.image_registry, args.rows, args.work_dir, result)
    except RehearsalError as error:
        print_summary(result)
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    finally:
        if args.work_dir is None and "work" in result.facts:
            shutil.rmtree(result.facts["work"], ignore_errors=True)
    print_summary(result)
    return 0
