"""The kubernetes deploy target with a KServe InferenceService (v0.20.0, Standard mode): the same rollout sequence
as the SeldonDeployment's (cluster.roll_out), against the same recording fake (cluster_fake.py) and a real model
server.

What the fake shows is recorded from KServe's source and tests at tag v0.20.0 (paths in the kserve/kserve
repository):
- the predictor Deployment `<name>-predictor` (components/predictor.go:159, 498-512;
  reconcilers/deployment/deployment_reconciler.go:146-155): the InferenceService's labels plus
  `serving.kserve.io/inferenceservice=<name>`, `component: predictor` and `app: isvc.<name>-predictor`; its
  `kserve-container` is the manifest's as written (predictor.go:140-146) plus `INFERENCE_SERVICE_NAME`
  (predictor.go:149-157), with `STORAGE_URI` still the s3:// URI (the pod webhook rewrites it in the Pod only:
  webhook/admission/pod/storage_initializer_injector.go:560-566);
- the status (apis/serving/v1beta1/inference_service_status.go): conditions IngressReady, PredictorReady, Ready,
  Stopped as in the envtest fixture getExpectedIsvcStatus (controller/v1beta1/inferenceservice/tests_common.go:
  149-211); PredictorReady and Ready copied from the Deployment's conditions (PropagateRawStatus, 360-458; the
  condition inputs of inference_service_status_test.go:57-215), so Ready stays True while an old pod is available;
  `observedGeneration` copied from the Deployment's status (455-457), not the InferenceService's generation;
  modelStatus as PropagateModelStatus writes it (721-819; BlockedByFailedLoad as in
  inference_service_status_test.go:690-746).
"""

from __future__ import annotations

import inspect

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from components._common import history, registry
from components.deploy_model import cluster, logic, manifests, platforms, smoke
from components.deploy_model.manifests import build_inference_service
from components.deploy_model.tests import cluster_fake
from components.deploy_model.tests import test_cluster as seldon
from components.deploy_model.tests.cluster_fake import NAME, NAMESPACE, Clock, real_smoke, recording

SELECTOR = "serving.kserve.io/inferenceservice=houses"  # constants.InferenceServicePodLabelKey (constants.go:61)
SERVICE = "http://houses-predictor.models.svc.cluster.local"  # status.address.url (kube_ingress_reconciler.go:146-172)
PREDICT = f"{SERVICE}/v2/models/houses/infer"
SHA_OLD, SHA_NEW = "ab" * 32, "cd" * 32
IMAGE = "kfp-mlops-serving:1.0.0"


class FakeApi(cluster_fake.FakeApi):
    # The InferenceService CRD's group, served version and plural (config/crd/full/serving.kserve.io_inferenceservices
    # .yaml; /work/shared/reference/kserve/inferenceservice-crd.yaml:9-13).
    resource = ("serving.kserve.io", "v1beta1", "inferenceservices")


def manifest(version: str = "2", sha256: str = SHA_NEW, image: str = IMAGE) -> dict:
    return build_inference_service(
        NAME, version, f"s3://mlpipeline/mlflow/{version}/model", sha256, NAMESPACE, image=image
    )


# --- the status the controller writes (inference_service_status.go) ------------------------------------------


AVAILABLE = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
UNAVAILABLE = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
LOADED = {"transitionStatus": "UpToDate", "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"}}
PENDING = {"transitionStatus": "InProgress", "states": {"activeModelState": "", "targetModelState": "Pending"}}
FAILED_LOAD = {
    "transitionStatus": "BlockedByFailedLoad",
    "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
    "lastFailureInfo": {
        "reason": "ModelLoadFailed",
        "message": "model files do not match sha256 " + SHA_NEW,
        "exitCode": 1,
    },
}


def status(predictor: tuple = AVAILABLE, observed: int = 1, model: dict | None = None, address: str = SERVICE):
    """An InferenceService status as the controller writes it in Standard mode with no Ingress created (IngressReady
    True, address set at once): Ready mirrors PredictorReady, which mirrors the Deployment's Available condition;
    observedGeneration is the predictor Deployment's status.observedGeneration."""
    ready, reason, message = predictor
    predictor_ready = {"type": "PredictorReady", "status": ready, "reason": reason, "message": message}
    overall = {"type": "Ready", "status": ready}
    if ready != "True":  # knative's happy condition takes a False dependent's reason and message
        overall.update(reason=reason, message=message)
    return {
        "conditions": [
            {"type": "IngressReady", "status": "True"},
            predictor_ready,
            overall,
            {"type": "Stopped", "status": "False", "severity": "Info"},
        ],
        "url": "http://houses-models.example.com",
        "address": {"url": address},
        "components": {"predictor": {"url": "http://houses-predictor-models.example.com"}} if ready == "True" else {},
        "modelStatus": model or (LOADED if ready == "True" else PENDING),
        "deploymentMode": "Standard",
        "observedGeneration": observed,
    }


def deployment(
    of: dict,
    generation: int = 1,
    observed: int | None = None,
    replicas: int = 1,
    updated: int = 1,
    available: int = 1,
) -> k8s.V1Deployment:
    """The predictor Deployment the controller renders for InferenceService ``of``, as the Deployment controller
    reports it."""
    (container,) = of["spec"]["predictor"]["containers"]
    served = k8s.V1Container(
        name=container["name"],
        image=container["image"],
        args=list(container["args"]),
        env=[k8s.V1EnvVar(name=e["name"], value=e["value"]) for e in container["env"]]
        + [k8s.V1EnvVar(name="INFERENCE_SERVICE_NAME", value=NAME)],
    )
    labels = {
        **of["metadata"]["labels"],
        "serving.kserve.io/inferenceservice": NAME,
        "component": "predictor",
        "app": f"isvc.{NAME}-predictor",
    }
    return cluster_fake.deployment(
        f"{NAME}-predictor", labels, [served], generation, observed, replicas, updated, available
    )


def live_object(version: str = "1", sha256: str = SHA_OLD, state: dict | None = None) -> dict:
    """The InferenceService serving ``version``, as a GET returns it. Its own generation (7) is not its
    Deployment's (3), which its status reports: the two move apart whenever the controller renders two writes as
    one (a replace and its rollback) or the Deployment changes alone, so only the Deployment's is compared."""
    existing = manifest(version, sha256)
    existing["metadata"].update(resourceVersion="41", generation=7)
    existing["status"] = state if state is not None else status(observed=3)
    return existing


OLD, NEW = live_object("1"), manifest("2")
OLD_ROLLED_OUT = [deployment(OLD, generation=3)]
NEW_ROLLED_OUT = [deployment(NEW, generation=4)]  # the replace changed the pod template: generation 3 -> 4
READY_NEW = status(observed=4)


def roll_out(api, smoke=lambda url: None, timeout=60.0, clock=None, body=None):
    clock = clock or Clock()
    return cluster.roll_out(
        api, body or manifest(), smoke, timeout=timeout, poll_seconds=5.0, clock=clock, sleep=clock.sleep
    )


# --- create, replace, wait ------------------------------------------------------------------------------------


def test_a_new_inference_service_is_created_and_waited_for_until_ready():
    api = FakeApi(
        None,
        [{}, status(UNAVAILABLE), status(UNAVAILABLE), status(AVAILABLE)],
        [[], [deployment(NEW, updated=1, available=0)], [deployment(NEW)], [deployment(NEW)]],
    )
    clock = Clock()
    smoked, smoke_test = recording()

    rollout = roll_out(api, smoke=smoke_test, clock=clock)

    assert rollout == cluster.Rollout(SERVICE, PREDICT, replaced_existing=False)
    assert api.verbs() == ["get", "create", *["get", "list"] * 4]
    assert api.calls[1] == ("create", NAMESPACE, NAME, manifest())
    assert set(api.resources) == {("serving.kserve.io", "v1beta1", "inferenceservices")}
    assert api.calls[3] == ("list", NAMESPACE, SELECTOR)
    assert clock.slept == [5.0] * 3  # the third poll: rolled out, but the status still says Ready False
    assert smoked == [SERVICE]


def test_a_replace_carries_the_live_resource_version_and_the_new_spec():
    api = FakeApi(live_object("1"), [status(observed=3), READY_NEW], [OLD_ROLLED_OUT, NEW_ROLLED_OUT])

    rollout = roll_out(api)

    assert rollout.replaced_existing
    assert api.verbs() == ["get", "replace", *["get", "list"] * 2]
    (verb, namespace, name, sent) = api.calls[1]
    assert (verb, namespace, name) == ("replace", NAMESPACE, NAME)
    assert sent["metadata"]["resourceVersion"] == "41"
    assert (
        sent["spec"] == manifest()["spec"] and sent["metadata"]["annotations"] == manifest()["metadata"]["annotations"]
    )
    assert set(api.resources) == {FakeApi.resource}
    assert api.live["metadata"]["generation"] == 8  # the API server's answer: a new spec, a new generation


def test_ready_false_with_the_controllers_reason_is_waited_for_until_true():
    """The Deployment has rolled the new pod out, but the controller has not written its status since: Ready False
    (MinimumReplicasUnavailable) keeps the smoke test waiting until it says True."""
    api = FakeApi(None, [status(UNAVAILABLE), status(UNAVAILABLE), status(AVAILABLE)], [[deployment(NEW)]])
    clock = Clock()
    smoked, smoke_test = recording()

    roll_out(api, smoke=smoke_test, clock=clock)

    assert clock.slept == [5.0, 5.0] and smoked == [SERVICE]


def test_ready_false_until_the_deadline_deletes_the_new_object_and_says_why():
    api = FakeApi(None, [status(UNAVAILABLE)], [[deployment(NEW)]])
    smoked, smoke_test = recording()

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, smoke=smoke_test, timeout=20.0)

    message = str(error.value)
    assert message.startswith(
        "InferenceService models/houses not rolled out before the timeout: Ready is False (MinimumReplicasUnavailable: "
        "Deployment does not have minimum availability.)"
    )
    assert "see `kubectl -n models describe inferenceservice houses` and `kubectl -n models get pods -l " in message
    assert f"-l {SELECTOR}`" in message and "deleted the new InferenceService models/houses" in message
    assert api.calls[-1] == ("delete", NAMESPACE, NAME) and api.live is None
    assert api.resources[-1] == FakeApi.resource
    assert smoked == []


def test_a_new_pod_that_never_becomes_available_times_out_and_restores_the_previous_spec():
    api = FakeApi(live_object("1"), [status(observed=4)], [[deployment(NEW, 4, replicas=2, updated=1, available=0)]])
    smoked, smoke_test = recording()

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, smoke=smoke_test, timeout=20.0)

    message = str(error.value)
    assert "InferenceService models/houses not rolled out before the timeout: " in message
    assert "Deployment houses-predictor: 1 old replica(s) pending termination" in message
    assert "(Ready True, transitionStatus UpToDate, observedGeneration 4)" in message
    assert "restored the previous spec of InferenceService models/houses" in message
    assert smoked == []
    verb, _, _, restored = api.calls[-1]
    assert verb == "replace" and restored["spec"] == OLD["spec"]
    assert restored["metadata"]["annotations"]["kfp-mlops/model-version"] == "1"
    assert restored["metadata"]["resourceVersion"] == "42"  # the live object's after our replace


# --- an old pod still serving never passes ------------------------------------------------------------------


def test_the_previous_generations_ready_status_and_old_deployment_never_pass():
    """Right after the replace KServe still says Ready True (observedGeneration 3: the old Deployment's) and the
    Deployment still runs the old container; nothing counts until the rollout, and the smoke test is never
    called in its place."""
    api = FakeApi(live_object("1"), [status(observed=3)], [OLD_ROLLED_OUT])
    smoked, smoke_test = recording()

    with pytest.raises(cluster.ClusterDeploymentError, match="still has the previous model container") as error:
        roll_out(api, smoke=smoke_test, timeout=20.0)

    assert smoked == [] and "restored the previous spec" in str(error.value)


def test_a_status_older_than_the_rolled_out_deployment_is_not_taken_for_it():
    """The new pod template is rolled out (Deployment generation 4), but the status is still the one KServe wrote
    from generation 3 (Ready True, copied from the old pods' availability): only a status that has observed
    generation 4 counts."""
    api = FakeApi(
        live_object("1"),
        [status(observed=3)] * 4 + [READY_NEW],  # the first answers the GET before the replace
        [
            OLD_ROLLED_OUT,
            [deployment(NEW, 4, observed=3)],  # new template, not yet observed by the Deployment controller
            NEW_ROLLED_OUT,  # rolled out, but KServe's status has not caught up
            NEW_ROLLED_OUT,
        ],
    )
    clock = Clock()
    smoked, smoke_test = recording()

    roll_out(api, smoke=smoke_test, clock=clock)

    assert clock.slept == [5.0] * 3 and smoked == [SERVICE]


def test_a_deployment_with_the_new_image_but_other_args_is_the_previous_one():
    """Same image, another digest in the container's args: still the previous model."""
    stale = deployment(NEW, 4)
    stale.spec.template.spec.containers[0].args = list(manifests.model_container(OLD)["args"])
    api = FakeApi(live_object("1"), [READY_NEW], [[stale]])

    with pytest.raises(cluster.ClusterDeploymentError, match="Deployment houses-predictor still has the previous"):
        roll_out(api, timeout=10.0)


def test_a_new_image_of_the_same_model_version_is_waited_for_too():
    current = live_object("2", SHA_NEW)
    api = FakeApi(current, [READY_NEW], [[deployment(manifest(image="kfp-mlops-serving:0.9.0"), 4)]])

    with pytest.raises(cluster.ClusterDeploymentError, match="still has the previous model container"):
        roll_out(api, timeout=10.0)


@pytest.mark.serving
def test_a_real_server_still_reporting_the_previous_digest_never_passes(real_server):
    """Everything in the cluster says rolled out and ready, but what answers has another digest: the smoke test
    refuses it until the deadline and the previous spec is restored."""
    server, bundle, rows = real_server
    api = FakeApi(live_object("1"), [status(observed=4, address=server.base_url)], [NEW_ROLLED_OUT])

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, smoke=real_smoke(bundle, rows, sha256=SHA_NEW), timeout=10.0)

    message = str(error.value)
    assert f"smoke test of {server.base_url} still failing after 10 s" in message
    assert f"serves sha256 {bundle.card.sha256}, expected {SHA_NEW}" in message
    assert "restored the previous spec of InferenceService models/houses" in message
    assert api.calls[-1][0] == "replace" and api.calls[-1][3]["spec"] == OLD["spec"]


@pytest.mark.serving
def test_a_rollout_passes_once_the_real_server_reports_the_new_digest(real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    api = FakeApi(live_object("1"), [status(observed=4, address=server.base_url)], [[deployment(new, 4)]])

    rollout = roll_out(api, smoke=real_smoke(bundle, rows), body=new)

    assert rollout.base_url == server.base_url
    assert rollout.predictions_url == f"{server.base_url}/v2/models/houses/infer"


# --- smoke test failures, definitive failures -----------------------------------------------------------------


def test_a_smoke_test_failing_until_the_deadline_rolls_back():
    api = FakeApi(live_object("1"), [READY_NEW], [NEW_ROLLED_OUT])
    wrong = smoke.DeploymentError("smoke test: served predictions [1.0] differ from the model's [2.0]")
    smoked, smoke_test = recording([wrong] * 10)

    with pytest.raises(cluster.ClusterDeploymentError, match=r"smoke test of .* still failing after 20 s") as error:
        roll_out(api, smoke=smoke_test, timeout=20.0)

    assert smoked[0] == SERVICE and "restored the previous spec of InferenceService" in str(error.value)
    assert api.calls[-1][0] == "replace" and api.calls[-1][3]["spec"] == OLD["spec"]


def test_a_model_that_fails_to_load_deletes_the_new_object_at_once():
    api = FakeApi(None, [{}, status(UNAVAILABLE, model=FAILED_LOAD)], [[deployment(NEW, updated=1, available=0)]])
    clock = Clock()

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api, clock=clock, timeout=600.0)

    assert str(error.value) == (
        "InferenceService models/houses failed: BlockedByFailedLoad (ModelLoadFailed: model files do not match "
        f"sha256 {SHA_NEW}); deleted the new InferenceService models/houses"
    )
    assert clock.now == 5.0 and api.verbs()[-1] == "delete"


def test_a_load_failure_of_the_new_pods_after_a_replace_rolls_back_at_once():
    """The previous spec was serving (its pods have gone: e.g. evicted); the status, written after the new pod
    template was observed (observedGeneration 4), says the new model failed to load."""
    api = FakeApi(
        live_object("1"),
        [status(observed=3), status(UNAVAILABLE, observed=4, model=FAILED_LOAD)],
        [OLD_ROLLED_OUT, [deployment(NEW, 4, updated=1, available=0)]],
    )
    clock = Clock()

    with pytest.raises(cluster.ClusterDeploymentError, match="failed: BlockedByFailedLoad") as error:
        roll_out(api, clock=clock, timeout=600.0)

    assert clock.now == 5.0 and "restored the previous spec" in str(error.value)
    assert api.calls[-1][3]["spec"] == OLD["spec"]


def test_the_previous_specs_load_failure_does_not_stop_the_new_rollout():
    """The previous spec could not load (BlockedByFailedLoad, observedGeneration 3): the new spec, replacing it,
    rolls out and serves; the stale failure decides nothing."""
    broken = status(UNAVAILABLE, observed=3, model=FAILED_LOAD)
    api = FakeApi(
        live_object("1", state=broken),
        [broken, broken, broken, READY_NEW],  # the first answers the GET before the replace
        [
            [deployment(OLD, 3, available=0)],
            [deployment(NEW, 4, observed=3, available=0)],  # rendered, not yet observed: the status is still old
            NEW_ROLLED_OUT,
        ],
    )

    assert roll_out(api).replaced_existing


@pytest.mark.parametrize(
    ("failure", "reported"),
    [
        (ApiException(status=503, reason="Service Unavailable"), "Kubernetes API error while waiting: 503"),
        (ApiException(status=403, reason="Forbidden"), "Kubernetes API error while waiting: 403 Forbidden"),
    ],
    ids=["503", "forbidden-deployments"],
)
def test_an_api_error_in_the_middle_of_a_rollout_rolls_back(failure, reported):
    api = FakeApi(live_object("1"), [status(observed=3)], [OLD_ROLLED_OUT, failure])
    smoked, smoke_test = recording()

    with pytest.raises(cluster.ClusterDeploymentError, match=reported) as error:
        roll_out(api, smoke=smoke_test)

    assert "restored the previous spec of InferenceService models/houses" in str(error.value)
    assert smoked == [] and api.calls[-1][3]["spec"] == OLD["spec"]


def test_a_webhook_refusal_changes_nothing_and_is_reported_with_its_message():
    api = FakeApi(None, [])
    refusal = ApiException(status=400, reason="Bad Request")
    refusal.body = '{"message": "admission webhook \\"inferenceservice.kserve-webhook-server.validator\\" denied"}'
    api.refuse["create"] = refusal

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api)

    assert str(error.value) == (
        "writing InferenceService models/houses was refused, nothing was changed: 400 Bad Request: admission webhook "
        '"inferenceservice.kserve-webhook-server.validator" denied'
    )
    assert api.verbs() == ["get", "create"]


def test_a_failed_rollback_names_the_kubectl_command_for_the_inference_service():
    api = FakeApi(live_object("1"), [status(observed=3)], [OLD_ROLLED_OUT, ApiException(status=503, reason="Down")])
    original = api.replace_namespaced_custom_object

    def replace(*args):
        if api.verbs().count("replace") >= 1:
            raise ApiException(status=500, reason="Internal Server Error")
        return original(*args)

    api.replace_namespaced_custom_object = replace

    with pytest.raises(cluster.ClusterDeploymentError) as error:
        roll_out(api)

    assert "rolling back InferenceService models/houses failed too (Kubernetes API error while rolling back: 500" in (
        str(error.value)
    )
    assert "check it with `kubectl -n models get inferenceservice houses -o yaml`" in str(error.value)


# --- the platform: what KServe writes -------------------------------------------------------------------------


def test_without_an_address_the_base_url_is_the_predictor_service_on_port_80():
    api = FakeApi(None, [{**status(observed=1), "address": {}}], [[deployment(NEW)]])

    rollout = roll_out(api)

    assert (rollout.base_url, rollout.predictions_url) == (SERVICE, PREDICT)


def test_the_platform_is_read_from_the_manifest():
    assert platforms.for_manifest(manifest()) is platforms.KSERVE
    assert platforms.for_manifest(seldon.manifest()) is platforms.SELDON
    assert {platform.name for platform in platforms.PLATFORMS} == set(manifests.SERVING_PLATFORMS)
    with pytest.raises(
        smoke.DeploymentError, match=r"apiVersion/kind serving\.kserve\.io/v1alpha1 InferenceGraph is neither"
    ):
        platforms.for_manifest({**manifest(), "apiVersion": "serving.kserve.io/v1alpha1", "kind": "InferenceGraph"})


# --- one sequence for both kinds -------------------------------------------------------------------------------


def test_the_platforms_describe_objects_and_hold_no_step_of_the_sequence():
    """Applying, waiting, smoke-testing and rolling back need the API, the clock or the smoke test: no method of
    either platform takes one, so every step of the sequence is cluster.py's, shared."""
    sequence_inputs = set(inspect.signature(cluster.roll_out).parameters) - {"manifest"}
    for platform in (platforms.SELDON, platforms.KSERVE):
        for name, member in inspect.getmembers(type(platform), callable):
            if name.startswith("__"):
                continue
            assert not sequence_inputs & set(inspect.signature(member).parameters), (platform.name, name)


@pytest.mark.serving
def test_both_kinds_go_through_the_one_roll_out(registered, real_server, monkeypatch):
    """logic.deploy_kubernetes hands both kinds to cluster.roll_out, whose one wait serves both platforms."""
    server, bundle, rows = real_server
    rolled_out, waited_for = [], []
    roll_out, wait = cluster.roll_out, cluster._wait_rolled_out

    def spy_roll_out(api, manifest, *args, **kwargs):
        rolled_out.append(manifest["kind"])
        return roll_out(api, manifest, *args, **kwargs)

    def spy_wait(api, platform, *args, **kwargs):
        waited_for.append(platform)
        return wait(api, platform, *args, **kwargs)

    monkeypatch.setattr(cluster, "roll_out", spy_roll_out)
    monkeypatch.setattr(cluster, "_wait_rolled_out", spy_wait)
    seldon_manifest = seldon.manifest("2", bundle.card.sha256)
    seldon_api = seldon.FakeApi(
        seldon.live_object("1"), [seldon.served_status(server)], [[seldon.deployment(seldon_manifest)]]
    )
    kserve_manifest = manifest("2", bundle.card.sha256)
    kserve_api = FakeApi(
        live_object("1"), [status(observed=4, address=server.base_url)], [[deployment(kserve_manifest, 4)]]
    )

    for body, api in ((seldon_manifest, seldon_api), (kserve_manifest, kserve_api)):
        logic.deploy_kubernetes(
            body, NAME, "2", bundle.card.sha256, rows, bundle.predict(rows), "", timeout=30.0, api=api
        )

    assert rolled_out == ["SeldonDeployment", "InferenceService"]
    assert waited_for == [platforms.SELDON, platforms.KSERVE]
    assert set(seldon_api.resources) == {seldon.FakeApi.resource} and set(kserve_api.resources) == {FakeApi.resource}


# --- the whole target: registry alias -------------------------------------------------------------------------


@pytest.mark.serving
def test_success_moves_champion_and_records_the_platform(registered, real_server):
    server, bundle, rows = real_server
    new = manifest("2", bundle.card.sha256)
    api = FakeApi(live_object("1"), [status(observed=4, address=server.base_url)], [[deployment(new, 4)]])

    endpoint = logic.deploy_kubernetes(
        new, NAME, "2", bundle.card.sha256, rows, bundle.predict(rows), "", timeout=30.0, api=api
    )

    assert endpoint == f"{server.base_url}/v2/models/houses/infer"
    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "2"
    tags = registered.get_model_version(NAME, "2").tags
    assert {key: tags[key] for key in tags if key.startswith("deployment.")} == {
        "deployment.target": "kubernetes",
        "deployment.platform": "kserve",
        "deployment.namespace": NAMESPACE,
        "deployment.name": NAME,
        "deployment.endpoint": endpoint,
    }
    [move] = [move for move in history.read("", NAME) if move.alias == registry.CHAMPION]
    assert (move.from_version, move.to_version) == ("1", "2")


FAILURES = {  # what the cluster shows at the first poll (timeout 0: no second one), per failure path
    "failed-to-load": lambda new, served: (
        [status(UNAVAILABLE, observed=4, model=FAILED_LOAD)],
        [[deployment(new, 4, updated=1, available=0)]],
    ),
    "old-pod-serving": lambda new, served: ([status(observed=3, address=served)], [OLD_ROLLED_OUT]),
    "old-model-answers": lambda new, served: ([status(observed=4, address=served)], [[deployment(new, 4)]]),
    "api-error": lambda new, served: ([status(observed=3)], [ApiException(status=503, reason="Unavailable")]),
}


@pytest.mark.serving
@pytest.mark.parametrize("failure", FAILURES)
def test_every_failure_leaves_champion_where_it_was(registered, real_server, failure):
    server, bundle, rows = real_server
    sha256 = SHA_NEW if failure == "old-model-answers" else bundle.card.sha256  # the server has the bundle's
    new = manifest("2", sha256)
    api = FakeApi(live_object("1"), *FAILURES[failure](new, server.base_url))

    with pytest.raises(logic.DeploymentError, match="deploying houses v2 to Kubernetes failed: ") as error:
        logic.deploy_kubernetes(new, NAME, "2", sha256, rows, bundle.predict(rows), "", timeout=0.0, api=api)

    assert "restored the previous spec of InferenceService models/houses" in str(error.value)
    assert api.live["spec"] == OLD["spec"]
    assert str(registered.get_model_version_by_alias(NAME, registry.CHAMPION).version) == "1"
    assert not [key for key in registered.get_model_version(NAME, "2").tags if key.startswith("deployment.")]
    assert [move for move in history.read("", NAME) if move.alias == registry.CHAMPION] == []
