"""serving.local_server, the parts that need no model server: URLs, the example curl, what a user is told about a
server, its health check, and reading server records."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

import model_bundle
from serving import local_server
from serving.local_server import LocalServer


def server_for(model_dir: Path | str, pid: int = 1, http_port: int = 9123) -> LocalServer:
    return LocalServer(
        pid=pid,
        model_dir=str(model_dir),
        model_sha256="ab" * 32,
        http_port=http_port,
        metrics_port=6123,
        grpc_port=http_port + 500,
        log_file="/dev/null",
    )


def test_urls_are_on_localhost():
    server = server_for("/models/houses")

    assert server.predictions_url == "http://127.0.0.1:9123/api/v1.0/predictions"
    assert server.metrics_url == "http://127.0.0.1:6123/metrics"


def test_example_curl_posts_the_cards_input_example(regression_bundle):
    bundle, _ = regression_bundle
    example = bundle.card.input_example

    command = shlex.split(server_for(bundle.directory).example_curl().replace("\\\n", " "))

    assert command[:4] == ["curl", "-s", "-X", "POST"]
    assert command[4] == "http://127.0.0.1:9123/api/v1.0/predictions"
    assert command[command.index("-H") + 1] == "Content-Type: application/json"
    body = json.loads(command[command.index("-d") + 1])
    # In the model's feature order, as a reader of the curl expects (the card stores the example sorted by key).
    assert body == {"data": {"names": bundle.feature_names, "ndarray": [[example[n] for n in bundle.feature_names]]}}


def test_example_curl_without_input_example_sends_an_empty_row(tmp_path):
    card = model_bundle.ModelCard(target="price", task="regression", features=[{"name": "size", "type": "numeric"}])
    (tmp_path / "model.json").write_text(json.dumps(card.to_json()))

    command = shlex.split(server_for(tmp_path).example_curl().replace("\\\n", " "))

    assert json.loads(command[command.index("-d") + 1]) == {"data": {"names": [], "ndarray": [[]]}}


def test_running_lists_only_servers_whose_process_is_alive(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = server_for("/models/a", pid=os.getpid(), http_port=9001)
    gone = server_for("/models/b", pid=dead.pid, http_port=9002)
    for server in (alive, gone):
        (tmp_path / f"server-{server.http_port}.json").write_text(json.dumps(asdict(server)))

    assert local_server.running(tmp_path) == [alive]


def test_running_in_an_empty_state_directory_is_empty(tmp_path):
    assert local_server.running(tmp_path) == []


def test_stop_without_a_record_reports_nothing_stopped(tmp_path):
    assert local_server.stop(9123, tmp_path) is False


def test_serving_environment_can_be_chosen(monkeypatch, tmp_path):
    monkeypatch.setenv(local_server.SERVING_VENV_ENV, str(tmp_path / "venv"))

    assert local_server.serving_venv() == tmp_path / "venv"


def test_start_without_the_serving_environment_says_how_to_create_it(monkeypatch, tmp_path):
    monkeypatch.setenv(local_server.SERVING_VENV_ENV, str(tmp_path / "no-venv"))

    with pytest.raises(local_server.LocalServerError, match=r"seldon-core-microservice not found: create the serving"):
        local_server.start(tmp_path / "model", "ab" * 32, tmp_path / "state", http_port=9123)


def test_describe_tells_where_the_server_answers_and_how_to_try_it(regression_bundle):
    bundle, _ = regression_bundle
    server = server_for(bundle.directory)

    text = local_server.describe(server)

    assert f"serving {bundle.directory}" in text
    assert "predictions: http://127.0.0.1:9123/api/v1.0/predictions" in text
    assert "metrics:     http://127.0.0.1:6123/metrics" in text
    assert text.split("try it:\n", 1)[1].strip() == server.example_curl()


class _HealthStub(BaseHTTPRequestHandler):
    """Answers GET /health/status with the server's configured body, as the model server's health check does."""

    def do_GET(self):
        body = self.server.body if self.path == "/health/status" else b""
        self.send_response(200 if self.path == "/health/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def health_stub(stub_server):
    stub = stub_server(_HealthStub)
    stub.body = b"{}"
    return stub


def test_health_is_the_models_status_from_the_health_check(health_stub):
    health_stub.body = json.dumps({"jsonData": {"status": "ok", "target": "price", "sha256": "cd" * 32}}).encode()

    status = local_server.health(server_for("/models/a", http_port=health_stub.server_address[1]))

    assert status == {"status": "ok", "target": "price", "sha256": "cd" * 32}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"jsonData": "ok"}'], ids=["not-json", "list", "text"])
def test_health_is_none_when_the_answer_is_not_a_status(health_stub, body):
    health_stub.body = body

    assert local_server.health(server_for("/models/a", http_port=health_stub.server_address[1])) is None


def test_health_is_none_when_nothing_listens(free_ports):
    [port] = free_ports(1)

    assert local_server.health(server_for("/models/a", http_port=port)) is None
