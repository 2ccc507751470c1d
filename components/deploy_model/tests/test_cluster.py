"""The kubernetes deploy target against a recording fake of the Kubernetes API, and a real model server.

The fake (cluster_fake.py, shared with the InferenceService tests) stands in for Kubernetes only: here
SeldonDeployment objects with the status the Seldon Core 1.17.1 operator writes (state, description, address; no
observedGeneration), and the apps/v1 Deployments the operator renders, labelled `seldon-deployment-id`, with the
model container's image and PREDICTIVE_UNIT_PARAMETERS env, and the status fields the Deployment controller writes.
Each test scripts what the cluster shows poll by poll and asserts the exact API calls made. The smoke test decides
nothing in the fake: where a test needs an answer it comes from the real OIP server (`python -m serving`, through
serving.local_server, the `real_server` fixture of conftest.py) that the operator's address points to.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from components._common import history, registry
from components.deploy_model import cluster, logic, smoke
from components.deploy_model.manifests import build_seldon_deployment
from components.deploy_model.tests import cluster_fake
from components.deploy_model.tests.cluster_fake import NAME, NAMESPACE, Clock, real_smoke, recording

SELDON_ID_LABEL = "seldon-deployment-id"  # the operator's label on the Deployments it renders
SERVICE = "http://houses-default.models.svc.cluster.local:8000"
SHA_OLD, SHA_NEW = "ab" * 32, "cd" * 32
ROWS = pd.DataFrame({"size_sqm": [80.0]})


def manifest(version: str = "2", sha256: str = SHA_NEW, image: str = "kfp-mlops-serving:1.0.0") -> dict:
    return build_seldon_deployment(
        NAME, version, f"s3://mlpipeline/mlflow/{version}/model", sha256, NAMESPACE, image=image
    )


def status(state: str, description: str = "", url: str = f"{SERVICE}/v2/models/houses/infer") -> dict:
    """A SeldonDeployment status as the operator records it."""
    recorded = {"state": state, "replicas": 1}
    if description:
        recorded["description"] = description
    if state == "Available":
        recorded["address"] = {"url": url}
        recorded["deploymentStatus"] = {"houses-default-0-houses": {"availableReplicas": 1, "replicas": 1}}
    return recorded


CREATING = status("Creating")
AVAILABLE = status("Available")
FAILED = status("Failed", "Cannot find field: imagePullPolicy")


def deployment(
    of: dict,
    generation: int = 2,
    observed: int | None = None,
    replicas: int = 1,
    updated: int = 1,
    available: int = 1,
) -> k8s.V1Deployment:
    """The Deployment the operator renders for SeldonDeployment ``of``, as the Deployment controller reports it."""
    (predictor,) = of["spec"]["predictors"]
    graph = predictor["graph"]
    (container,) = predictor["componentSpecs"][0]["spec"]["containers"]
    parameters = json.dumps([{"name": p["name"], "value": p["value"], "type": p["type"]} for p in graph["parameters"]])
    model = k8s.V1Container(
        name=container["name"],
        image=container["image"],
        env=[
            k8s.V1EnvVar(name="PREDICTIVE_UNIT_PARAMETERS", value=parameters),
            k8s.V1EnvVar(name="PREDICTIVE_UNIT_ID", value=container["name"]),
        ],
    )
    executor = k8s.V1Container(name="seldon-container-engine", image="seldonio/seldon-core-executor:1.17.1")
    return cluster_fake.deployment(
        f"{NAME}-default-0-{container['name']}",
        {SELDON_ID_LABEL: NAME},
        [model, executor],
        generation,
        observed,
        replicas,
        updated,
        available,
    )


class FakeApi(cluster_fake.FakeApi):
    # The SeldonDeployment CRD's group, served version and plural (Seldon Core 1.17.1).
    resource = ("machinelearning.seldon.io", "v1", "seldondeployments")


def live_object(version: str = "1", sha256: str = SHA_OLD, state: dict = AVAILABLE) -> dict:
    existing = manifest(version, sha256)
    existing["metadata"]["resourceVersion"] = "41"
    existing["status"] = state
    return existing


OLD, NEW = live_object("1"), manifest("2")
OLD_ROLLED_OUT = [deployment(OLD, generation=1)]
NEW_ROLLED_OUT = [deployment(NEW, generation=2)]


def roll_out(api, smoke=lambda url: None, timeout=60.0, clock=None, body=None):
    clock = clock or Clock()
    return cluster.roll_out(
        api, body or manifest(), smoke, timeout=timeout, poll_seconds=5.0, clock=clock, sleep=clock.sleep
    )


# --- create, replace, wait for the new generation (D1) ---------------------------------------------------------


def test_a_new_deployment_is_created_and_waited_for_until_its_rollout_completes():
    api = FakeApi(
        None,
        [CREATING, CREATING, CREATING, AVAILABLE],
        [
            [],
            [deployment(NEW, generation=1, updated=0, available=0)],
            [deployment(NEW, 1, available=0)],
            NEW_ROLLED_OUT,
        ],
    )
    smoked, smoke_test = recording()

    rollout = roll_out(api, smoke=smoke_test)

    assert rollout == cluster.Rollout(SERVICE, f"{SERVICE}/v2/models/houses/infer", replaced_existing=False)
    assert api.verbs() == ["get", "create", *["get", "list"] * 4]
    assert api.calls[1][3] == manifest()
    assert set(api.resources) == {("machinelearning.seldon.io", "v1", "seldondeployments")}
    assert api.calls[3] == ("list", NAMESPACE, "seldon-deployment-id=houses")
    assert smoked == [SERVICE]


def test_after_a_replace_the_old_pods_and_the_stale_available_state_are_not_taken_for_the_new_version():
    """Right after the PUT Seldon still says Available and the old Deployment is fully rolled out: neither counts
    until the Deployment carries the new model container and has rolled it out completely."""
    api = FakeApi(
        live_object("1"),
        [AVAILABLE],
        [
            OLD_ROLLED_OUT,  # the operator has not rendered the new spec yet
            [deployment(NEW, generation=2, observed=1)],  # new template, not yet observed by the controller
            [deployment(NEW, generation=2, replicas=2, updated=1, available=1)],  # the old pod is still there
            [deployment(NEW, generation=2, replicas=1, updated=1, available=0)],  # the new pod is not ready yet
            NEW_ROLLED_OUT,
        ],
    )
    clock = Clock()
    smoked, smoke_test = recording()

    rollout = roll_out(api, smoke=smoke_test, clock=clock)

    assert rollout.replaced_existing
    assert api.verbs() == ["get", "replace", *["get", "list"] * 5]
    assert clock.slept == [5.0] * 4
    assert smoked == [SERVICE]
    sent = api.calls[1][3]
    assert sent["metadata"]["resourceVersion"] == "41"
    assert sent["spec"] == manifest()["spec"]


def test_a_new_image_of_the_same_model_version_is_waited_for_too():
    api = FakeApi(live_object("2", SHA_NEW), [AVAILABLE], [[deployment(manifest(image="kfp-mlops-serving:0.9.0"))]])

    with pytest.raises(cluster.ClusterDeploymentError, match="still has the previous model container"):
        roll_out(api, timeout=10.0)


def test_a_new_pod_that_never_becomes_available_times_out_and_restores_the_previous_spec():
    api = FakeApi(live_object("1"), [AVAILABLE], [[deployment(NEW, replicas=2, updated=1, available=0)]])
    smoked, smoke_test = recording()

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, smoke=smoke_test, timeout=20.0)

    message = str(error.value)
    assert "not rolled out before the timeout" in message and "1 old replica(s) pending termination" in message
    assert "restored the previous spec of SeldonDeployment models/houses" in message
    assert smoked == []  # the old pod that still answers is never smoke-tested in its place
    restored = api.calls[-1][3]
    assert api.calls[-1][0] == "replace" and restored["spec"] == live_object("1")["spec"]
    assert restored["metadata"]["annotations"]["kfp-mlops/model-version"] == "1"


def test_a_rollout_past_its_progress_deadline_rolls_back_at_once():
    stuck = deployment(NEW, replicas=2, updated=1, available=0)
    stuck.status.conditions = [
        k8s.V1DeploymentCondition(
            type="Progressing",
            status="False",
            reason="ProgressDeadlineExceeded",
            message='ReplicaSet "houses-default-0-houses-7c9" has timed out progressing.',
        )
    ]
    api = FakeApi(live_object("1"), [AVAILABLE], [OLD_ROLLED_OUT, [stuck]])
    clock = Clock()

    with pytest.raises(cluster.ClusterDeploymentError, match="exceeded its progress deadline: ReplicaSet") as error:
        roll_out(api, clock=clock, timeout=600.0)

    assert clock.now == 5.0 and "restored the previous spec" in str(error.value)


def test_never_created_times_out_and_deletes_the_new_deployment():
    api = FakeApi(None, [CREATING], [[]])

    with pytest.raises(cluster.ClusterDeploymentError, match="has not created its Deployment yet") as error:
        roll_out(api, timeout=20.0)

    assert "deleted the new SeldonDeployment models/houses" in str(error.value)
    assert api.verbs()[-1] == "delete" and api.live is None and api.resources[-1] == FakeApi.resource


def test_a_failed_state_written_for_the_new_spec_rolls_back_at_once():
    api = FakeApi(live_object("1"), [AVAILABLE, CREATING, FAILED], [OLD_ROLLED_OUT])
    clock = Clock()

    with pytest.raises(cluster.ClusterDeploymentError, match="failed: Cannot find field: imagePullPolicy") as error:
        roll_out(api, clock=clock)

    assert "restored the previous spec" in str(error.value)
    assert clock.now == 5.0  # the first poll's Creating is the new spec's; the next poll's Failed ends the wait
    assert api.verbs() == ["get", "replace", "get", "list", "get", "list", "get", "replace"]
    assert api.calls[-1][3]["metadata"]["resourceVersion"] == "42"  # the live object's, as a replace requires


def test_the_previous_specs_failed_state_does_not_stop_the_new_rollout():
    api = FakeApi(live_object("1", state=FAILED), [FAILED, FAILED, AVAILABLE], [OLD_ROLLED_OUT, NEW_ROLLED_OUT])

    assert roll_out(api).replaced_existing


def test_a_smoke_test_failing_until_the_deadline_rolls_back():
    api = FakeApi(live_object("1"), [AVAILABLE], [NEW_ROLLED_OUT])
    wrong = smoke.DeploymentError("smoke test: served predictions [1.0] differ from the model's [2.0]")
    _, smoke_test = recording([wrong] * 10)

    with pytest.raises(cluster.ClusterDeploymentError, match=r"smoke test of .* still failing after 20 s") as error:
        roll_out(api, smoke=smoke_test, timeout=20.0)

    assert "differ from the model's" in str(error.value) and "restored the previous spec" in str(error.value)
    assert api.calls[-1][0] == "replace" and api.calls[-1][3]["spec"] == live_object("1")["spec"]


def test_a_smoke_test_is_retried_until_the_executor_answers():
    api = FakeApi(live_object("1"), [AVAILABLE], [NEW_ROLLED_OUT])
    unreachable = smoke.DeploymentError("smoke test: cannot reach ...: Connection refused")
    smoked, smoke_test = recording([unreachable, unreachable, None])

    assert roll_out(api, smoke=smoke_test).base_url == SERVICE
    assert len(smoked) == 3 and "delete" not in api.verbs() and api.verbs().count("replace") == 1


# --- the service address (D7) ----------------------------------------------------------------------------------


def test_the_base_url_is_read_from_the_operators_address():
    url = "http://seldon-0123456789abcdef.models.svc.cluster.local:8000/v2/models/houses/infer"
    api = FakeApi(None, [status("Available", url=url)], [NEW_ROLLED_OUT])
    smoked, smoke_test = recording()

    rollout = roll_out(api, smoke=smoke_test)

    assert smoked == ["http://seldon-0123456789abcdef.models.svc.cluster.local:8000"]
    assert rollout.predictions_url == url


def test_without_an_address_the_base_url_is_the_predictor_service():
    api = FakeApi(None, [CREATING], [NEW_ROLLED_OUT])

    rollout = roll_out(api)

    assert rollout.base_url == SERVICE
    assert rollout.predictions_url == f"{SERVICE}/v2/models/houses/infer"


# --- conflicts and API errors (D2) -----------------------------------------------------------------------------


def test_a_conflicting_replace_is_retried_with_a_fresh_resource_version():
    api = FakeApi(live_object("1"), [AVAILABLE], [NEW_ROLLED_OUT], conflicts=2)

    assert roll_out(api).replaced_existing
    assert api.verbs()[:6] == ["get", "replace", "get", "replace", "get", "replace"]
    assert [call[3]["metadata"]["resourceVersion"] for call in api.calls if call[0] == "replace"] == ["41", "42", "43"]


def test_a_replace_conflicting_every_time_changes_nothing_and_says_so():
    api = FakeApi(live_object("1"), [AVAILABLE], [NEW_ROLLED_OUT], conflicts=99)

    with pytest.raises(cluster.ClusterDeploymentError, match="was refused, nothing was changed: 409 Conflict"):
        roll_out(api)

    assert api.verbs() == ["get", "replace"] * cluster.CONFLICT_ATTEMPTS


def test_a_webhook_refusal_is_reported_with_its_message():
    api = FakeApi(None, [])
    body = json.dumps({"message": 'admission webhook "v1.vseldondeployment.kb.io" denied the request: Invalid'})
    api.refuse["create"] = ApiException(status=422, reason="Unprocessable Entity")
    api.refuse["create"].body = body

    with pytest.raises(
        cluster.ClusterDeploymentError, match="nothing was changed: 422 Unprocessable Entity: admission"
    ):
        roll_out(api)

    assert api.verbs() == ["get", "create"]


def test_a_forbidden_read_is_not_taken_for_absence():
    api = FakeApi(None, [])
    api.refuse["get"] = ApiException(status=403, reason="Forbidden")

    with pytest.raises(cluster.ClusterDeploymentError, match="nothing was changed: 403 Forbidden"):
        roll_out(api)

    assert api.verbs() == ["get"]


@pytest.mark.parametrize(
    ("failure", "reported"),
    [
        (ApiException(status=503, reason="Service Unavailable"), "Kubernetes API error while waiting: 503"),
        (ApiException(status=500, reason="Internal Server Error"), "Kubernetes API error while waiting: 500"),
        (urllib3.exceptions.ProtocolError("Connection aborted."), "ProtocolError: Connection aborted."),
        (urllib3.exceptions.MaxRetryError(None, "/apis/apps/v1", "timed out"), "MaxRetryError"),
    ],
    ids=["503", "500", "connection-reset", "max-retries"],
)
def test_an_api_error_in_the_middle_of_a_rollout_rolls_back(failure, reported):
    api = FakeApi(live_object("1"), [AVAILABLE], [OLD_ROLLED_OUT, [deployment(NEW, observed=1)], failure])
    smoked, smoke_test = recording()

    with pytest.raises(cluster.ClusterDeploymentError, match=reported) as error:
        roll_out(api, smoke=smoke_test)

    assert "restored the previous spec of SeldonDeployment models/houses" in str(error.value)
    assert smoked == []
    assert api.calls[-1][0] == "replace" and api.calls[-1][3]["spec"] == live_object("1")["spec"]


def test_a_rollback_racing_the_operator_is_retried_on_conflict():
    api = FakeApi(live_object("1"), [AVAILABLE, CREATING, FAILED], [OLD_ROLLED_OUT])
    original = api.replace_namespaced_custom_object

    def replace(*args):
        if api.verbs().count("replace") == 1:  # the first replace succeeded; the rollback's first try conflicts
            api.conflicts = 1
        return original(*args)

    api.replace_namespaced_custom_object = replace

    with pytest.raises(cluster.ClusterDeploymentError, match="restored the previous spec"):
        roll_out(api)

    assert api.verbs()[-4:] == ["get", "replace", "get", "replace"]
    assert api.live["spec"] == live_object("1")["spec"]


def test_a_rollback_that_fails_reports_both_errors():
    api = FakeApi(live_object("1"), [AVAILABLE], [OLD_ROLLED_OUT, ApiException(status=503, reason="Unavailable")])
    original = api.replace_namespaced_custom_object

    def replace(*args):
        if api.verbs().count("replace") >= 1:
            raise ApiException(status=500, reason="Internal Server Error")
        return original(*args)

    api.replace_namespaced_custom_object = replace

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api)

    message = str(error.value)
    assert message.startswith("Kubernetes API error while waiting: 503 Unavailable; ")
    assert "rolling back SeldonDeployment models/houses failed too (Kubernetes API error while rolling back: 500" in (
        message
    )
    assert "kubectl -n models get seldondeployment houses -o yaml" in message


def test_a_failed_delete_of_a_new_object_is_reported_too():
    api = FakeApi(None, [CREATING], [[]])
    api.refuse["delete"] = urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")

    with pytest.raises(cluster.ClusterDeploymentError, match="has not created its Deployment yet") as error:
        roll_out(api, timeout=5.0)

    assert "rolling back SeldonDeployment models/houses failed too (error while rolling back: MaxRetryError" in str(
        error.value
    )


# --- with a real model server behind the operator's address ----------------------------------------------------


def served_status(server) -> dict:
    """Available, with the operator's address pointing at the real server (the executor's role here)."""
    return status("Available", url=f"{server.base_url}/v2/models/{NAME}/infer")


@pytest.mark.serving
def test_a_rollout_promotes_only_once_the_real_server_reports_the_new_digest(real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    api = FakeApi(live_object("1"), [served_status(server)], [OLD_ROLLED_OUT, [deployment(new)]])

    rollout = roll_out(api, smoke=real_smoke(bundle, rows), body=new)

    assert rollout.base_url == server.base_url
    assert rollout.predictions_url == f"{server.base_url}/v2/models/houses/infer"


@pytest.mark.serving
def test_a_server_still_serving_the_previous_model_never_passes(real_server):
    """The Deployment looks rolled out, but what answers has another digest: the smoke test refuses it until the
    deadline, and the previous spec is restored."""
    server, bundle, rows = real_server
    api = FakeApi(live_object("1"), [served_status(server)], [NEW_ROLLED_OUT])

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, smoke=real_smoke(bundle, rows, sha256=SHA_NEW), timeout=10.0)

    message = str(error.value)
    assert f"serves sha256 {bundle.card.sha256}, expected {SHA_NEW}" in message
    assert "restored the previous spec" in message


@pytest.mark.serving
def test_an_api_error_mid_rollout_with_a_real_server_rolls_back_before_any_smoke_test(real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    failure = ApiException(status=503, reason="Service Unavailable")
    api = FakeApi(live_object("1"), [served_status(server)], [[deployment(new, observed=1)], failure])
    calls = []

    def smoke_test(base_url):
        calls.append(base_url)
        real_smoke(bundle, rows)(base_url)

    with pytest.raises(cluster.ClusterDeploymentError, match="503 Service Unavailable; restored the previous spec"):
        roll_out(api, smoke=smoke_test, body=new)

    assert calls == []


@pytest.mark.serving
def test_a_failing_rollback_after_a_real_smoke_failure_reports_both(real_server):
    server, bundle, rows = real_server
    api = FakeApi(live_object("1"), [served_status(server)], [NEW_ROLLED_OUT])
    original = api.replace_namespaced_custom_object

    def replace(*args):
        if api.verbs().count("replace") >= 1:
            raise urllib3.exceptions.ProtocolError("Connection aborted.")
        return original(*args)

    api.replace_namespaced_custom_object = replace

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, smoke=real_smoke(bundle, rows, sha256=SHA_NEW), timeout=5.0)

    message = str(error.value)
    assert f"serves sha256 {bundle.card.sha256}, expected {SHA_NEW}" in message
    assert "failed too (error while rolling back: ProtocolError: Connection aborted.)" in message


# --- the whole target: registry alias -------------------------------------------------------------------------


@pytest.mark.serving
def test_success_moves_champion_and_records_where_it_is_served(registered, real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    api = FakeApi(live_object("1"), [served_status(server)], [[deployment(new)]])

    endpoint = logic.deploy_kubernetes(
        new, NAME, "2", bundle.card.sha256, rows, bundle.predict(rows), "", timeout=30.0, api=api
    )

    assert endpoint == f"{server.base_url}/v2/models/houses/infer"
    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"
    tags = registered.get_model_version(NAME, "2").tags
    assert (tags["deployment.target"], tags["deployment.platform"]) == ("kubernetes", "seldon")
    assert (tags["deployment.namespace"], tags["deployment.name"]) == (NAMESPACE, NAME)
    assert tags["deployment.endpoint"] == endpoint


@pytest.mark.serving
def test_success_records_the_champion_move_with_what_moved_it_and_why(registered, real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    api = FakeApi(live_object("1"), [served_status(server)], [[deployment(new)]])
    provenance = logic.Provenance("rollback-pipeline-2026-11-30-16-40-01", "8d2e", "v3 times out", forced=True)

    logic.deploy_kubernetes(
        new, NAME, "2", bundle.card.sha256, rows, bundle.predict(rows), "", timeout=30.0, api=api, provenance=provenance
    )

    [move] = [move for move in history.read("", NAME) if move.alias == registry.CHAMPION]
    assert (move.from_version, move.to_version, move.model_sha256) == ("1", "2", bundle.card.sha256)
    assert (move.cause, move.moved_by) == ("rollback", "rollback-pipeline-2026-11-30-16-40-01 (KFP run 8d2e)")
    assert (move.gate, move.reason, move.forced) == ("approved", "v3 times out", True)


@pytest.mark.serving
def test_the_version_promoted_is_the_one_passed_not_read_back_from_the_manifest(registered, real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    del new["metadata"]["annotations"]  # informative only: nothing reads them back
    api = FakeApi(live_object("1"), [served_status(server)], [[deployment(new)]])

    logic.deploy_kubernetes(new, NAME, "2", bundle.card.sha256, rows, bundle.predict(rows), "", timeout=30.0, api=api)

    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"


@pytest.mark.serving
@pytest.mark.parametrize(
    ("statuses", "deployments", "sha256"),
    [
        ([AVAILABLE, CREATING, FAILED], [OLD_ROLLED_OUT], None),
        ([AVAILABLE], [OLD_ROLLED_OUT], None),
        (None, None, SHA_NEW),
    ],
    ids=["failed", "timeout", "old-model-answers"],
)
def test_every_failure_leaves_champion_where_it_was(registered, real_server, statuses, deployments, sha256):
    server, bundle, rows = real_server
    new = manifest("2", sha256 or bundle.card.sha256)
    api = FakeApi(live_object("1"), statuses or [served_status(server)], deployments or [[deployment(new)]])

    with pytest.raises(logic.DeploymentError, match="deploying houses v2 to Kubernetes failed"):
        logic.deploy_kubernetes(
            new, NAME, "2", sha256 or bundle.card.sha256, rows, bundle.predict(rows), "", timeout=0.0, api=api
        )

    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"
    assert "deployment.target" not in registered.get_model_version(NAME, "2").tags
    assert [move for move in history.read("", NAME) if move.alias == registry.CHAMPION] == []
