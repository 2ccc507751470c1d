"""The cluster's YAML under cluster/: valid for Kubernetes 1.33, least-privilege RBAC, and consistent with what the
pipeline's deploy step renders and calls (Secret and ServiceAccount names, namespace, rclone remote, KServe's S3
annotations, the API verbs it uses) and with SeaweedFS's NetworkPolicy."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.static.test_dockerfiles import components_user

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_DIR = REPO_ROOT / "cluster"
DEPLOY_MANIFESTS = REPO_ROOT / "components" / "deploy_model" / "manifests.py"
DEPLOY_CLUSTER = REPO_ROOT / "components" / "deploy_model" / "cluster.py"
PROJECT_VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]

# The cluster's Kubernetes minor (cluster/kind-config.yaml). kubernetes-validate 1.37.0 bundles 1.33 schemas.
KUBERNETES_VERSION = "1.33"

# Documents that are not built-in Kubernetes kinds, so no bundled schema exists for them; each is checked by a
# dedicated test below instead.
NOT_BUILT_IN = {
    ("kind.x-k8s.io/v1alpha4", "Cluster"): "kind's own cluster config, never sent to the API server",
    ("monitoring.coreos.com/v1", "PodMonitor"): "CRD of the Prometheus Operator (kube-prometheus-stack)",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "CRD of the Prometheus Operator; promtool checks its rules",
    ("machinelearning.seldon.io/v1", "SeldonDeployment"): "CRD of the Seldon Core operator",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass"}

SEAWEEDFS_ENDPOINT = "http://seaweedfs.kubeflow.svc.cluster.local:8333"

# The RBAC verb each call of the deploy step's API object (cluster.py, KubernetesApi) needs: PUT is `update`.
API_VERBS = {
    "get_namespaced_custom_object": "get",
    "create_namespaced_custom_object": "create",
    "replace_namespaced_custom_object": "update",
    "delete_namespaced_custom_object": "delete",
    "list_namespaced_deployment": "list",
}
# Read only, for following a rollout (`kubectl rollout status` reads the same).
READ_DEPLOYMENTS = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}


def _documents() -> list[tuple[str, int, dict]]:
    found = []
    for path in sorted([*CLUSTER_DIR.rglob("*.yaml"), *CLUSTER_DIR.rglob("*.yml")]):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document is not None:
                found.append((str(path.relative_to(REPO_ROOT)), index, document))
    return found


DOCUMENTS = _documents()
BUILT_IN = [entry for entry in DOCUMENTS if (entry[2].get("apiVersion"), entry[2].get("kind")) not in NOT_BUILT_IN]


def _doc_id(entry: tuple[str, int, dict]) -> str:
    path, index, document = entry
    return f"{path}#{index}:{document.get('kind')}/{document.get('metadata', {}).get('name', '')}"


def _find(kind: str, name: str) -> dict:
    matches = [doc for _, _, doc in DOCUMENTS if doc.get("kind") == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name} under cluster/, found {len(matches)}"
    return matches[0]


def _of_kind(kind: str) -> list[dict]:
    return [doc for _, _, doc in DOCUMENTS if doc.get("kind") == kind]


def _option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def _module_constant(path: Path, name: str):
    """A module-level constant, read without importing the module (and its heavy dependencies)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {path}")


def _default_argument(path: Path, function: str, argument: str):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            names = [arg.arg for arg in node.args.args][len(node.args.args) - len(node.args.defaults) :]
            defaults = dict(zip(names, node.args.defaults, strict=True))
            return ast.literal_eval(defaults[argument])
    raise AssertionError(f"{function}() not found in {path}")


def _api_calls() -> set[str]:
    """The methods of cluster.py's KubernetesApi: every call the deploy step makes to the cluster."""
    for node in ast.parse(DEPLOY_CLUSTER.read_text()).body:
        if isinstance(node, ast.ClassDef) and node.name == "KubernetesApi":
            return {item.name for item in node.body if isinstance(item, ast.FunctionDef) and item.name != "__init__"}
    raise AssertionError(f"class KubernetesApi not found in {DEPLOY_CLUSTER}")


def _kserve_storage() -> tuple[dict, dict]:
    """The ServiceAccount the deploy step's InferenceServices run as, and the one Secret it lists."""
    account = _find("ServiceAccount", _module_constant(DEPLOY_MANIFESTS, "KSERVE_SERVICE_ACCOUNT"))
    (listed,) = account["secrets"]
    return account, _find("Secret", listed["name"])


def test_the_cluster_directory_has_the_expected_documents():
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for _, _, doc in DOCUMENTS if "metadata" in doc)
    assert kinds == [
        ("Deployment", "mlflow"),
        ("Namespace", "models"),
        ("PersistentVolumeClaim", "mlflow-db"),
        ("PodMonitor", "kserve-inference-services"),
        ("PodMonitor", "seldon-deployments"),
        ("PrometheusRule", "kfp-mlops-models"),
        ("Role", "kserve-deployer"),
        ("Role", "seldon-deployer"),
        ("RoleBinding", "kserve-deployer-pipeline-runner"),
        ("RoleBinding", "seldon-deployer-pipeline-runner"),
        ("Secret", "kserve-s3-credentials"),
        ("Secret", "mlflow-s3-credentials"),
        ("Secret", "seldon-rclone-secret"),
        ("Service", "mlflow"),
        ("ServiceAccount", "kserve-model-storage"),
    ]


@pytest.mark.parametrize("entry", BUILT_IN, ids=_doc_id)
def test_built_in_kinds_validate_strictly_for_kubernetes_1_33(entry):
    path, _, document = entry
    try:
        validated = kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        pytest.fail(f"{path}: {error.message}; a CRD-backed kind belongs in NOT_BUILT_IN with its own test")
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{path}: {'.'.join(map(str, error.path))}: {error.message}")
    assert validated == KUBERNETES_VERSION


def test_strict_validation_catches_a_misspelt_field():
    # Guards the test above: strict mode must reject a field Kubernetes does not know.
    deployment = _find("Deployment", "mlflow")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind", sorted(NOT_BUILT_IN), ids="/".join)
def test_kinds_left_out_of_strict_validation_have_no_built_in_schema(kind):
    # A built-in kind listed in NOT_BUILT_IN would silently escape the strict validation above.
    api_version, name = kind
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": api_version, "kind": name, "metadata": {"name": "probe"}}, KUBERNETES_VERSION, strict=True
        )


def test_every_kind_left_out_of_strict_validation_is_one_the_cluster_directory_has():
    # A stale entry would let a future document of that kind skip validation unnoticed. The SeldonDeployment is the
    # one exception: the deploy step renders it (checked against its CRD in
    # components/deploy_model/tests/test_manifests.py).
    present = {(doc.get("apiVersion"), doc.get("kind")) for _, _, doc in DOCUMENTS}
    assert set(NOT_BUILT_IN) - present == {("machinelearning.seldon.io/v1", "SeldonDeployment")}


def test_namespaced_objects_name_their_namespace():
    # `kubectl apply -f` would otherwise put them into whatever namespace the context defaults to.
    loose = [
        _doc_id(entry)
        for entry in DOCUMENTS
        if entry[2].get("kind") not in CLUSTER_SCOPED | {"Cluster"} and not entry[2]["metadata"].get("namespace")
    ]
    assert not loose


def test_no_image_is_latest_or_untagged():
    images = []
    for _, _, doc in DOCUMENTS:
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            images.append(container["image"])
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and "/" not in tag and tag != "latest", image


def test_kind_node_image_is_inside_kfps_tested_range_pinned_by_digest():
    (config,) = [doc for _, _, doc in DOCUMENTS if doc.get("kind") == "Cluster"]
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [node["role"] for node in config["nodes"]] == ["control-plane"]
    image = config["nodes"][0]["image"]
    # KFP 2.17.0's CI tests Kubernetes 1.33 and 1.36; kind v0.29.0's default node image (its defaults/image.go).
    assert image == "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f"
    assert image.startswith(f"kindest/node:v{KUBERNETES_VERSION}.")


def test_the_kind_release_named_everywhere_is_the_one_that_ships_the_node_image():
    assert "default node image of kind v0.29.0" in (CLUSTER_DIR / "kind-config.yaml").read_text()
    assert "kind v0.29.x is the release the pinned node image was built for" in (CLUSTER_DIR / "up.sh").read_text()
    assert "go install sigs.k8s.io/kind@v0.29.0" in (CLUSTER_DIR / "common.sh").read_text()


def test_models_namespace_is_admitted_by_the_seaweedfs_network_policy():
    namespace = _find("Namespace", "models")
    assert namespace["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kubeflow-profile"
    # Both storage initializers download from SeaweedFS in the namespace the deploy step renders into by default.
    assert _default_argument(DEPLOY_MANIFESTS, "build_seldon_deployment", "namespace") == "models"
    assert _default_argument(DEPLOY_MANIFESTS, "build_inference_service", "namespace") == "models"


def test_the_only_rbac_is_the_two_namespaced_deployer_roles():
    assert not _of_kind("ClusterRole") and not _of_kind("ClusterRoleBinding")
    assert sorted(role["metadata"]["name"] for role in _of_kind("Role")) == ["kserve-deployer", "seldon-deployer"]
    for binding in _of_kind("RoleBinding"):
        assert binding["metadata"]["namespace"] == "models"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}]


def test_pipeline_runner_may_make_only_the_deploy_steps_calls_on_seldon_deployments_in_models():
    from components.deploy_model.platforms import SELDON

    role = _find("Role", "seldon-deployer")
    binding = _find("RoleBinding", "seldon-deployer-pipeline-runner")
    assert role["metadata"] == {**role["metadata"], "name": "seldon-deployer", "namespace": "models"}
    custom_object_verbs = {API_VERBS[call] for call in _api_calls() if call.endswith("_custom_object")}
    # No seldondeployments/status and no patch: any step of any run could otherwise write the status the operator
    # owns, or change a deployment's spec beside the deploy step.
    (seldon_deployments, deployments) = role["rules"]
    assert seldon_deployments["apiGroups"] == [SELDON.group]
    assert seldon_deployments["resources"] == [SELDON.plural]
    assert sorted(seldon_deployments["verbs"]) == sorted(custom_object_verbs)
    # The deploy step follows the rollout of the Deployments the operator renders (cluster.py): read only.
    assert deployments == READ_DEPLOYMENTS
    assert binding["metadata"]["namespace"] == "models"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "seldon-deployer"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}]


def test_pipeline_runner_may_make_only_the_deploy_steps_calls_on_inference_services_in_models():
    from components.deploy_model.platforms import KSERVE

    calls = _api_calls()
    assert calls <= API_VERBS.keys(), f"give {sorted(calls - API_VERBS.keys())} an RBAC verb in API_VERBS"
    custom_object_verbs = {API_VERBS[call] for call in calls if call.endswith("_custom_object")}
    role = _find("Role", "kserve-deployer")
    assert role["metadata"]["namespace"] == "models"
    (inference_services, deployments) = role["rules"]
    assert inference_services["apiGroups"] == [KSERVE.group]
    # No inferenceservices/status: a GET returns the status, and only KServe's controller writes it.
    assert inference_services["resources"] == [KSERVE.plural]
    assert sorted(inference_services["verbs"]) == sorted(custom_object_verbs)
    assert deployments == READ_DEPLOYMENTS
    assert {API_VERBS[call] for call in calls if call.endswith("_deployment")} <= set(deployments["verbs"])
    binding = _find("RoleBinding", "kserve-deployer-pipeline-runner")
    assert binding["metadata"]["namespace"] == "models"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kserve-deployer"}


def test_rclone_secret_is_the_one_the_seldon_deployment_names_with_an_s3_remote():
    secret_name = _module_constant(DEPLOY_MANIFESTS, "RCLONE_SECRET")
    secret = _find("Secret", secret_name)
    namespace = _default_argument(DEPLOY_MANIFESTS, "build_seldon_deployment", "namespace")
    assert secret["metadata"]["namespace"] == namespace
    data = secret["stringData"]
    # rclone reads RCLONE_CONFIG_<REMOTE>_<KEY>; the remote must be named after the model URI's scheme.
    mlflow_command = _find("Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]["command"]
    artifact_root = _option(mlflow_command, "--default-artifact-root")
    remote = artifact_root.split("://", 1)[0].upper()
    assert remote == "S3"
    assert {key.split("_")[2] for key in data} == {remote}, sorted(data)
    assert data == {
        "RCLONE_CONFIG_S3_TYPE": "s3",
        "RCLONE_CONFIG_S3_PROVIDER": "Other",
        "RCLONE_CONFIG_S3_ENV_AUTH": "false",
        "RCLONE_CONFIG_S3_ENDPOINT": SEAWEEDFS_ENDPOINT,
        "RCLONE_CONFIG_S3_ACCESS_KEY_ID": "minio",
        "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": "minio123",
    }


def test_mlflow_clients_and_rclone_use_the_same_object_store_and_credentials():
    mlflow = _find("Secret", "mlflow-s3-credentials")["stringData"]
    rclone = _find("Secret", _module_constant(DEPLOY_MANIFESTS, "RCLONE_SECRET"))["stringData"]
    assert mlflow == {
        "AWS_ACCESS_KEY_ID": rclone["RCLONE_CONFIG_S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": rclone["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"],
        "MLFLOW_S3_ENDPOINT_URL": rclone["RCLONE_CONFIG_S3_ENDPOINT"],
    }
    # SeaweedFS's NetworkPolicy admits pods of `kubeflow`: the credentials' users (pipeline steps, MLflow) run there.
    assert _find("Secret", "mlflow-s3-credentials")["metadata"]["namespace"] == "kubeflow"


def test_kserve_storage_secret_is_what_the_storage_initializer_reads_for_the_mlflow_object_store():
    account, secret = _kserve_storage()
    mlflow = _find("Secret", "mlflow-s3-credentials")["stringData"]
    # The InferenceService's namespace: KServe's webhook reads both from the pod's own namespace.
    namespace = _default_argument(DEPLOY_MANIFESTS, "build_inference_service", "namespace")
    assert account["metadata"]["namespace"] == secret["metadata"]["namespace"] == namespace
    # KServe v0.20.0 (pkg/credentials/s3/utils.go): a host[:port] endpoint with s3-usehttps "0" becomes
    # AWS_ENDPOINT_URL=http://<endpoint>, the one endpoint setting its downloader (kserve_storage) reads; MLflow's.
    assert mlflow["MLFLOW_S3_ENDPOINT_URL"] == SEAWEEDFS_ENDPOINT
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": SEAWEEDFS_ENDPOINT.removeprefix("http://"),
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": "us-east-1",
    }
    # The key names inferenceservice-config's storage settings give (s3AccessKeyIDName, s3SecretAccessKeyName); a
    # Secret without AWS_SECRET_ACCESS_KEY is not taken for an S3 one at all. The same user as MLflow's clients.
    assert secret["stringData"] == {
        "AWS_ACCESS_KEY_ID": mlflow["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": mlflow["AWS_SECRET_ACCESS_KEY"],
    }


def test_kserve_service_account_is_the_one_the_inference_service_names_and_lists_the_secret():
    # KServe's webhook walks the ServiceAccount's `secrets` (pkg/credentials/service_account_credentials.go).
    account, secret = _kserve_storage()
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]
    # The model server never calls the API: its pods get no token.
    assert account["automountServiceAccountToken"] is False


def test_mlflow_server_stores_uris_only_and_answers_in_cluster_host_names():
    deployment = _find("Deployment", "mlflow")
    assert deployment["metadata"]["namespace"] == "kubeflow"
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "mlflow"
    # cluster/up.sh renders the built tag into exactly this line before applying the file.
    assert container["image"] == f"kfp-mlops-components:{PROJECT_VERSION}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    command = container["command"]
    assert command[:2] == ["mlflow", "server"]
    assert _option(command, "--backend-store-uri") == "sqlite:////data/mlflow.db"
    assert _option(command, "--default-artifact-root") == "s3://mlpipeline/mlflow"  # the bucket KFP creates
    assert "--no-serve-artifacts" in command
    assert (_option(command, "--host"), _option(command, "--port")) == ("0.0.0.0", "5000")
    allowed = _option(command, "--allowed-hosts").split(",")
    for host in ("mlflow.kubeflow.svc.cluster.local:*", "mlflow.kubeflow:*", "mlflow:*", "localhost:*"):
        assert host in allowed
    assert {"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": "false"} in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "mlflow-s3-credentials"}}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}, probe
    assert {"name": "http", "containerPort": 5000} in container["ports"]
    assert container["resources"]["limits"]["memory"] == "1Gi"
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/data"
    (volume,) = [volume for volume in pod["volumes"] if volume["name"] == mount["name"]]
    claim = _find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_mlflow_server_runs_as_the_components_images_user_and_its_group_owns_the_volume():
    """The pod names the image's own user, which runAsNonRoot holds to a non-root uid, and gives the volume's files
    to a group of its user (fsGroup), so the server can write its database where the storage supports ownership."""
    pod = _find("Deployment", "mlflow")["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == int(components_user()) != 0
    assert isinstance(context["runAsGroup"], int) and isinstance(context["fsGroup"], int)
    (container,) = pod["containers"]
    assert not {"runAsUser", "runAsGroup", "runAsNonRoot"} & set(container["securityContext"]), "one place: the pod"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_every_service_selects_pods_and_targets_a_named_container_port():
    for service in _of_kind("Service"):
        selector = service["spec"]["selector"]
        pods = [
            doc
            for doc in _of_kind("Deployment")
            if doc["metadata"]["namespace"] == service["metadata"]["namespace"]
            and selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, service["metadata"]["name"]
        deployment = pods[0]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= selector.items()
        port_names = {port["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for port in c["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names


def test_podmonitor_scrapes_every_seldon_pod_in_any_namespace():
    monitor = _find("PodMonitor", "seldon-deployments")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["spec"] == {
        "namespaceSelector": {"any": True},
        "selector": {"matchLabels": {"app.kubernetes.io/managed-by": "seldon-core"}},
        "podMetricsEndpoints": [{"port": "metrics", "path": "/prometheus"}],
    }


def test_podmonitor_scrapes_the_model_container_of_every_kserve_pod_in_any_namespace():
    from components.deploy_model.platforms import KSERVE

    monitor = _find("PodMonitor", "kserve-inference-services")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "monitoring"
    # The label KServe puts on the predictor's Deployment and pods, valued with the InferenceService's name.
    selector = {"matchExpressions": [{"key": KSERVE.workload_label, "operator": "Exists"}]}
    ports, path = _module_constant(DEPLOY_MANIFESTS, "PORTS"), _module_constant(DEPLOY_MANIFESTS, "METRICS_PATH")
    # The model container's named metrics port and the path its server answers there, as under Seldon: one dashboard.
    assert "metrics" in ports
    assert monitor["spec"] == {
        "namespaceSelector": {"any": True},
        "selector": selector,
        "podMetricsEndpoints": [{"port": "metrics", "path": path}],
    }
    assert _find("PodMonitor", "seldon-deployments")["spec"]["podMetricsEndpoints"] == [
        {"port": "metrics", "path": path}
    ]
