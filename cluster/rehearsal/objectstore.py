"""The object store standing in for KFP's SeaweedFS: a real S3 API server (moto's server mode) on loopback,
holding the bucket MLflow's artifacts go to, and accepting only the access key the cluster's Secrets hold.

moto checks no credentials itself, so a thin WSGI layer refuses (403, as S3 does) every request that is not
signed with the Secrets' access key id: a step or a storage copy that got no credentials, or other ones, fails
here as it would against SeaweedFS. (Signatures are not recomputed: the secret key travels in the same Secret
keys as the id, so a wrong variable name shows up as a missing id.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import boto3
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from cluster.rehearsal.common import RehearsalError

# The in-cluster address every Secret names (cluster/manifests): the rehearsal replaces it by the local server's.
CLUSTER_S3_URL = "http://seaweedfs.kubeflow.svc.cluster.local:8333"
BUCKET = "mlpipeline"  # KFP's artifact bucket; MLflow's --default-artifact-root lives in it
_KEY_ID = re.compile(r"Credential=([^/,\s]+)/|X-Amz-Credential=([^/&%]+)")


def _access_key_id(environ: dict) -> str | None:
    match = _KEY_ID.search(environ.get("HTTP_AUTHORIZATION", "")) or _KEY_ID.search(environ.get("QUERY_STRING", ""))
    return next((group for group in match.groups() if group), None) if match else None


class _RequireAccessKey:
    """WSGI middleware: only requests signed with ``access_key_id`` reach moto."""

    def __init__(self, app, access_key_id: str, refused: list[str]):
        self.app, self.access_key_id, self.refused = app, access_key_id, refused

    def __call__(self, environ, start_response):
        key_id = _access_key_id(environ)
        if key_id != self.access_key_id:
            self.refused.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')} key={key_id}")
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code>'
                b"<Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>"
            )
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


class _CheckedMotoServer(ThreadedMotoServer):
    """moto's threaded server with the access-key check in front (moto 5.2's own entry, one line wrapped)."""

    def __init__(self, access_key_id: str, refused: list[str]):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self._access_key_id, self._refused = access_key_id, refused

    def _server_entry(self) -> None:
        app = _RequireAccessKey(DomainDispatcherApplication(create_backend_app), self._access_key_id, self._refused)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@dataclass
class ObjectStore:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    _server: _CheckedMotoServer
    refused: list[str] = field(default_factory=list)

    def s3(self):
        """A boto3 S3 client with the Secrets' credentials (and nothing from this machine's environment)."""
        return boto3.session.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key, region_name="us-east-1"
        ).client("s3", endpoint_url=self.endpoint_url)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def stop(self) -> None:
        self._server.stop()


def start_object_store(access_key_id: str, secret_access_key: str) -> ObjectStore:
    """Starts the S3 server on a free loopback port with bucket ``mlpipeline`` (KFP's installer creates it)."""
    refused: list[str] = []
    server = _CheckedMotoServer(access_key_id, refused)
    server.start()
    host, port = server.get_host_and_port()
    store = ObjectStore(f"http://{host}:{port}", access_key_id, secret_access_key, server, refused)
    try:
        store.s3().create_bucket(Bucket=BUCKET)
    except Exception as error:
        store.stop()
        message = f"the S3 server at {store.endpoint_url} did not create bucket {BUCKET}: {error}"
        raise RehearsalError(message) from error
    return store
