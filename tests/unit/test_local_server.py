"""serving.local_server, the parts that need no running model server: URLs, the example curl, what a user is told
about a server, its health check (the model's metadata), a start that fails, and reading server records."""

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


def server_for(model_dir: Path | str, pid: int = 1, http_port: int = 9123, model_name: str = "houses") -> LocalServer:
    return LocalServer(
        pid=pid,
        model_dir=str(model_dir),
        model_sha256="ab" * 32,
        http_port=http_port,
        metrics_port=6123,
        grpc_port=http_port + 500,
        log_file="/dev/null",
        model_name=model_name,
    )


def test_urls_are_on_localhost():
    server = server_for("/models/houses")

    assert server.base_url == "http://127.0.0.1:9123"
    assert server.infer_url == "http://127.0.0.1:9123/v2/models/houses/infer"
    assert server.metadata_url == "http://127.0.0.1:9123/v2/models/houses"
    assert server.metrics_url == "http://127.0.0.1:6123/metrics"


def test_a_record_written_before_model_names_reads_as_model(tmp_path):
    record = asdict(server_for("/models/a", pid=os.getpid()))
    del record["model_name"]
    (tmp_path / "server-9123.json").write_text(json.dumps(record))

    assert local_server.running(tmp_path)[0].infer_url == "http://127.0.0.1:9123/v2/models/model/infer"


def test_example_curl_posts_the_cards_input_example_as_an_oip_table(regression_bundle):
    bundle, _ = regression_bundle
    example = bundle.card.input_example

    command = shlex.split(server_for(bundle.directory).example_curl().replace("\\\n", " "))

    assert command[:4] == ["curl", "-s", "-X", "POST"]
    assert command[4] == "http://127.0.0.1:9123/v2/models/houses/infer"
    assert command[command.index("-H") + 1] == "Content-Type: application/json"
    body = json.loads(command[command.index("-d") + 1])
    assert body["parameters"] == {"content_type": "pd"}
    # In the model's feature order, as a reader of the curl expects (the card stores the example sorted by key).
    assert [entry["name"] for entry in body["inputs"]] == bundle.feature_names
    for entry, feature in zip(body["inputs"], bundle.features, strict=True):
        assert entry["shape"] == [1] and entry["data"] == [example[feature["name"]]]
        value = example[feature["name"]]
        # Typed as the value is, the way serving.oip.table_request types any rows: the server accepts each.
        expected = {bool: "BOOL", int: "INT64", float: "FP64", str: "BYTES", type(None): "FP64"}[type(value)]
        assert entry["datatype"] == expected


def test_example_curl_without_input_example_sends_no_inputs(tmp_path):
    card = model_bundle.ModelCard(target="price", task="regression", features=[{"name": "size", "type": "numeric"}])
    (tmp_path / "model.json").write_text(json.dumps(card.to_json()))

    command = shlex.split(server_for(tmp_path).example_curl().replace("\\\n", " "))

    assert json.loads(command[command.index("-d") + 1]) == {"parameters": {"content_type": "pd"}, "inputs": []}


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


def test_start_runs_the_entry_point_and_reports_why_it_exited(tmp_path, free_ports):
    """The server is ``python -m serving`` with flags; when it stops at once, start says why, from its log."""
    http_port, metrics_port, grpc_port = free_ports(3)

    with pytest.raises(local_server.LocalServerError) as failed:
        local_server.start(tmp_path / "no-model", "ab" * 32, tmp_path / "state", http_port, metrics_port, grpc_port)

    message = str(failed.value)
    assert "model server exited with code 1" in message
    assert f"no model card: {tmp_path / 'no-model' / 'model.json'} does not exist" in message
    assert local_server.running(tmp_path / "state") == []


def test_model_parameters_must_be_plain_values(tmp_path):
    with pytest.raises(local_server.LocalServerError, match="model parameter 'max_rows' must be an int"):
        local_server.start(tmp_path / "model", "ab" * 32, tmp_path / "state", parameters={"max_rows": [1]})


def test_describe_tells_where_the_server_answers_and_how_to_try_it(regression_bundle):
    bundle, _ = regression_bundle
    server = server_for(bundle.directory)

    text = local_server.describe(server)

    assert f"serving {bundle.directory} as model 'houses'" in text
    assert "predictions: http://127.0.0.1:9123/v2/models/houses/infer" in text
    assert "metadata:    http://127.0.0.1:9123/v2/models/houses" in text
    assert "metrics:     http://127.0.0.1:6123/metrics" in text
    assert "gRPC:        127.0.0.1:9623 (inference.GRPCInferenceService)" in text
    assert text.split("try it:\n", 1)[1].strip() == server.example_curl()


class _MetadataStub(BaseHTTPRequestHandler):
    """Answers GET /v2/models/houses with the server's configured body, as the model server's metadata does."""

    def do_GET(self):
        found = self.path == "/v2/models/houses"
        body = self.server.body if found else b""
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def metadata_stub(stub_server):
    stub = stub_server(_MetadataStub)
    stub.body = b"{}"
    return stub


def test_health_is_the_served_models_metadata(metadata_stub):
    metadata = {"name": "houses", "versions": ["3"], "parameters": {"sha256": "cd" * 32, "target": "price"}}
    metadata_stub.body = json.dumps(metadata).encode()

    assert local_server.health(server_for("/models/a", http_port=metadata_stub.server_address[1])) == metadata


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"name": "houses"}'], ids=["not-json", "list", "no-parameters"])
def test_health_is_none_when_the_answer_is_not_metadata(metadata_stub, body):
    metadata_stub.body = body

    assert local_server.health(server_for("/models/a", http_port=metadata_stub.server_address[1])) is None


def test_health_is_none_for_another_model_name(metadata_stub):
    metadata_stub.body = json.dumps({"name": "houses", "parameters": {}}).encode()
    server = server_for("/models/a", http_port=metadata_stub.server_address[1], model_name="other")

    assert local_server.health(server) is None


def test_health_is_none_when_nothing_listens(free_ports):
    [port] = free_ports(1)

    assert local_server.health(server_for("/models/a", http_port=port)) is None
