"""The SeldonDeployment the deploy step renders: Kubernetes names, the real CRD schema, the operator's admission
webhook rules, and the container contract, checked by starting the real server with the env the operator injects.

The operator facts come from Seldon Core 1.17.1 (serving-notes §A1-A6): `operator_env` (cluster.rehearsal.seldon, which
the rehearsal starts the serving image with) derives the env the operator sets on a custom graph container from the
manifest alone, as `seldondeployment_controller.go` does.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cluster.rehearsal.seldon import operator_env
from components._image import SERVING_IMAGE
from components.deploy_model.manifests import (
    MAX_NAME_LENGTH,
    PROTOCOLS,
    DeploymentError,
    build_seldon_deployment,
    deployment_name,
    model_container,
)
from serving import local_server

REPO_ROOT = Path(__file__).resolve().parents[3]
SELDON_CRD = REPO_ROOT.parent / "shared" / "reference" / "seldon" / "seldondeployment-crd.yaml"
# The webhook (checkPredictiveUnits) accepts these graph node types; the CRD schema has a free string.
SELDON_NODE_TYPES = {"MODEL", "ROUTER", "COMBINER", "TRANSFORMER", "OUTPUT_TRANSFORMER"}
EXECUTOR_PORTS = {8000, 5001}  # the executor container's, in the same pod
SHA = "ab" * 32
URI = "s3://models/houses/7/artifacts/model"
START_TIMEOUT = 90.0


@pytest.fixture
def manifest() -> dict:
    return build_seldon_deployment("House_Prices", "7", URI, SHA, namespace="ml", image=SERVING_IMAGE)


def predictor(manifest: dict) -> dict:
    (only,) = manifest["spec"]["predictors"]
    return only


# --- names -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("houses", "houses"),
        ("House_Prices", "house-prices"),
        ("house prices v2", "house-prices-v2"),
        ("--Price@@Model--", "price-model"),
        ("a.b/c", "a-b-c"),
    ],
)
def test_deployment_name_is_a_dns_1035_label(model_name, expected):
    assert deployment_name(model_name) == expected


def test_the_longest_name_leaves_room_for_the_predictor_service():
    longest = "a" * MAX_NAME_LENGTH

    assert deployment_name(longest) == longest
    assert len(f"{longest}-default") == 63  # Seldon's Service <name>-<predictor>, a DNS label


@pytest.mark.parametrize("model_name", ["a" * (MAX_NAME_LENGTH + 1), "houses_" + "x" * 60])
def test_a_name_too_long_for_the_service_is_refused_not_cut(model_name):
    with pytest.raises(DeploymentError, match=rf"characters; at most {MAX_NAME_LENGTH} fit the predictor Service"):
        deployment_name(model_name)


@pytest.mark.parametrize("model_name", ["2houses", "_9_prices", "007"])
def test_a_name_not_starting_with_a_letter_is_refused(model_name):
    with pytest.raises(DeploymentError, match=r"does not start with a letter: .* a Service name must \(DNS-1035\)"):
        deployment_name(model_name)


@pytest.mark.parametrize("model_name", ["", "___", "@@@"])
def test_model_name_without_valid_characters_is_named(model_name):
    with pytest.raises(DeploymentError, match=rf"model_name '{model_name}' gives no valid Kubernetes name"):
        deployment_name(model_name)


def test_an_invalid_name_is_refused_when_rendering():
    with pytest.raises(DeploymentError, match="does not start with a letter"):
        build_seldon_deployment("1st-model", "1", URI, SHA, image=SERVING_IMAGE)


# --- the SeldonDeployment ----------------------------------------------------------------------------------------


def test_manifest_identifies_the_deployment(manifest):
    assert manifest["apiVersion"] == "machinelearning.seldon.io/v1"
    assert manifest["kind"] == "SeldonDeployment"
    assert manifest["metadata"]["name"] == "house-prices"
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["metadata"]["annotations"] == {
        "kfp-mlops/registered-model": "House_Prices",
        "kfp-mlops/model-version": "7",
        "kfp-mlops/model-sha256": SHA,
        "kfp-mlops/model-uri": URI,
        "kfp-mlops/kfp-run-id": "",
    }
    assert manifest["metadata"]["labels"]["kfp-mlops/model-version"] == "7"


def test_manifest_speaks_the_open_inference_protocol(manifest):
    assert manifest["spec"]["protocol"] == "v2"
    assert "transport" not in manifest["spec"]  # REST; the executor serves gRPC as well


def test_graph_node_container_and_model_are_one_name(manifest):
    spec = predictor(manifest)
    (component,) = spec["componentSpecs"]
    (container,) = component["spec"]["containers"]

    assert spec["graph"]["name"] == container["name"] == manifest["metadata"]["name"] == "house-prices"
    assert spec["name"] == "default"


def test_graph_serves_the_model_uri_with_its_digest_and_version(manifest):
    graph = predictor(manifest)["graph"]

    assert graph["type"] in SELDON_NODE_TYPES
    assert "implementation" not in graph  # a custom container: the operator only injects env
    assert graph["modelUri"] == URI
    assert graph["envSecretRefName"] == "seldon-rclone-secret"
    assert graph["parameters"] == [
        {"name": "model_sha256", "type": "STRING", "value": SHA},
        {"name": "model_version", "type": "STRING", "value": "7"},
    ]


def test_container_declares_named_ports_clear_of_the_executor(manifest):
    container = model_container(manifest)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    assert set(ports) == {"http", "grpc", "metrics"}
    assert len(set(ports.values())) == 3
    assert not set(ports.values()) & EXECUTOR_PORTS


def test_container_probes_ask_the_model_server(manifest):
    container = model_container(manifest)

    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/models/house-prices/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    # Liveness must leave time for the digest check and unpickling before it can kill the pod.
    liveness = container["livenessProbe"]
    assert liveness["initialDelaySeconds"] + liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_container_has_no_seldon_wrapper_settings(manifest):
    container = model_container(manifest)

    names = {variable["name"] for variable in container.get("env", [])}
    assert not {name for name in names if name.startswith(("GUNICORN_", "INCLUDE_METRICS", "GRPC_WORKERS"))}
    assert "command" not in container and "args" not in container  # the image's ENTRYPOINT: python -m serving


def test_container_runs_the_pinned_serving_image(manifest):
    container = model_container(manifest)

    assert container["image"] == SERVING_IMAGE
    assert not container["image"].endswith(":latest")
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_custom_image_is_used():
    built = build_seldon_deployment("houses", "1", URI, SHA, image="registry.example/serving:1.2.3")

    assert model_container(built)["image"] == "registry.example/serving:1.2.3"


def test_a_manifest_without_the_node_container_is_named(manifest):
    broken = copy.deepcopy(manifest)
    predictor(broken)["componentSpecs"][0]["spec"]["containers"][0]["name"] = "model"

    with pytest.raises(DeploymentError, match="house-prices has no container named 'house-prices'"):
        model_container(broken)


# --- the CRD schema and the admission webhook ------------------------------------------------------------------


def load_crd_validator(path: Path):
    """A validator for the v1 schema of the SeldonDeployment CRD at ``path``. Without the file the CRD tests fail
    in CI (CI set, as CI services do) and are skipped elsewhere, saying why, as the promtool tests are."""
    if not path.is_file():
        message = f"SeldonDeployment CRD not found at {path} (the shared reference files are not checked out)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import jsonschema
    import yaml

    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    # OpenAPI v3 keywords such as x-kubernetes-* are unknown to Draft 7 and ignored.
    return jsonschema.Draft7Validator(v1["schema"]["openAPIV3Schema"])


@pytest.fixture(scope="module")
def crd_validator():
    return load_crd_validator(SELDON_CRD)


def test_a_missing_crd_fails_in_ci_and_is_skipped_elsewhere(tmp_path, monkeypatch):
    missing = tmp_path / "seldondeployment-crd.yaml"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="SeldonDeployment CRD not found at"):
        load_crd_validator(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="SeldonDeployment CRD not found at"):
        load_crd_validator(missing)


def test_manifest_matches_the_seldon_crd_schema(crd_validator, manifest):
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in crd_validator.iter_errors(manifest)]

    assert errors == []


def test_crd_schema_check_catches_a_broken_manifest(crd_validator, manifest):
    broken = copy.deepcopy(manifest)
    predictor(broken)["replicas"] = "one"
    del predictor(broken)["graph"]["name"]
    predictor(broken)["componentSpecs"][0]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"

    messages = {error.message for error in crd_validator.iter_errors(broken)}

    assert "'one' is not of type 'integer'" in messages
    assert "'name' is a required property" in messages
    assert "'http' is not of type 'integer'" in messages


def webhook_errors(manifest: dict) -> list[str]:
    """The checks of Seldon Core 1.17.1's validating webhook (`ValidateSeldonDeployment`,
    `seldondeployment_webhook.go`) that apply to a graph of custom containers."""
    spec = manifest["spec"]
    errors = []
    if spec.get("protocol", "") not in ("", *PROTOCOLS):
        errors.append(f"Invalid protocol {spec['protocol']!r}")
    if spec.get("transport", "") not in ("", "rest", "grpc"):
        errors.append(f"Invalid transport {spec['transport']!r}")
    if not spec.get("predictors"):
        errors.append("Graph contains no predictors")
    names = [p["name"] for p in spec.get("predictors", [])]
    if len(names) != len(set(names)):
        errors.append("Duplicate predictor name")
    for p in spec.get("predictors", []):
        containers = {c["name"] for component in p.get("componentSpecs", []) for c in component["spec"]["containers"]}
        nodes = [p["graph"]]
        while nodes:
            node = nodes.pop()
            if node.get("implementation") in (None, "UNKNOWN_IMPLEMENTATION") and node["name"] not in containers:
                errors.append(f"{node['name']}: Can't find container for Predictive Unit")
            if node.get("type") not in SELDON_NODE_TYPES:
                errors.append(f"{node['name']}: unknown type {node.get('type')!r}")
            nodes.extend(node.get("children", []))
        if "seldon.io/no-engine" in p.get("annotations", {}) and p["graph"].get("children"):
            errors.append("Running without engine only valid for single element graphs")
    traffic = sum(p.get("traffic", 0) for p in spec.get("predictors", []) if not p.get("shadow"))
    if len(spec.get("predictors", [])) == 1 and 0 < traffic < 100:
        errors.append("Traffic must sum be 100 for a single predictor when set")
    return errors


def test_manifest_passes_the_admission_webhook(manifest):
    assert webhook_errors(manifest) == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda m: m["spec"].update(protocol="oip"), "Invalid protocol 'oip'"),
        (lambda m: predictor(m)["graph"].update(name="model"), "model: Can't find container for Predictive Unit"),
        (lambda m: predictor(m)["graph"].update(type="PREDICTOR"), "unknown type 'PREDICTOR'"),
        (lambda m: predictor(m).update(traffic=50), "Traffic must sum be 100"),
    ],
    ids=["protocol", "container-name", "node-type", "traffic"],
)
def test_webhook_rules_catch_what_the_operator_refuses(manifest, breakage, expected):
    broken = copy.deepcopy(manifest)
    breakage(broken)

    assert any(expected in error for error in webhook_errors(broken)), webhook_errors(broken)


# --- the container contract: the env the operator injects, given to the real entry point -----------------------


def test_operator_env_of_the_manifest(manifest):
    env = operator_env(manifest)

    assert env["PREDICTIVE_UNIT_ID"] == "house-prices"
    assert (env["PREDICTIVE_UNIT_HTTP_SERVICE_PORT"], env["PREDICTIVE_UNIT_GRPC_SERVICE_PORT"]) == ("8080", "8081")
    assert (env["PREDICTIVE_UNIT_METRICS_SERVICE_PORT"], env["PREDICTIVE_UNIT_METRICS_ENDPOINT"]) == (
        "8082",
        "/prometheus",
    )
    assert env["MLSERVER_MODEL_URI"] == "/mnt/models"
    assert json.loads(env["PREDICTIVE_UNIT_PARAMETERS"]) == [
        {"name": "model_sha256", "value": SHA, "type": "STRING"},
        {"name": "model_version", "value": "7", "type": "STRING"},
    ]


def _free_port_manifest(manifest: dict, free_ports) -> dict:
    """``manifest`` with its declared port numbers moved to free ones (the operator keeps whatever numbers the
    named ports declare, so the env follows)."""
    moved = copy.deepcopy(manifest)
    for port, number in zip(model_container(moved)["ports"], free_ports(3), strict=True):
        port["containerPort"] = number
    return moved


@pytest.fixture
def served_as_seldon_would(regression_bundle, free_ports, tmp_path):
    """`python -m serving` started with exactly the env the operator derives from the rendered manifest, the
    bundle copied to a directory standing in for /mnt/models."""
    if not (REPO_ROOT / "serving" / "__main__.py").is_file():
        pytest.fail("serving/__main__.py is missing: the image's entry point is `python -m serving`")
    bundle, _ = regression_bundle
    models = tmp_path / "mnt-models"
    shutil.copytree(bundle.directory, models)
    manifest = _free_port_manifest(
        build_seldon_deployment("Houses", "3", URI, bundle.card.sha256, image=SERVING_IMAGE), free_ports
    )
    env = operator_env(manifest)
    env["MLSERVER_MODEL_URI"] = str(models)  # the test's /mnt/models
    # Nothing else from this process's environment: only what a container image would have besides.
    env.update({"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    log = tmp_path / "server.log"
    process = local_server.spawn([sys.executable, "-m", "serving"], log, env)
    try:
        yield manifest, env, process, log
    finally:
        local_server.stop_group(process.pid, timeout=15)
        process.wait(timeout=5)


@pytest.mark.serving
def test_the_entry_point_serves_the_container_contract(served_as_seldon_would, regression_bundle):
    manifest, env, process, log = served_as_seldon_would
    bundle, test_rows = regression_bundle
    container = model_container(manifest)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    http = f"http://127.0.0.1:{ports['http']}"

    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["port"] == "http"
    local_server.wait_healthy(f"{http}{readiness['path']}", process, log, START_TIMEOUT, "`python -m serving`")
    assert requests.get(f"{http}{container['livenessProbe']['httpGet']['path']}", timeout=10).status_code == 200

    name = env["PREDICTIVE_UNIT_ID"]
    metadata = requests.get(f"{http}/v2/models/{name}", timeout=10).json()
    assert metadata["name"] == name == "houses"
    assert metadata["parameters"]["sha256"] == bundle.card.sha256
    assert metadata["parameters"]["model_version"] == "3"

    # What the executor sends: the client's body and Content-Type, to /v2/models/<node name>/infer.
    rows = test_rows[bundle.feature_names].head(2)
    answer = requests.post(f"{http}/v2/models/{name}/infer", json=oip_table(rows), timeout=30)
    assert answer.status_code == 200, answer.text

    # Prometheus scrapes the port named `metrics` at the operator's path.
    scraped = requests.get(f"http://127.0.0.1:{ports['metrics']}{env['PREDICTIVE_UNIT_METRICS_ENDPOINT']}", timeout=10)
    assert scraped.status_code == 200
    requests_total = [
        sample
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == "model_requests_total"
    ]
    assert {(s.labels["model_name"], s.labels["outcome"], s.value) for s in requests_total} >= {(name, "ok", 1.0)}


def oip_table(rows) -> dict:
    """An OIP request of ``rows`` as a pd table: one input per column, missing values as null."""
    datatypes = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}
    inputs = []
    for column in rows.columns:
        values = rows[column].astype(object).where(rows[column].notna(), None).tolist()
        values = [value.item() if hasattr(value, "item") else value for value in values]
        datatype = datatypes.get(rows[column].dtype.kind, "BYTES")
        inputs.append({"name": str(column), "shape": [len(rows)], "datatype": datatype, "data": values})
    return {"parameters": {"content_type": "pd"}, "inputs": inputs}
