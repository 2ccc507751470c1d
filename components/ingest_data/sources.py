"""Turns a source URI into the local files to read (owns fetching, and the download limits): local paths and globs
as they are, ``gs://`` objects and ``http(s)://`` URLs downloaded into a working directory.

Credentials come from the environment only, never from the URI: for ``gs://``, Application Default Credentials
(``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, or the service account of the
workload), or an anonymous client when ``STORAGE_EMULATOR_HOST`` names an emulator (google-cloud-storage does
that itself); for ``http(s)://``, what ``requests`` reads from the environment (``~/.netrc``, proxy variables).
A URL with a user name or password in it is refused.

Transient failures are retried here, not by re-running the step: Cloud Storage's client retries its own requests,
and an http(s) download is tried again after a dropped connection, a timeout or a 408/429/5xx answer (_http_download).

Globs: ``*`` and ``?`` match within one path segment, ``[abc]`` one character of a set, ``**`` any number of
segments. Matches are read in name order.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import sleep
from urllib.parse import unquote, urlparse

from components.ingest_data.decoding import one_line
from components.ingest_data.errors import IngestError
from components.ingest_data.formats import EXTENSIONS, suffix_of, unsupported_extension

MAX_DOWNLOAD_BYTES = 10 * 1024**3  # per source (all files of a glob together); the rest of a download is refused
HTTP_TIMEOUT = (10.0, 60.0)  # seconds to connect, and at most between two received bytes
# A download is tried up to HTTP_ATTEMPTS times: waits of 5, 10, 20 s (or the server's Retry-After, at most
# HTTP_MAX_WAIT_SECONDS) span a web server or proxy restarting; a 404 or a malformed file fails at once.
HTTP_ATTEMPTS = 4
HTTP_BACKOFF_SECONDS = 5.0
HTTP_MAX_WAIT_SECONDS = 60.0
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
GCS_TIMEOUT = 60.0  # seconds per request to Cloud Storage (the client retries transient errors)
DOWNLOAD_CHUNK = 1024 * 1024
GLOB_CHARACTERS = frozenset("*?[")
CONTENT_TYPES = {  # for a URL whose path has no known extension
    "text/csv": ".csv",
    "application/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
    "application/jsonlines": ".jsonl",
}


@dataclass(frozen=True)
class SourceFile:
    path: Path  # the local file to read: the file itself, or its download
    name: str  # what errors and metadata call it: the local path, the gs:// URI or the URL
    size: int  # bytes as stored (compressed size for .gz)


def source_files(source_uri: str, workdir: Path) -> Iterator[SourceFile]:
    """The files behind ``source_uri`` in name order; remote ones are downloaded into ``workdir`` one at a time, as the
    caller asks for them (the caller may delete each download once read)."""
    scheme = urlparse(source_uri).scheme.lower()
    if scheme == "gs":
        return _gcs(source_uri, workdir)
    if scheme in ("http", "https"):
        return _http(source_uri, workdir)
    if scheme == "file":
        parsed = urlparse(source_uri)
        if parsed.netloc not in ("", "localhost"):
            raise IngestError(f"file URI {source_uri!r} names host {parsed.netloc!r}; only local files can be read")
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")  # a '?' is a glob here, not a query
        return iter(_local(unquote(path), source_uri))
    if scheme == "":
        return iter(_local(source_uri, source_uri))
    raise ValueError(f"not a file-like scheme: {scheme!r}")  # the caller checks schemes first


def has_glob(text: str) -> bool:
    return not GLOB_CHARACTERS.isdisjoint(text)


# --- local -------------------------------------------------------------------------------------------------------


def _local(path_text: str, source_uri: str) -> list[SourceFile]:
    path = Path(path_text)
    if not has_glob(path_text) or path.exists():  # a file whose name contains '[' is read as itself
        if not path.exists():
            raise IngestError(f"input file {path_text!r} does not exist")
        if not path.is_file():
            raise IngestError(f"input path {path_text!r} is not a file")
        return [SourceFile(path, path_text, path.stat().st_size)]
    matches = sorted(match for match in glob.glob(path_text, recursive=True) if os.path.isfile(match))
    if not matches:
        raise IngestError(f"no files match {source_uri!r}")
    return [SourceFile(Path(match), match, os.path.getsize(match)) for match in matches]


# --- Cloud Storage -----------------------------------------------------------------------------------------------


def _gcs(source_uri: str, workdir: Path) -> Iterator[SourceFile]:
    bucket_name, _, object_name = source_uri[len("gs://") :].partition("/")
    if not bucket_name or not object_name:
        raise IngestError(
            f"{source_uri!r} names no object; expected gs://bucket/path/file.csv or gs://bucket/prefix/*.csv"
        )
    if object_name.endswith("/"):
        raise IngestError(f"{source_uri!r} is a folder, not an object; match the objects in it, e.g. {source_uri}*.csv")
    client = _gcs_client(source_uri)
    bucket = client.bucket(bucket_name)
    if has_glob(object_name):
        pattern = _glob_regex(object_name)
        prefix = re.match(r"[^*?\[]*", object_name).group()  # list only below the literal part of the pattern
        with _gcs_errors(source_uri, not_found=f"bucket {bucket_name!r} does not exist"):
            blobs = [
                blob
                for blob in client.list_blobs(bucket, prefix=prefix, timeout=GCS_TIMEOUT)
                if not blob.name.endswith("/") and pattern.match(blob.name)
            ]
        if not blobs:
            raise IngestError(f"no objects match {source_uri!r}")
    else:
        with _gcs_errors(source_uri, not_found=f"bucket {bucket_name!r} does not exist"):
            blob = bucket.get_blob(object_name, timeout=GCS_TIMEOUT)  # None when the object does not exist
            if blob is None:
                exists = _bucket_exists(bucket)
                problem = (
                    "the object does not exist" if exists is not False else f"bucket {bucket_name!r} does not exist"
                )
                raise IngestError(f"cannot read {source_uri!r}: {problem}")
        blobs = [blob]
    blobs.sort(key=lambda blob: blob.name)
    names = [f"gs://{bucket_name}/{blob.name}" for blob in blobs]
    for blob, name in zip(blobs, names, strict=True):  # every format is known before anything is downloaded
        if suffix_of(blob.name) is None:
            raise unsupported_extension(name)
    total = sum(blob.size or 0 for blob in blobs)
    if total > MAX_DOWNLOAD_BYTES:
        raise IngestError(
            f"{source_uri!r} holds {total} bytes in {len(blobs)} object(s), more than the download limit of "
            f"{MAX_DOWNLOAD_BYTES} bytes (MAX_DOWNLOAD_BYTES)"
        )
    return _gcs_downloads(blobs, names, workdir)


def _gcs_downloads(blobs: list, names: list[str], workdir: Path) -> Iterator[SourceFile]:
    for index, (blob, name) in enumerate(zip(blobs, names, strict=True)):
        path = workdir / f"{index:06d}{suffix_of(blob.name)}"
        # The blob carries the generation that was listed: an object replaced or deleted since fails the read
        # instead of mixing versions.
        with _gcs_errors(name, not_found="the object was deleted or replaced while reading"):
            blob.download_to_filename(str(path), timeout=GCS_TIMEOUT)
        yield SourceFile(path, name, path.stat().st_size)


def _gcs_client(source_uri: str):
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    try:
        # With STORAGE_EMULATOR_HOST set, the client talks to that emulator with anonymous credentials; otherwise
        # it finds Application Default Credentials. Reading needs no project, so none is looked up.
        return storage.Client(project=None)
    except DefaultCredentialsError as error:
        raise IngestError(
            f"cannot read {source_uri!r}: no Google Cloud credentials in the environment ({error}); provide "
            "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default "
            "login`, or the workload's service account), or set STORAGE_EMULATOR_HOST for an emulator"
        ) from error


def _bucket_exists(bucket) -> bool | None:
    """None when the credentials may read objects but not the bucket's own metadata."""
    from google.api_core.exceptions import Forbidden

    try:
        return bucket.exists(timeout=GCS_TIMEOUT)
    except Forbidden:
        return None


@contextmanager
def _gcs_errors(name: str, not_found: str) -> Iterator[None]:
    """Turns the client's exceptions into an IngestError naming ``name``; ``not_found`` says what a 404 means."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud.storage import exceptions as storage_exceptions
    from requests import RequestException

    try:
        yield
    except api_exceptions.NotFound as error:
        raise IngestError(f"cannot read {name!r}: {not_found}") from error
    except (api_exceptions.Forbidden, api_exceptions.Unauthorized) as error:
        raise IngestError(
            f"cannot read {name!r}: access denied ({error.message}); the credentials come from the environment "
            "(Application Default Credentials)"
        ) from error
    except (
        api_exceptions.GoogleAPIError,
        auth_exceptions.GoogleAuthError,
        storage_exceptions.DataCorruption,
        RequestException,
        OSError,
    ) as error:
        raise IngestError(f"cannot read {name!r}: {one_line(error)}") from error


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """The glob of an object name as a regex: ``*`` and ``?`` stay within a segment, ``**`` spans segments."""
    parts, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[" and (end := pattern.find("]", index + (3 if pattern.startswith("[!", index) else 2))) != -1:
            negate = pattern.startswith("[!", index)
            members = pattern[index + (2 if negate else 1) : end]  # never empty: a ']' right after '[' is a member
            escaped = re.escape(members).replace("\\-", "-")  # keep ranges such as [0-9]
            parts.append(("[^" if negate else "[") + escaped + "]")
            index = end + 1
            continue
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


# --- HTTP --------------------------------------------------------------------------------------------------------


def _http(source_uri: str, workdir: Path) -> Iterator[SourceFile]:
    parsed = urlparse(source_uri)
    if parsed.username is not None or parsed.password is not None:
        shown = parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()  # without the credentials
        raise IngestError(
            f"{shown!r} carries a user name or password; credentials are never taken from pipeline parameters"
        )
    if not parsed.hostname:
        raise IngestError(f"URL {source_uri!r} names no host")
    return _http_download(source_uri, workdir)


def _http_download(source_uri: str, workdir: Path) -> Iterator[SourceFile]:
    """One GET of ``source_uri`` into ``workdir``, tried again (from the start) after a failure that a later try may
    not meet: a refused, reset or dropped connection, a timeout, or an HTTP status in TRANSIENT_STATUSES. Anything
    else (a 404, a file too large, an unknown format) fails at once: the step is not retried as a whole, so bad input
    is reported in seconds, not after every retry's backoff."""
    import requests

    for attempt in range(1, HTTP_ATTEMPTS + 1):
        try:
            received, path = _http_get(requests, source_uri, workdir)
            break
        except _TransientFailure as failure:
            if attempt == HTTP_ATTEMPTS:
                raise IngestError(f"{failure} (tried {HTTP_ATTEMPTS} times)") from failure.__cause__
            wait = failure.retry_after if failure.retry_after is not None else HTTP_BACKOFF_SECONDS * 2 ** (attempt - 1)
            wait = min(wait, HTTP_MAX_WAIT_SECONDS)
            print(f"{failure}; trying again in {wait:g} s (attempt {attempt + 1} of {HTTP_ATTEMPTS})", flush=True)
            sleep(wait)
    yield SourceFile(path, source_uri, received)


class _TransientFailure(Exception):
    """A failed try of a download that a later try may not meet; ``retry_after``: the server's wait, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _http_get(requests, source_uri: str, workdir: Path) -> tuple[int, Path]:
    """One try: the bytes received and the file they are in."""
    try:
        with requests.get(source_uri, stream=True, timeout=HTTP_TIMEOUT) as response:
            if response.status_code >= 400:
                failed = f"GET {source_uri} failed: HTTP {response.status_code} {response.reason}"
                if response.status_code in TRANSIENT_STATUSES:
                    raise _TransientFailure(failed, _retry_after(response.headers.get("Retry-After", "")))
                raise IngestError(failed)
            suffix = _url_suffix(source_uri, response)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_DOWNLOAD_BYTES:
                raise IngestError(
                    f"{source_uri} is {int(length)} bytes, more than the download limit of {MAX_DOWNLOAD_BYTES} bytes "
                    "(MAX_DOWNLOAD_BYTES)"
                )
            path = workdir / f"download{suffix}"
            received = 0
            with open(path, "wb") as out:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise IngestError(
                            f"{source_uri} is larger than the download limit of {MAX_DOWNLOAD_BYTES} bytes "
                            "(MAX_DOWNLOAD_BYTES); stopped reading it"
                        )
                    out.write(chunk)
    # ChunkedEncodingError: the body ended before its Content-Length or its last chunk (a dropped connection).
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
        raise _TransientFailure(f"cannot download {source_uri}: {one_line(error)}") from error
    except requests.RequestException as error:
        raise IngestError(f"cannot download {source_uri}: {one_line(error)}") from error
    return received, path


def _retry_after(value: str) -> float | None:
    """A Retry-After header's wait in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    from urllib3.exceptions import InvalidHeader
    from urllib3.util import Retry

    try:
        return Retry().parse_retry_after(value) if value.strip() else None
    except InvalidHeader:
        return None


def _url_suffix(source_uri: str, response) -> str:
    """The format of a URL: from its path (or the redirected one), else from the Content-Type header."""
    for candidate in (source_uri, response.url):
        suffix = suffix_of(unquote(urlparse(candidate).path))
        if suffix:
            return suffix
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type in CONTENT_TYPES:
        return CONTENT_TYPES[content_type]
    raise IngestError(
        f"input file {source_uri!r} has unsupported extension; supported: {sorted(EXTENSIONS)} "
        f"(nor does its Content-Type {content_type or 'header'!r} name a supported format)"
    )
