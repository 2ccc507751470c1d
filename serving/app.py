"""``python -m serving``: resolves the settings (serving.settings), loads the bundle (refusing bytes other than the
trained ones: the process exits 1 naming the file and both digests), starts the metrics port and runs the KServe
SDK's ModelServer (REST and gRPC) with the model (serving.model_server).

What this adds to the SDK, and why:
- its own REST routes for infer, model metadata and model readiness, registered on KServe's FastAPI app ahead of
  the SDK's: the SDK's infer route parses JSON leniently (NaN accepted), answers schema errors 422
  ``{"detail"}`` and a missing Content-Type 400, and its metadata route drops the ``parameters``
  (sha256, version); here every refusal has the documented status and ``{"error", "reason"}``, the body size is
  checked from Content-Length before reading, and errors raised before the model is reached are counted too;
- a DataPlane that answers an unknown model name with MODEL_NOT_FOUND (REST 404, gRPC NOT_FOUND) and serves the
  model's own metadata, and a gRPC ModelMetadata that keeps ``versions`` (the SDK's drops it);
- the SDK's model repository extension (``/v2/repository/models/<name>/load|unload`` and its gRPC calls) is
  refused (501 NOT_SUPPORTED): it would let any client unload the one model this server serves; so is the SDK's v1
  protocol (``/v1/models/...``): its routes answer in another error shape and skip the checks above;
- a bounded header section on the REST port (``max_header_bytes``, serving.http_limits): neither uvicorn nor
  httptools bounds it;
- every gRPC refusal counted in the metrics, those the SDK raises itself included (count_grpc_refusals).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.oip import RequestError
from serving.settings import Settings, SettingsError, resolve

logger = logging.getLogger("serving")
JSON = "application/json"


# The SDK's model repository extension would let any client unload the model (or reload it): this server serves
# one model, fixed at start, so those calls are refused (REST and gRPC).
REPOSITORY_DISABLED = RequestError(
    "the model repository extension (load/unload) is disabled: this server serves one model, fixed at start",
    "NOT_SUPPORTED",
)
V1_DISABLED = RequestError(
    "KServe's v1 protocol (/v1/models/...) is not served: this server speaks the Open Inference Protocol, "
    "POST /v2/models/<name>/infer",
    "NOT_SUPPORTED",
)


def error_response(error: RequestError) -> Response:
    return JSONResponse(error.json(), status_code=error.http_status)


def not_found(name: str, served: str) -> RequestError:
    return RequestError(f"model {name!r} is not served here; this server serves {served!r}", "MODEL_NOT_FOUND")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused once it passes ``limit`` bytes (Content-Length is checked before reading)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(
            f"the request body has {int(length)} bytes, more than the limit of {limit} (max_body_bytes)",
            "BODY_TOO_LARGE",
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                f"the request body has more than {limit} bytes, the limit (max_body_bytes)", "BODY_TOO_LARGE"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def add_routes(app: FastAPI, model) -> None:
    """The model's REST routes and error handlers on ``app`` (before the SDK adds its own: the first match wins)."""
    limit = model.settings.max_body_bytes

    def check_served(name: str, version: str | None) -> None:
        """OIP paths may name a version (``/v2/models/<name>/versions/<v>/...``): the one served is accepted."""
        if name != model.name:
            raise not_found(name, model.name)
        if version is not None and version != model.version:
            raise RequestError(
                f"model {name!r} version {version!r} is not served here; this server serves version {model.version!r}",
                "MODEL_NOT_FOUND",
            )

    async def infer(request: Request) -> Response:
        try:
            check_served(request.path_params["model_name"], request.path_params.get("model_version"))
            if not model.ready:
                raise RequestError(f"model {model.name!r} is not loaded", "NOT_READY")
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() != JSON:
                binary = "inference-header-content-length" in request.headers
                hint = "; the OIP binary tensor extension is not supported: send the data as JSON" if binary else ""
                raise RequestError(
                    f"Content-Type must be {JSON}, got {content_type or 'none'!r}{hint}", "BAD_CONTENT_TYPE"
                )
            body = await read_body(request, limit)
            try:
                # orjson is strict JSON: NaN, Infinity and 1e999 are refused, as they should be.
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as error:
                raise RequestError(
                    f"the request body is not valid JSON ({error}); note that NaN and Infinity are not JSON: send "
                    "null for a missing value",
                    "BAD_JSON",
                ) from error
            answer = await model.infer_json(payload)
        except RequestError as error:
            model.count_error(error.reason)
            return error_response(error)
        except Exception as error:
            logger.exception("inference failed")
            model.count_error("INTERNAL")
            return error_response(RequestError(f"internal error: {type(error).__name__}: {error}", "INTERNAL"))
        return Response(orjson.dumps(answer), media_type=JSON)

    # Refusals raised below reach request_error, which counts them: the one place for every route but infer's
    # (which answers its own errors, INTERNAL included). The SDK's routes that remain (/v2, its health checks, the
    # model list) raise none.
    async def metadata(model_name: str, model_version: str | None = None) -> Response:
        check_served(model_name, model_version)
        return JSONResponse(model.metadata())

    async def ready(model_name: str, model_version: str | None = None) -> Response:
        check_served(model_name, model_version)
        if not model.ready:
            raise RequestError(f"model {model.name!r} is not loaded", "NOT_READY")
        return JSONResponse({"name": model.name, "ready": True})

    async def repository(request: Request) -> Response:
        raise REPOSITORY_DISABLED

    async def v1(request: Request) -> Response:
        raise V1_DISABLED

    for model_path in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        app.add_api_route(f"{model_path}/infer", infer, methods=["POST"], include_in_schema=False)
        app.add_api_route(model_path, metadata, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"{model_path}/ready", ready, methods=["GET"], include_in_schema=False)
    for action in ("load", "unload"):
        app.add_api_route(f"/v2/repository/models/{{model_name}}/{action}", repository, methods=["POST"])
    app.add_api_route("/v1/{path:path}", v1, methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False)

    def refused(error: RequestError) -> Response:
        model.count_error(error.reason)
        return error_response(error)

    async def request_error(_, error: RequestError) -> Response:
        return refused(error)

    async def validation_error(_, error: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in entry.get('loc', ()))}: {entry.get('msg')}" for entry in error.errors()
        )
        return refused(RequestError(f"the request is not what this endpoint takes: {problems}", "BAD_REQUEST"))

    async def http_error(_, error: StarletteHTTPException) -> Response:
        # Routing's own refusals (no such path, wrong method) in the same shape as every other error, and counted.
        reason = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, f"HTTP_{error.status_code}")
        model.count_error(reason)
        return JSONResponse({"error": str(error.detail), "reason": reason}, status_code=error.status_code)

    app.add_exception_handler(RequestError, request_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def data_plane(registry, served: str):
    """The SDK's DataPlane, answering unknown names with MODEL_NOT_FOUND and serving the model's own metadata."""
    from kserve.protocol.dataplane import DataPlane

    class ModelDataPlane(DataPlane):
        def metadata(self) -> dict:
            # The server metadata (REST GET /v2, gRPC ServerMetadata) without the repository extension: refused here.
            return {**super().metadata(), "extensions": []}

        def get_model_from_registry(self, name: str):
            model = self._model_registry.get_model(name)
            if model is None:
                raise not_found(name, served)
            return model

        async def get_model(self, name: str):
            return self.get_model_from_registry(name)

        async def model_ready(self, model_name: str, disable_predictor_health_check: bool = False) -> bool:
            self.get_model_from_registry(model_name)
            return await self._model_registry.is_model_ready(model_name)

        async def model_metadata(self, model_name: str) -> dict:
            return self.get_model_from_registry(model_name).metadata()

    return ModelDataPlane(model_registry=registry)


def _grpc_model_metadata():
    """gRPC ModelMetadata with the model's versions (the SDK's servicer leaves them out)."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    async def model_metadata(self, request, context):
        metadata = await self._data_plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata.get("versions", []),
            platform=metadata["platform"],
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )

    return model_metadata


async def _repository_disabled(self, request, context):
    raise REPOSITORY_DISABLED


# The gRPC calls whose refusals are counted: every one that names a model or changes the repository (the server's
# own health and metadata calls refuse nothing).
GRPC_COUNTED = ("ModelInfer", "ModelMetadata", "ModelReady", "RepositoryModelLoad", "RepositoryModelUnload")


def count_grpc_refusals(servicer, model) -> None:
    """Wraps ``servicer``'s GRPC_COUNTED calls so that every refusal is counted, as REST counts its own: the one
    place for gRPC, those the SDK raises before the model is reached included (its ModelInferRequest checks). The
    SDK's InvalidInput becomes BAD_REQUEST, so its details carry a reason code like every other refusal's. A message
    over gRPC's size limit is refused by gRPC's core before any Python runs: that one is not counted."""
    from kserve.errors import InvalidInput

    def counted(call):
        async def method(self, request, context):
            try:
                return await call(self, request, context)
            except RequestError as error:
                model.count_error(error.reason)
                raise
            except InvalidInput as error:
                model.count_error("BAD_REQUEST")
                raise RequestError(
                    f"the request is not a valid ModelInferRequest: {error.reason}", "BAD_REQUEST"
                ) from error
            except Exception:
                model.count_error("INTERNAL")
                raise

        return method

    for name in GRPC_COUNTED:
        setattr(servicer, name, counted(getattr(servicer, name)))


def bound_headers(max_header_bytes: int, model) -> None:
    """The SDK's REST server speaking serving.http_limits' protocol: it builds its uvicorn configuration itself,
    with no parameter for it, so the protocol is set on that configuration before uvicorn loads it."""
    from kserve import model_server
    from kserve.protocol.rest.server import RESTServer

    from serving.http_limits import bounded_protocol

    protocol = bounded_protocol(max_header_bytes, model.count_error)

    class BoundedRESTServer(RESTServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.config.http = protocol

    model_server.RESTServer = BoundedRESTServer


def serve(settings: Settings) -> int:
    import kserve
    from kserve.logging import logger as kserve_logger
    from kserve.logging import trace_logger
    from kserve.model_server import app
    from kserve.protocol.grpc.servicer import InferenceServicer
    from prometheus_client import start_http_server

    from model_bundle import BundleError
    from serving.model_server import BundleModel

    server = kserve.ModelServer(http_port=settings.http_port, grpc_port=settings.grpc_port, workers=1)
    # ModelServer() configured logging: this package logs through the SDK's handler. The SDK's two timing lines
    # per request at INFO are left out: the access log has each request, the metrics the time.
    logger.handlers, logger.propagate = list(kserve_logger.handlers), False
    logger.setLevel(logging.INFO)
    trace_logger.setLevel(logging.WARNING)

    model = BundleModel(settings)
    try:
        model.load()
    except BundleError as error:
        print(f"error: refusing to serve {settings.model_dir}: {error}", file=sys.stderr, flush=True)
        return 1
    # Seldon scrapes the `metrics` port at PREDICTIVE_UNIT_METRICS_ENDPOINT; this server answers on any path.
    start_http_server(settings.metrics_port)
    logger.info(
        "serving %r: REST on %d, gRPC on %d, metrics on %d%s",
        settings.model_name,
        settings.http_port,
        settings.grpc_port,
        settings.metrics_port,
        settings.metrics_path,
    )
    add_routes(app, model)
    InferenceServicer.ModelMetadata = _grpc_model_metadata()
    InferenceServicer.RepositoryModelLoad = InferenceServicer.RepositoryModelUnload = _repository_disabled
    count_grpc_refusals(InferenceServicer, model)
    bound_headers(settings.max_header_bytes, model)
    server.dataplane = data_plane(server.registered_models, model.name)
    server.start([model])
    return 0


def main(argv: Sequence[str] | None = None, env=None) -> int:
    import os

    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = resolve(argv, os.environ if env is None else env)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    return serve(settings)
