"""Fixtures of the rollout tests of both kinds (test_cluster.py, test_cluster_kserve.py): the real model server
that the controller's address points to, and a registry whose champion the deploy step may move."""

from __future__ import annotations

import pytest

from components._common import registry
from components.deploy_model.tests.cluster_fake import NAME
from components.register_model.logic import register


@pytest.fixture(scope="module")
def real_server(regression_bundle, tmp_path_factory, free_ports):
    """The real OIP server for the regression bundle, named as the deploy step names the model in the cluster."""
    from serving import local_server

    bundle, test_rows = regression_bundle
    state = tmp_path_factory.mktemp("cluster-smoke-state")
    http, metrics, grpc = free_ports(3)
    server = local_server.start(
        bundle.directory, bundle.card.sha256, state, http, metrics, grpc, model_name=NAME, timeout=120
    )
    try:
        yield server, bundle, test_rows[bundle.feature_names].head(5)
    finally:
        local_server.stop(server.http_port, state)


@pytest.fixture
def registered(mlflow_state, regression_bundle):
    """Version 1 champion, version 2 registered: what the deploy step finds (in the local registry)."""
    bundle, _ = regression_bundle
    register("", NAME, bundle.directory, {"r2": 0.9}, True, "approved", pipeline_job_id="run-1")
    register("", NAME, bundle.directory, {"r2": 0.91}, True, "approved", pipeline_job_id="run-2")
    client = registry.connect("")
    client.set_registered_model_alias(NAME, registry.CHAMPION, "1")
    return client
