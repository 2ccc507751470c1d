"""The SeldonDeployment and the InferenceService the deploy step renders: Kubernetes names and the limits each control
plane puts on them, the real CRD schemas, Seldon's admission webhook rules, one container for both kinds, and each
container contract, checked by starting the real server as each control plane starts it.

The operator facts come from Seldon Core 1.17.1 (serving-notes §A1-A6): `operator_env` (cluster.rehearsal.seldon, which
the rehearsal starts the serving image with) derives the env the operator sets on a custom graph container from the
manifest alone, as `seldondeployment_controller.go` does. The KServe facts from v0.20.0's source (serving-notes §C'):
the controller passes `kserve-container` through unchanged, and its pod webhook rewrites `STORAGE_URI` to
/mnt/models once the storage initializer has copied the files there.
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
from components.deploy_model import platforms
from components.deploy_model.manifests import (
    KSERVE_SERVICE_ACCOUNT,
    MAX_NAME_LENGTHS,
    METRICS_PATH,
    PROTOCOLS,
    SERVING_PLATFORMS,
    DeploymentError,
    build_inference_service,
    build_manifest,
    build_seldon_deployment,
    deployment_name,
    model_container,
    served_model_name,
)
from serving import local_server
from serving.settings import resolve

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = REPO_ROOT.parent / "shared" / "reference"
SELDON_CRD = REFERENCE / "seldon" / "seldondeployment-crd.yaml"
KSERVE_CRD = REFERENCE / "kserve" / "inferenceservice-crd.yaml"
# The webhook (checkPredictiveUnits) accepts these graph node types; the CRD schema has a free string.
SELDON_NODE_TYPES = {"MODEL", "ROUTER", "COMBINER", "TRANSFORMER", "OUTPUT_TRANSFORMER"}
EXECUTOR_PORTS = {8000, 5001}  # the executor container's, in the same pod
SHA = "ab" * 32
URI = "s3://models/houses/7/artifacts/model"
START_TIMEOUT = 90.0


@pytest.fixture
def manifest() -> dict:
    return build_seldon_deployment("House_Prices", "7", URI, SHA, namespace="ml", image=SERVING_IMAGE)


@pytest.fixture
def inference_service() -> dict:
    return build_inference_service("House_Prices", "7", URI, SHA, namespace="ml", image=SERVING_IMAGE)


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
@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_deployment_name_is_a_dns_1035_label(model_name, expected, platform):
    assert deployment_name(model_name, platform) == expected


# What each control plane names after the object (a DNS label or a label value: 63 characters at most): Seldon's
# predictor Service; KServe's predictor Deployment and Service, and the `app` label on them and their pods.
DERIVED_NAMES = {"seldon": ["{}-default"], "kserve": ["{}-predictor", "isvc.{}-predictor"]}


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_the_longest_name_leaves_room_for_every_name_the_control_plane_derives(platform):
    longest = "a" * MAX_NAME_LENGTHS[platform]

    assert deployment_name(longest, platform) == longest
    derived = [len(pattern.format(longest)) for pattern in DERIVED_NAMES[platform]]
    assert max(derived) == 63


@pytest.mark.parametrize(
    ("platform", "derived"),
    [
        ("seldon", r"the predictor Service name a{8}\.\.\.-default \(63 characters\) with serving_platform=seldon"),
        (
            "kserve",
            r"the predictor Service name a{8}\.\.\.-predictor and the label value isvc\.a{8}\.\.\.-predictor "
            r"\(63 characters\) with serving_platform=kserve",
        ),
    ],
)
def test_a_name_too_long_for_the_names_derived_from_it_is_refused_not_cut(platform, derived):
    too_long = "a" * (MAX_NAME_LENGTHS[platform] + 1)

    with pytest.raises(DeploymentError, match=rf"characters; at most {MAX_NAME_LENGTHS[platform]} fit {derived}"):
        deployment_name(too_long, platform)
    with pytest.raises(DeploymentError, match=f"at most {MAX_NAME_LENGTHS[platform]} fit"):
        build_manifest(platform, too_long, "1", URI, SHA, image=SERVING_IMAGE)


def test_a_name_seldon_accepts_can_be_too_long_for_kserve():
    name = "a" * MAX_NAME_LENGTHS["seldon"]

    assert deployment_name(name) == deployment_name(name, "seldon") == name  # Seldon: the default
    with pytest.raises(DeploymentError, match=r"label value isvc\."):
        deployment_name(name, "kserve")


@pytest.mark.parametrize("model_name", ["2houses", "_9_prices", "007"])
@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_a_name_not_starting_with_a_letter_is_refused(model_name, platform):
    with pytest.raises(DeploymentError, match=r"does not start with a letter: .* a Service name must \(DNS-1035\)"):
        deployment_name(model_name, platform)


@pytest.mark.parametrize("model_name", ["", "___", "@@@"])
def test_model_name_without_valid_characters_is_named(model_name):
    with pytest.raises(DeploymentError, match=rf"model_name '{model_name}' gives no valid Kubernetes name"):
        deployment_name(model_name)


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_an_invalid_name_is_refused_when_rendering(platform):
    with pytest.raises(DeploymentError, match="does not start with a letter"):
        build_manifest(platform, "1st-model", "1", URI, SHA, image=SERVING_IMAGE)


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
@pytest.mark.parametrize("namespace", ["models", "team-a2", "a" * 63])
def test_a_kubernetes_namespace_name_is_rendered_as_given(platform, namespace):
    assert (
        build_manifest(platform, "houses", "1", URI, SHA, namespace, image=SERVING_IMAGE)["metadata"]["namespace"]
        == namespace
    )


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
@pytest.mark.parametrize("namespace", ["", "Models", "my_models", "-models", "models-", "models.prod", "a" * 64])
def test_a_namespace_kubernetes_would_refuse_is_refused_naming_the_parameter(platform, namespace):
    # Rendered as given, it made a manifest no cluster accepts; sent, a request the API server refused.
    with pytest.raises(DeploymentError, match=rf"^parameter namespace '{namespace}' is not a Kubernetes namespace"):
        build_manifest(platform, "houses", "1", URI, SHA, namespace, image=SERVING_IMAGE)


# --- one entry point, two kinds ----------------------------------------------------------------------------------


def test_build_manifest_renders_the_chosen_platforms_resource():
    arguments = ("House_Prices", "7", URI, SHA, "ml")
    options = {"image": SERVING_IMAGE, "pipeline_job_id": "run-9"}

    assert build_manifest("seldon", *arguments, **options) == build_seldon_deployment(*arguments, **options)
    assert build_manifest("kserve", *arguments, **options) == build_inference_service(*arguments, **options)


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_the_rollout_recognises_each_rendered_resource_as_its_platforms(platform):
    rendered = build_manifest(platform, "houses", "1", URI, SHA, image=SERVING_IMAGE)

    assert platforms.for_manifest(rendered).name == platform


@pytest.mark.parametrize("platform", ["knative", "", "Seldon", "kfserving"])
def test_an_unknown_platform_is_refused_naming_the_parameter(platform):
    expected = rf"parameter serving_platform must be one of \('seldon', 'kserve'\), got '{platform}'"
    with pytest.raises(DeploymentError, match=expected):
        build_manifest(platform, "houses", "1", URI, SHA, image=SERVING_IMAGE)
    with pytest.raises(DeploymentError, match=expected):
        deployment_name("houses", platform)


def test_both_kinds_run_the_same_container_but_for_how_it_learns_its_model(manifest, inference_service):
    seldon, kserve = model_container(manifest), model_container(inference_service)

    shared = ("image", "imagePullPolicy", "ports", "readinessProbe", "livenessProbe", "resources")
    assert {key: seldon[key] for key in shared} == {key: kserve[key] for key in shared}
    assert set(kserve) - set(seldon) == {"args", "env"}  # Seldon's operator injects env instead
    assert served_model_name(manifest) == served_model_name(inference_service) == "house-prices"


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_the_readiness_probe_asks_for_the_model_the_server_answers_as(platform):
    rendered = build_manifest(platform, "Price Model", "1", URI, SHA, image=SERVING_IMAGE)

    path = model_container(rendered)["readinessProbe"]["httpGet"]["path"]
    assert path == f"/v2/models/{served_model_name(rendered)}/ready" == "/v2/models/price-model/ready"


def test_an_unknown_kind_is_named():
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "houses"}, "spec": {}}

    with pytest.raises(DeploymentError, match="manifest houses: kind 'Deployment' is neither SeldonDeployment nor"):
        model_container(other)


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


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_the_model_server_runs_as_no_root_with_no_capabilities(platform):
    # What Pod Security's `restricted` level asks of a container: Seldon's operator gives the pod only a runAsUser,
    # KServe nothing.
    manifest = build_manifest(platform, "houses", "1", URI, SHA, image=SERVING_IMAGE)
    context = model_container(manifest)["securityContext"]

    assert context["runAsNonRoot"] is True
    assert context.get("runAsUser") != 0
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not context.get("privileged")


def test_custom_image_is_used():
    built = build_seldon_deployment("houses", "1", URI, SHA, image="registry.example/serving:1.2.3")

    assert model_container(built)["image"] == "registry.example/serving:1.2.3"


def test_a_manifest_without_the_node_container_is_named(manifest):
    broken = copy.deepcopy(manifest)
    predictor(broken)["componentSpecs"][0]["spec"]["containers"][0]["name"] = "model"

    with pytest.raises(DeploymentError, match="house-prices has no container named 'house-prices'"):
        model_container(broken)


# --- the InferenceService --------------------------------------------------------------------------------------


def test_inference_service_identifies_the_version_as_the_seldon_deployment_does(inference_service, manifest):
    metadata = inference_service["metadata"]

    assert (inference_service["apiVersion"], inference_service["kind"]) == (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    )
    assert (metadata["name"], metadata["namespace"]) == ("house-prices", "ml")
    assert metadata["labels"] == manifest["metadata"]["labels"]
    assert metadata["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "none",
        **manifest["metadata"]["annotations"],
    }


def test_inference_service_runs_in_standard_mode_with_one_fixed_replica(inference_service):
    # Per object: both of KServe's installers default to Knative mode, which needs Knative and Istio.
    assert inference_service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = inference_service["spec"]["predictor"]
    # autoscalerClass none: the Deployment gets minReplicas and no HorizontalPodAutoscaler is made.
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 1)
    assert inference_service["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none"


def test_the_predictor_is_the_custom_container_kserve_serves(inference_service):
    predictor = inference_service["spec"]["predictor"]
    (container,) = predictor["containers"]

    # The controller serves the container of this name (and puts it first in the pod), nothing else.
    assert container["name"] == "kserve-container"
    assert model_container(inference_service) is container
    assert container["image"] == SERVING_IMAGE and container["imagePullPolicy"] == "IfNotPresent"
    assert "command" not in container  # the image's ENTRYPOINT, python -m serving, gets the args
    # Its storage initializer's credentials: the Secret this ServiceAccount lists (cluster/manifests).
    assert predictor["serviceAccountName"] == KSERVE_SERVICE_ACCOUNT == "kserve-model-storage"


def test_storage_uri_is_the_registered_versions_files(inference_service):
    assert model_container(inference_service)["env"] == [{"name": "STORAGE_URI", "value": URI}]


def test_args_carry_the_model_name_digest_version_and_declared_ports(inference_service):
    container = model_container(inference_service)

    assert container["args"] == [
        "--model_name=house-prices",
        f"--model_sha256={SHA}",
        "--model_version=7",
        "--http_port=8080",
        "--grpc_port=8081",
        "--metrics_port=8082",
    ]
    # As the server reads them in the pod: STORAGE_URI rewritten to the initializer's copy.
    settings = resolve(container["args"], {"STORAGE_URI": "/mnt/models"})
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert (settings.model_name, settings.model_dir) == ("house-prices", "/mnt/models")
    assert (settings.model_sha256, settings.model_version) == (SHA, "7")
    assert (settings.http_port, settings.grpc_port, settings.metrics_port) == (
        ports["http"],
        ports["grpc"],
        ports["metrics"],
    )


def test_the_services_port_80_leads_to_the_http_port(inference_service):
    # KServe's Service sends port 80 to the container's FIRST port, whatever its name; the others keep their numbers.
    first, *others = model_container(inference_service)["ports"]

    assert first == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    assert {port["name"] for port in others} == {"grpc", "metrics"}


def test_a_manifest_without_kserve_container_is_named(inference_service):
    broken = copy.deepcopy(inference_service)
    broken["spec"]["predictor"]["containers"][0]["name"] = "model"

    with pytest.raises(
        DeploymentError, match="InferenceService house-prices has no container named 'kserve-container'"
    ):
        model_container(broken)


def test_a_container_without_model_name_is_named(inference_service):
    broken = copy.deepcopy(inference_service)
    model_container(broken)["args"] = [f"--model_sha256={SHA}"]

    with pytest.raises(DeploymentError, match="container kserve-container passes no --model_name argument"):
        served_model_name(broken)


# --- the CRD schemas and Seldon's admission webhook --------------------------------------------------------------

CRDS = {"SeldonDeployment": (SELDON_CRD, "v1"), "InferenceService": (KSERVE_CRD, "v1beta1")}


def load_crd_validator(kind: str, path: Path | None = None):
    """A validator for the schema of ``kind``'s CRD (the version the builder writes), read from ``path`` (default:
    the shared reference file). Fields the schema does not declare are errors, as with the API server's strict
    field validation (a misspelt field would otherwise be dropped silently). Without the file the CRD tests fail
    in CI (CI set, as CI services do) and are skipped elsewhere, saying why, as the promtool tests are."""
    default, version = CRDS[kind]
    path = path or default
    if not path.is_file():
        message = f"{kind} CRD not found at {path} (the shared reference files are not checked out)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import jsonschema
    import yaml

    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (served,) = [entry for entry in crd["spec"]["versions"] if entry["name"] == version]
    # OpenAPI v3 keywords such as x-kubernetes-* are unknown to Draft 7 and ignored.
    return jsonschema.Draft7Validator(_strict(served["schema"]["openAPIV3Schema"]))


def _strict(schema):
    """``schema`` with unknown fields refused wherever Kubernetes would prune them (declared properties, no
    additionalProperties, no x-kubernetes-preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@pytest.fixture(scope="module")
def crd_validator():
    return load_crd_validator("SeldonDeployment")


@pytest.fixture(scope="module")
def kserve_crd_validator():
    return load_crd_validator("InferenceService")


@pytest.mark.parametrize("kind", CRDS)
def test_a_missing_crd_fails_in_ci_and_is_skipped_elsewhere(tmp_path, monkeypatch, kind):
    missing = tmp_path / "crd.yaml"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{kind} CRD not found at {missing}"):
        load_crd_validator(kind, missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=f"{kind} CRD not found at {missing}"):
        load_crd_validator(kind, missing)


def _errors(validator, manifest: dict) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(manifest)]


def test_manifest_matches_the_seldon_crd_schema(crd_validator, manifest):
    assert _errors(crd_validator, manifest) == []


def test_inference_service_matches_the_kserve_crd_schema(kserve_crd_validator, inference_service):
    assert _errors(kserve_crd_validator, inference_service) == []


def test_kserve_crd_schema_check_catches_a_broken_inference_service(kserve_crd_validator, inference_service):
    broken = copy.deepcopy(inference_service)
    predictor = broken["spec"]["predictor"]
    predictor["minReplicas"] = "one"
    predictor["serviceAcountName"] = predictor.pop("serviceAccountName")  # misspelt: pruned, no credentials
    container = model_container(broken)
    del container["name"]
    container["ports"][0]["containerPort"] = "http"
    container["env"][0]["value"] = 7

    messages = {error.message for error in kserve_crd_validator.iter_errors(broken)}

    assert "'one' is not of type 'integer'" in messages
    assert "Additional properties are not allowed ('serviceAcountName' was unexpected)" in messages
    assert "'name' is a required property" in messages
    assert "'http' is not of type 'integer'" in messages
    assert "7 is not of type 'string'" in messages


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
    # What the executor sends: the client's body and Content-Type, to /v2/models/<node name>/infer; Prometheus
    # scrapes the port named `metrics` at the operator's path.
    assert_serves_the_contract(
        manifest, process, log, regression_bundle, env["PREDICTIVE_UNIT_ID"], env["PREDICTIVE_UNIT_METRICS_ENDPOINT"]
    )


def assert_serves_the_contract(manifest, process, log, regression_bundle, name: str, metrics_path: str) -> None:
    """The server started from ``manifest``'s model container answers its probes, reports the digest and version
    under the OIP model ``name``, answers an infer request and counts it on the port named `metrics` at
    ``metrics_path``."""
    bundle, test_rows = regression_bundle
    container = model_container(manifest)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    http = f"http://127.0.0.1:{ports['http']}"

    readiness = container["readinessProbe"]["httpGet"]
    assert readiness["port"] == "http"
    local_server.wait_healthy(f"{http}{readiness['path']}", process, log, START_TIMEOUT, "`python -m serving`")
    assert requests.get(f"{http}{container['livenessProbe']['httpGet']['path']}", timeout=10).status_code == 200

    metadata = requests.get(f"{http}/v2/models/{name}", timeout=10).json()
    assert metadata["name"] == name == "houses"
    assert metadata["parameters"]["sha256"] == bundle.card.sha256
    assert metadata["parameters"]["model_version"] == "3"

    rows = test_rows[bundle.feature_names].head(2)
    answer = requests.post(f"{http}/v2/models/{name}/infer", json=oip_table(rows), timeout=30)
    assert answer.status_code == 200, answer.text

    scraped = requests.get(f"http://127.0.0.1:{ports['metrics']}{metrics_path}", timeout=10)
    assert scraped.status_code == 200
    requests_total = [
        sample
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == "model_requests_total"
    ]
    assert {(s.labels["model_name"], s.labels["outcome"], s.value) for s in requests_total} >= {(name, "ok", 1.0)}


# --- the KServe container contract: the rendered args and env, as the pod webhook leaves them, to the real entry point


@pytest.fixture
def served_as_kserve_would(regression_bundle, free_ports, tmp_path):
    """`python -m serving` started as KServe's Standard mode starts `kserve-container`: the rendered args, the rendered
    env with STORAGE_URI rewritten to the storage initializer's copy (the bundle copied to a directory standing in for
    /mnt/models), nothing else. A pod has its own network; here the ports move to free ones by flags appended after
    the rendered args (the last of a flag wins), and the manifest's declared ports follow them."""
    bundle, _ = regression_bundle
    models = tmp_path / "mnt-models"
    shutil.copytree(bundle.directory, models)
    manifest = build_inference_service("Houses", "3", URI, bundle.card.sha256, image=SERVING_IMAGE)
    container = model_container(manifest)
    env = {variable["name"]: variable["value"] for variable in container["env"]}
    assert env["STORAGE_URI"] == URI  # the webhook rewrites it once the initializer has copied the files
    env["STORAGE_URI"] = str(models)
    env.update({"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    moved = dict(zip([port["name"] for port in container["ports"]], free_ports(3), strict=True))
    for port in container["ports"]:
        port["containerPort"] = moved[port["name"]]
    argv = [sys.executable, "-m", "serving", *container["args"], *(f"--{name}_port={n}" for name, n in moved.items())]
    log = tmp_path / "server.log"
    process = local_server.spawn(argv, log, env)
    try:
        yield manifest, process, log
    finally:
        local_server.stop_group(process.pid, timeout=15)
        process.wait(timeout=5)


@pytest.mark.serving
def test_the_entry_point_serves_the_kserve_container_contract(served_as_kserve_would, regression_bundle):
    manifest, process, log = served_as_kserve_would
    # What KServe's Service forwards from its port 80: the client's request, to /v2/models/<name>/infer; the
    # PodMonitor scrapes the port named `metrics` at the same path as Seldon's.
    assert_serves_the_contract(manifest, process, log, regression_bundle, served_model_name(manifest), METRICS_PATH)


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
