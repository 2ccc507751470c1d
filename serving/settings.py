"""Where the model server's settings come from: its command line, the Seldon Core 1.17.1 operator's environment
(``protocol: v2``, a custom container) or a KServe InferenceService's; one function, ``resolve``, first found wins.

| setting | flag | Seldon Core 1.17.1 | KServe | default |
|---|---|---|---|---|
| model name | ``--model_name`` | ``PREDICTIVE_UNIT_ID``, then ``MLSERVER_MODEL_NAME`` | ``--model_name`` | ``model`` |
| model directory | ``--model_dir`` | ``MLSERVER_MODEL_URI`` | ``STORAGE_URI`` (a local path) | ``/mnt/models`` |
| HTTP port | ``--http_port`` | ``PREDICTIVE_UNIT_HTTP_SERVICE_PORT`` | ``--http_port`` | 8080 |
| gRPC port | ``--grpc_port`` | ``PREDICTIVE_UNIT_GRPC_SERVICE_PORT`` | ``--grpc_port`` | 8081 |
| metrics port | ``--metrics_port`` | ``PREDICTIVE_UNIT_METRICS_SERVICE_PORT`` | | 8082 |
| metrics path | | ``PREDICTIVE_UNIT_METRICS_ENDPOINT`` | | ``/prometheus`` |
| model parameters | ``--<name>`` | an entry of ``PREDICTIVE_UNIT_PARAMETERS`` | ``--<name>`` | see ``PARAMETERS`` |

Model parameters: ``model_sha256`` (the digest of model.joblib recorded at training: other bytes are refused),
``model_version`` (the registry version, reported in the metadata), ``max_rows`` (largest batch accepted),
``schema_checks`` (which checks of the data contract requests are held to: a comma-separated subset of
``nulls,domain,range``, or ``none``), ``max_body_bytes`` (largest request body accepted) and ``max_header_bytes``
(largest request line and headers accepted, serving.http_limits).
``PREDICTIVE_UNIT_PARAMETERS`` is the Seldon graph's ``parameters`` as JSON: ``[{"name", "type", "value"}, ...]``.

A remote ``STORAGE_URI`` (``s3://...``) is refused: in a cluster the storage initializer downloads the model and
points the variable at the local copy, so a remote one here means the initializer did not run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

from model_bundle.schema import DEFAULT_REQUEST_CHECKS, parse_request_checks

DEFAULT_MODEL_NAME = "model"
DEFAULT_MODEL_DIR = "/mnt/models"
DEFAULT_HTTP_PORT = 8080
DEFAULT_GRPC_PORT = 8081
DEFAULT_METRICS_PORT = 8082
DEFAULT_METRICS_PATH = "/prometheus"

# The largest request body: gRPC's message limit in the KServe SDK. A JSON body takes up to ~25 times its size in
# memory while it is parsed and checked (64 MiB of short strings peaked at 2 GB over a 1Gi pod's limit); 8 MiB holds
# max_rows (100,000) rows of a dozen numeric columns.
MAX_BODY_BYTES = 8 * 1024 * 1024
# The largest request line and headers (serving.http_limits): Envoy's (Istio's, Knative's) default is 60 KiB, so
# whatever a mesh forwards fits; what a client needs beyond a few KiB belongs in the body.
MAX_HEADER_BYTES = 64 * 1024

# Model parameters: name -> (type, default).
PARAMETERS: dict[str, tuple[type, object]] = {
    "model_sha256": (str, ""),
    "model_version": (str, ""),
    "max_rows": (int, 100_000),
    "schema_checks": (str, ",".join(DEFAULT_REQUEST_CHECKS)),
    "max_body_bytes": (int, MAX_BODY_BYTES),
    "max_header_bytes": (int, MAX_HEADER_BYTES),
}

NAME_ENV = ("PREDICTIVE_UNIT_ID", "MLSERVER_MODEL_NAME")
MODEL_DIR_ENV = ("MLSERVER_MODEL_URI", "STORAGE_URI")
HTTP_PORT_ENV = "PREDICTIVE_UNIT_HTTP_SERVICE_PORT"
GRPC_PORT_ENV = "PREDICTIVE_UNIT_GRPC_SERVICE_PORT"
METRICS_PORT_ENV = "PREDICTIVE_UNIT_METRICS_SERVICE_PORT"
METRICS_PATH_ENV = "PREDICTIVE_UNIT_METRICS_ENDPOINT"
PARAMETERS_ENV = "PREDICTIVE_UNIT_PARAMETERS"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the flag or variable."""


@dataclass(frozen=True)
class Settings:
    model_name: str = DEFAULT_MODEL_NAME
    model_dir: str = DEFAULT_MODEL_DIR
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    metrics_port: int = DEFAULT_METRICS_PORT
    metrics_path: str = DEFAULT_METRICS_PATH
    model_sha256: str = ""
    model_version: str = ""
    max_rows: int = 100_000
    schema_checks: str = ",".join(DEFAULT_REQUEST_CHECKS)
    max_body_bytes: int = MAX_BODY_BYTES
    max_header_bytes: int = MAX_HEADER_BYTES


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m serving", description=__doc__.split("\n")[0])
    parse.add_argument("--model_name")
    parse.add_argument("--model_dir")
    for port in ("http_port", "grpc_port", "metrics_port"):
        parse.add_argument(f"--{port}", type=int)
    for name, (kind, _) in PARAMETERS.items():
        parse.add_argument(f"--{name}", type=kind)
    return parse


def resolve(argv: Sequence[str], env: Mapping[str, str]) -> Settings:
    """The settings from the command line ``argv`` (flags unknown here are left to KServe's own parser) and the
    environment ``env``; raises SettingsError naming what is wrong."""
    try:
        args, _ = parser().parse_known_args(list(argv))
    except SystemExit as error:  # argparse exits on a malformed value (its message is printed); --help exits 0
        if error.code == 0:
            raise
        raise SettingsError(f"invalid command line {list(argv)}") from error
    graph = _graph_parameters(env)

    model_dir = args.model_dir
    if model_dir is None:
        variable = next((name for name in MODEL_DIR_ENV if env.get(name)), None)
        model_dir = _local_path(variable, env[variable]) if variable else DEFAULT_MODEL_DIR
    parameters = {}
    for name, (kind, default) in PARAMETERS.items():
        value = getattr(args, name)
        if value is None:
            value = _typed(name, graph[name], kind) if name in graph else default
        parameters[name] = value
    try:
        parse_request_checks(parameters["schema_checks"])
    except ValueError as error:
        raise SettingsError(str(error)) from error
    for name in ("max_rows", "max_body_bytes", "max_header_bytes"):
        if parameters[name] < 1:
            raise SettingsError(f"parameter {name} must be a positive integer, got {parameters[name]}")
    return Settings(
        model_name=args.model_name or next((env[name] for name in NAME_ENV if env.get(name)), DEFAULT_MODEL_NAME),
        model_dir=model_dir,
        http_port=_port(args.http_port, env, HTTP_PORT_ENV, DEFAULT_HTTP_PORT),
        grpc_port=_port(args.grpc_port, env, GRPC_PORT_ENV, DEFAULT_GRPC_PORT),
        metrics_port=_port(args.metrics_port, env, METRICS_PORT_ENV, DEFAULT_METRICS_PORT),
        metrics_path=env.get(METRICS_PATH_ENV) or DEFAULT_METRICS_PATH,
        **parameters,
    )


def _port(flag: int | None, env: Mapping[str, str], variable: str, default: int) -> int:
    if flag is not None:
        return flag
    text = env.get(variable)
    if not text:
        return default
    try:
        return int(text)
    except ValueError as error:
        raise SettingsError(f"{variable}={text!r} is not a port number") from error


def _local_path(variable: str, value: str) -> str:
    scheme = urlparse(value).scheme
    if scheme == "file":
        return urlparse(value).path
    if scheme and len(scheme) > 1:  # a Windows drive letter is no scheme
        raise SettingsError(
            f"{variable}={value} is a remote URI; this server reads a local directory. In a cluster the storage "
            f"initializer downloads the model and sets {variable} to the local copy (/mnt/models)"
        )
    return value


def _graph_parameters(env: Mapping[str, str]) -> dict[str, object]:
    """The entries of PREDICTIVE_UNIT_PARAMETERS by name (only the ones this server knows are used)."""
    text = env.get(PARAMETERS_ENV)
    if not text:
        return {}
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{PARAMETERS_ENV} is not valid JSON: {error}") from error
    if not isinstance(entries, list) or not all(isinstance(entry, dict) and "name" in entry for entry in entries):
        raise SettingsError(f'{PARAMETERS_ENV} must be a JSON list of {{"name", "type", "value"}}, got {text!r}')
    return {entry["name"]: entry.get("value") for entry in entries}


def _typed(name: str, value: object, kind: type) -> object:
    """A graph parameter's value as the setting's type (Seldon passes values as text, typed by "type")."""
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if kind is int and isinstance(value, str | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and number.is_integer():
            return int(number)
    if kind is str and value is not None and not isinstance(value, dict | list):
        return str(value)
    kind_name = "an integer" if kind is int else f"a {kind.__name__}"
    raise SettingsError(f"{PARAMETERS_ENV}: parameter {name} must be {kind_name}, got {value!r}")
