"""The local model servers: one per HTTP port, each recorded in the state directory, started, listed and stopped
(also from the command line: ``make serve``, ``make status``, ``make stop``, ``make clean``), and how a user is told
to call one.

Used by the deploy step (target ``local``) and the Makefile. Each server is the serving image's own entry point,
``python -m serving`` (the Open Inference Protocol server, serving.app), run by this interpreter with command-line
flags, in its own process group (serving.processes), with a record ``server-<port>.json`` and its log
``server-<port>.log`` in the state directory.

    python -m serving.local_server start --model-dir DIR [--model-name model] [--port 9000] [--metrics-port 6000]
    python -m serving.local_server status
    python -m serving.local_server stop [--port 9000]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

import model_bundle
from serving.oip import table_request
from serving.processes import (
    HOST,
    LocalServerError,
    is_alive,
    port_in_use,
    spawn,
    stop_group,
    wait_healthy,
    wait_ports_free,
)


@dataclass(frozen=True)
class LocalServer:
    pid: int
    model_dir: str
    model_sha256: str
    http_port: int
    metrics_port: int
    grpc_port: int
    log_file: str
    model_name: str = "model"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def infer_url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_name}/infer"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_name}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    def example_curl(self) -> str:
        """A ready-to-paste curl predicting the model card's input example (a real training row) as an OIP table."""
        card = model_bundle.read_card(self.model_dir)
        body = json.dumps(example_request(card))
        return f"curl -s -X POST {self.infer_url} -H 'Content-Type: application/json' \\\n     -d {shlex.quote(body)}"


def example_request(card: model_bundle.ModelCard) -> dict:
    """An OIP table request of the card's input example (a real training row), in the model's feature order."""
    names = [feature["name"] for feature in card.features if feature["name"] in card.input_example]
    return table_request(pd.DataFrame([[card.input_example[name] for name in names]], columns=names))


def start(
    model_dir: str | Path,
    model_sha256: str,
    state_dir: str | Path,
    http_port: int = 9000,
    metrics_port: int = 6000,
    grpc_port: int | None = None,
    timeout: float = 120.0,
    parameters: dict[str, bool | int | float | str] | None = None,
    model_name: str = "model",
) -> LocalServer:
    """Starts a server for ``model_dir`` on ``http_port`` (replacing the one this tool runs there) under the OIP
    model name ``model_name``, and waits until the model reports ready. Raises LocalServerError with the log's
    tail when it does not.

    ``parameters`` are further model parameters (serving.settings), e.g. ``{"max_rows": 1000}``.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    grpc_port = grpc_port if grpc_port is not None else http_port + 500
    flags = [item for name, value in (parameters or {}).items() for item in (f"--{name}", _flag_value(name, value))]
    stop(http_port, state_dir)
    for port in (http_port, metrics_port, grpc_port):
        if port_in_use(port):
            raise LocalServerError(f"port {port} is already in use by another program; choose other ports")

    log_file = state_dir / f"server-{http_port}.log"
    command = [
        sys.executable,
        "-m",
        "serving",
        "--model_dir",
        str(Path(model_dir).resolve()),
        "--model_name",
        model_name,
        "--http_port",
        str(http_port),
        "--grpc_port",
        str(grpc_port),
        "--metrics_port",
        str(metrics_port),
        "--model_sha256",
        model_sha256,
        *flags,
    ]
    # One OpenMP thread: scikit-learn's thread pool costs far more than it saves on single requests.
    env = {"OMP_NUM_THREADS": "1", **os.environ}
    process = spawn(command, log_file, env)
    server = LocalServer(
        process.pid,
        str(Path(model_dir).resolve()),
        model_sha256,
        http_port,
        metrics_port,
        grpc_port,
        str(log_file),
        model_name,
    )
    _record_path(state_dir, http_port).write_text(json.dumps(asdict(server), indent=2))
    try:
        wait_healthy(f"{server.metadata_url}/ready", process, log_file, timeout, "model server")
    except LocalServerError:
        stop(http_port, state_dir)
        raise
    return server


def _flag_value(name: str, value: bool | int | float | str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LocalServerError(f"model parameter {name!r} must be an int, float or str, got {value!r}")
    return str(value)


def health(server: LocalServer, timeout: float = 10.0) -> dict | None:
    """The served model's OIP metadata (its ``parameters`` hold the sha256 of the model it loaded), or None when
    the server does not answer it."""
    try:
        with urllib.request.urlopen(server.metadata_url, timeout=timeout) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return None
    return body if isinstance(body, dict) and isinstance(body.get("parameters"), dict) else None


def stop(http_port: int, state_dir: str | Path, timeout: float = 20.0) -> bool:
    """Stops the server this tool started on ``http_port``; returns False when there was none."""
    record = _record_path(Path(state_dir), http_port)
    if not record.exists():
        return False
    server = LocalServer(**json.loads(record.read_text()))
    stop_group(server.pid, timeout)
    # The process may be gone while its sockets still close (threads exiting after the leader): a new server on the
    # same ports must find them free.
    wait_ports_free((server.http_port, server.metrics_port, server.grpc_port), timeout=10.0)
    record.unlink(missing_ok=True)
    return True


def running(state_dir: str | Path) -> list[LocalServer]:
    """The servers recorded in ``state_dir`` whose process is still alive."""
    servers = []
    for record in sorted(Path(state_dir).glob("server-*.json")):
        server = LocalServer(**json.loads(record.read_text()))
        if is_alive(server.pid):
            servers.append(server)
    return servers


def stop_all(state_dir: str | Path) -> list[int]:
    ports = [int(record.stem.split("-", 1)[1]) for record in Path(state_dir).glob("server-*.json")]
    return [port for port in sorted(ports) if stop(port, state_dir)]


def _record_path(state_dir: Path, http_port: int) -> Path:
    return state_dir / f"server-{http_port}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.local_server", description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", default=os.environ.get("KFP_MLOPS_STATE_DIR", "local_state"))
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="serve a model directory")
    start_parser.add_argument("--model-dir", required=True)
    start_parser.add_argument("--model-name", default="model", help="the OIP model name (default: model)")
    start_parser.add_argument("--sha256", default="", help="expected digest of model.joblib (default: model.json's)")
    start_parser.add_argument("--port", type=int, default=9000)
    start_parser.add_argument("--metrics-port", type=int, default=6000)
    stop_parser = commands.add_parser("stop", help="stop one server, or all of them")
    stop_parser.add_argument("--port", type=int, default=None)
    commands.add_parser("status", help="list running servers")
    args = parser.parse_args(argv)
    state_dir = Path(args.state_dir) / "serving"

    if args.command == "start":
        sha256 = args.sha256 or model_bundle.read_card(args.model_dir).sha256
        try:
            server = start(args.model_dir, sha256, state_dir, args.port, args.metrics_port, model_name=args.model_name)
        except LocalServerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(describe(server))
    elif args.command == "stop":
        if args.port is None:
            stopped = stop_all(state_dir)
        else:
            stopped = [args.port] if stop(args.port, state_dir) else []
        print(f"stopped server(s) on port(s) {stopped}" if stopped else "no local model server was running")
    else:
        servers = running(state_dir)
        for server in servers:
            print(describe(server))
        if not servers:
            print("no local model server is running")
    return 0


def describe(server: LocalServer) -> str:
    """What a user needs to use the server: its model, URLs, log and a ready-to-paste curl."""
    return (
        f"model server (pid {server.pid}) serving {server.model_dir} as model {server.model_name!r}\n"
        f"  predictions: {server.infer_url}\n"
        f"  metadata:    {server.metadata_url}\n"
        f"  metrics:     {server.metrics_url}\n"
        f"  gRPC:        {HOST}:{server.grpc_port} (inference.GRPCInferenceService)\n"
        f"  log:         {server.log_file}\n"
        f"try it:\n{server.example_curl()}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
