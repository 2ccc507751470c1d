"""ingest_data sources: local paths and globs, gs:// against a real Cloud Storage emulator, http(s):// against a
real HTTP server, the rule for reading many files as one dataset, and the lineage the component records.

Every server is started here, on 127.0.0.1: the gcp-storage-emulator package in-process (google-cloud-storage
finds it through STORAGE_EMULATOR_HOST, as the ingest code does), and http.server in a thread.
"""

from __future__ import annotations

import gzip
import http.server
import io
import re
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from gcp_storage_emulator.server import create_server
from google.cloud import storage
from kfp import dsl

from components.ingest_data import sources
from components.ingest_data.component import ingest_data
from components.ingest_data.errors import IngestError
from components.ingest_data.logic import read_source

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "data" / "ingest"
README = Path(__file__).resolve().parents[3] / "README.md"
SLOW_SECONDS = 3  # how long /slow/ waits before answering: far beyond the read timeout the test sets


def ingest(source_uri: str, **options) -> pd.DataFrame:
    """The dataset at ``source_uri`` as pandas, as the later steps read it."""
    return read_source(source_uri, **options).frame


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def part(start: int, rows: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "city": [f"city-{index}" for index in range(start, start + rows)],
            "area_m2": [40.0 + index for index in range(start, start + rows)],
            "rooms": [1 + index % 4 for index in range(start, start + rows)],
        }
    )


# --- local paths and globs ---------------------------------------------------------------------------------------


def test_local_glob_reads_matches_in_name_order_and_concatenates(tmp_path):
    for index in (2, 0, 1):  # written out of order
        (tmp_path / f"part-{index}.csv").write_bytes(csv_bytes(part(3 * index)))
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part-9.csv").write_bytes(csv_bytes(part(99)))  # '*' stays in its directory

    ingested = read_source(str(tmp_path / "part-*.csv"))

    pd.testing.assert_frame_equal(ingested.frame, part(0, rows=9))
    assert ingested.files == [str(tmp_path / f"part-{index}.csv") for index in range(3)]
    assert ingested.bytes == sum((tmp_path / f"part-{index}.csv").stat().st_size for index in range(3))


def test_recursive_local_glob_and_file_uri_glob(tmp_path):
    (tmp_path / "2024" / "06").mkdir(parents=True)
    (tmp_path / "2024" / "06" / "a.csv").write_bytes(csv_bytes(part(0)))
    (tmp_path / "2024" / "b.csv").write_bytes(csv_bytes(part(3)))

    assert len(ingest(str(tmp_path / "**" / "*.csv"))) == 6
    assert ingest(tmp_path.as_uri() + "/2024/*/*.csv")["city"].tolist() == part(0)["city"].tolist()
    assert len(ingest(tmp_path.as_uri() + "/2024/?.csv")) == 3


def test_local_glob_may_mix_formats_with_the_same_columns(tmp_path):
    part(0).to_parquet(tmp_path / "a.parquet", index=False)
    (tmp_path / "b.csv").write_bytes(csv_bytes(part(3)))

    pd.testing.assert_frame_equal(ingest(str(tmp_path / "*")), part(0, rows=6))


def test_glob_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "*.csv")
    with pytest.raises(IngestError, match=rf"no files match '{re.escape(pattern)}'"):
        ingest(pattern)


def test_glob_matching_only_directories_matches_nothing(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(IngestError, match=r"no files match"):
        ingest(str(tmp_path / "*.csv"))


def test_file_whose_name_looks_like_a_glob_is_read_as_itself(tmp_path):
    path = tmp_path / "houses[1].csv"
    path.write_bytes(csv_bytes(part(0)))

    pd.testing.assert_frame_equal(ingest(str(path)), part(0))


def test_file_uri_with_a_host_is_refused():
    with pytest.raises(IngestError, match=r"names host 'server'; only local files can be read"):
        ingest("file://server/share/houses.csv")


# --- many files: one schema --------------------------------------------------------------------------------------


def test_missing_and_extra_columns_name_the_first_file_that_differs(tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes(part(0)))
    (tmp_path / "b.csv").write_bytes(csv_bytes(part(3).drop(columns=["rooms"]).assign(floor=2)))
    (tmp_path / "c.csv").write_bytes(csv_bytes(part(6).drop(columns=["city"])))

    with pytest.raises(IngestError) as raised:
        ingest(str(tmp_path / "*.csv"))

    message = str(raised.value)
    assert f"'{tmp_path / 'b.csv'}' does not have the columns of '{tmp_path / 'a.csv'}'" in message
    assert "missing column(s) ['rooms']; extra column(s) ['floor']" in message
    assert "c.csv" not in message


def test_type_change_names_the_file_and_column(tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes(part(0)))
    (tmp_path / "b.csv").write_bytes(csv_bytes(part(3)))
    (tmp_path / "c.csv").write_bytes(csv_bytes(part(6).assign(rooms=["two", "three", "four"])))

    with pytest.raises(
        IngestError, match=rf"column 'rooms' holds text in '{tmp_path / 'c.csv'}' but numbers in '{tmp_path / 'a.csv'}'"
    ):
        ingest(str(tmp_path / "*.csv"))


def test_compatible_types_and_column_order_combine(tmp_path):
    # integers and floats are both numbers; an all-empty column fits any type; the first file's order is kept
    (tmp_path / "a.csv").write_text("city,rooms,floor\nLyon,2,\nPorto,3,\n")
    (tmp_path / "b.csv").write_text("rooms,city,floor\n2.5,Graz,1\n")
    (tmp_path / "c.csv").write_text("city,rooms,floor\nTurku,4,x\n")

    with pytest.raises(IngestError, match=r"column 'floor' holds text in .*c\.csv' but numbers in .*b\.csv'"):
        ingest(str(tmp_path / "*.csv"))
    (tmp_path / "c.csv").unlink()

    frame = ingest(str(tmp_path / "*.csv"))
    assert list(frame.columns) == ["city", "rooms", "floor"]
    assert frame["rooms"].tolist() == [2.0, 3.0, 2.5]
    assert frame["city"].tolist() == ["Lyon", "Porto", "Graz"]


def test_a_bad_file_in_a_glob_is_named(tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes(part(0)))
    (tmp_path / "b.csv").write_text("city,area_m2,rooms\n")

    with pytest.raises(IngestError, match=rf"input file '{tmp_path / 'b.csv'}' has a header but no data rows"):
        ingest(str(tmp_path / "*.csv"))


# --- the component records the lineage ---------------------------------------------------------------------------


def test_component_records_files_and_bytes_in_the_dataset_metadata(tmp_path):
    for index in range(2):
        (tmp_path / f"part-{index}.csv").write_bytes(csv_bytes(part(3 * index)))
    dataset = dsl.Dataset(name="dataset", uri=str(tmp_path / "out" / "dataset"), metadata={})
    source = str(tmp_path / "part-*.csv")

    rows, content_sha256, source_uri = ingest_data.python_func(source_uri=source, dataset=dataset)

    files = [str(tmp_path / f"part-{index}.csv") for index in range(2)]
    assert rows == 6
    assert source_uri == source
    assert dataset.metadata == {
        "rows": 6,
        "columns": 3,
        "content_sha256": content_sha256,
        "source_uri": source,
        "bytes": sum(Path(name).stat().st_size for name in files),
        "file_count": 2,
        "files": files,
    }


def test_component_passes_the_csv_options(tmp_path):
    dataset = dsl.Dataset(name="dataset", uri=str(tmp_path / "dataset"), metadata={})

    rows, _, _ = ingest_data.python_func(
        source_uri=str(CORPUS / "latin1.csv"), dataset=dataset, csv_delimiter=",", csv_encoding="latin-1"
    )

    assert rows == 3
    assert ingest_data.component_spec.inputs["csv_delimiter"].default == ""
    assert ingest_data.component_spec.inputs["csv_encoding"].default == ""


def test_the_deprecated_data_uri_still_reads_and_names_source_uri(tmp_path, capsys):
    (tmp_path / "houses.csv").write_bytes(csv_bytes(part(0)))
    dataset = dsl.Dataset(name="dataset", uri=str(tmp_path / "dataset"), metadata={})

    rows, _, source_uri = ingest_data.python_func(dataset=dataset, data_uri=str(tmp_path / "houses.csv"))

    assert (rows, source_uri) == (3, str(tmp_path / "houses.csv"))
    assert dataset.metadata["source_uri"] == source_uri
    assert "parameter data_uri will be removed in the next release; use source_uri instead" in capsys.readouterr().err
    assert ingest_data.component_spec.inputs["data_uri"].optional
    assert ingest_data.component_spec.inputs["source_uri"].default == ""


def test_a_component_without_a_source_names_source_uri(tmp_path):
    dataset = dsl.Dataset(name="dataset", uri=str(tmp_path / "dataset"), metadata={})

    with pytest.raises(IngestError, match=r"source_uri is empty; expected sample://"):
        ingest_data.python_func(dataset=dataset)


# --- gs:// against the emulator ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcs_emulator(free_ports):
    """A Cloud Storage emulator (gcp-storage-emulator, in memory) on 127.0.0.1."""
    (port,) = free_ports(1)
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs(gcs_emulator, monkeypatch) -> storage.Client:
    """A client of the emulator, which the code under test finds the documented way: STORAGE_EMULATOR_HOST."""
    server, endpoint = gcs_emulator
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    server.wipe()
    client = storage.Client(project=None)
    client.create_bucket("data")
    return client


def upload(client: storage.Client, name: str, data: bytes) -> None:
    client.bucket("data").blob(name).upload_from_string(data)


def test_emulator_speaks_the_api_the_client_uses(gcs):
    upload(gcs, "raw/a.csv", b"a\n1\n")

    assert [blob.name for blob in gcs.list_blobs("data", prefix="raw/")] == ["raw/a.csv"]
    assert type(gcs._credentials).__name__ == "AnonymousCredentials"


def test_gcs_single_object(gcs):
    data = csv_bytes(part(0))
    upload(gcs, "raw/houses.csv", data)

    ingested = read_source("gs://data/raw/houses.csv")

    pd.testing.assert_frame_equal(ingested.frame, part(0))
    assert ingested.files == ["gs://data/raw/houses.csv"]
    assert ingested.bytes == len(data)


def test_gcs_parquet_and_gzipped_csv_objects(gcs):
    buffer = io.BytesIO()
    part(0).to_parquet(buffer, index=False)
    upload(gcs, "raw/houses.parquet", buffer.getvalue())
    upload(gcs, "raw/houses.csv.gz", gzip.compress(csv_bytes(part(0))))

    pd.testing.assert_frame_equal(ingest("gs://data/raw/houses.parquet"), part(0))
    pd.testing.assert_frame_equal(ingest("gs://data/raw/houses.csv.gz"), part(0))


def test_gcs_prefix_glob_concatenates_three_objects_in_name_order(gcs):
    for index in (2, 0, 1):
        upload(gcs, f"raw/part-{index}.csv", csv_bytes(part(3 * index)))
    upload(gcs, "raw/readme.txt", b"not data")  # not *.csv
    upload(gcs, "raw/old/part-9.csv", csv_bytes(part(99)))  # '*' does not cross '/'
    upload(gcs, "rawer/part-8.csv", csv_bytes(part(99)))  # another prefix

    ingested = read_source("gs://data/raw/*.csv")

    pd.testing.assert_frame_equal(ingested.frame, part(0, rows=9))
    assert ingested.files == [f"gs://data/raw/part-{index}.csv" for index in range(3)]
    assert ingested.bytes == sum(len(csv_bytes(part(3 * index))) for index in range(3))
    assert len(ingest("gs://data/raw/**.csv")) == 12  # '**' crosses '/'


def test_gcs_glob_matching_nothing_names_the_pattern(gcs):
    upload(gcs, "raw/part-0.csv", csv_bytes(part(0)))

    with pytest.raises(IngestError, match=r"no objects match 'gs://data/raw/\*\.parquet'"):
        ingest("gs://data/raw/*.parquet")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://data/raw/absent.csv", r"cannot read 'gs://data/raw/absent\.csv': the object"),
        ("gs://no-such-bucket/raw/a.csv", r"cannot read 'gs://no-such-bucket/raw/a\.csv': bucket 'no-such-bucket'"),
        ("gs://no-such-bucket/raw/*.csv", r"cannot read 'gs://no-such-bucket/raw/\*\.csv': bucket 'no-such-bucket'"),
    ],
)
def test_gcs_missing_object_or_bucket_is_named(gcs, uri, message):
    with pytest.raises(IngestError, match=message + r" does not exist$"):
        ingest(uri)


def test_gcs_schema_mismatch_between_objects_names_the_object(gcs):
    upload(gcs, "raw/part-0.csv", csv_bytes(part(0)))
    upload(gcs, "raw/part-1.csv", csv_bytes(part(3).assign(rooms="many")))

    with pytest.raises(
        IngestError,
        match=r"column 'rooms' holds text in 'gs://data/raw/part-1\.csv' but numbers in 'gs://data/raw/part-0",
    ):
        ingest("gs://data/raw/*.csv")


def test_gcs_malformed_object_is_named_by_its_uri(gcs):
    upload(gcs, "raw/cut.csv", (CORPUS / "truncated_last_line.csv").read_bytes())

    with pytest.raises(IngestError, match=r"input file 'gs://data/raw/cut\.csv': line 4 has 2 field\(s\)"):
        ingest("gs://data/raw/cut.csv")


def test_gcs_object_of_unsupported_type_fails_before_any_download(gcs, monkeypatch):
    upload(gcs, "raw/part-0.csv", csv_bytes(part(0)))
    upload(gcs, "raw/_SUCCESS", b"")
    monkeypatch.setattr(sources, "_gcs_downloads", None)  # would fail loudly if reached

    with pytest.raises(IngestError, match=r"input file 'gs://data/raw/_SUCCESS' has unsupported extension"):
        ingest("gs://data/raw/*")


def test_gcs_download_limit_is_checked_before_downloading(gcs, monkeypatch):
    upload(gcs, "raw/part-0.csv", csv_bytes(part(0)))
    upload(gcs, "raw/part-1.csv", csv_bytes(part(3)))
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", 100)

    with pytest.raises(
        IngestError, match=r"'gs://data/raw/\*\.csv' holds \d+ bytes in 2 object\(s\), more than .* 100"
    ):
        ingest("gs://data/raw/*.csv")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://data", r"names no object"),
        ("gs:///raw/a.csv", r"names no object"),
        ("gs://data/raw/", r"is a folder, not an object; match the objects in it, e.g\. gs://data/raw/\*\.csv"),
    ],
)
def test_gcs_uri_must_name_an_object_or_pattern(uri, message):
    with pytest.raises(IngestError, match=message):
        ingest(uri)


def test_gcs_without_credentials_in_the_environment_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    # Points Application Default Credentials at a missing file: fails at once, without asking any server.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))

    with pytest.raises(IngestError, match=r"cannot read 'gs://data/a\.csv': no Google Cloud credentials in the env"):
        ingest("gs://data/a.csv")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("raw/*.csv", ["raw/a.csv", "raw/.csv"], ["raw/sub/a.csv", "raw/a.csvx", "rawa.csv"]),
        ("raw/**/*.csv", ["raw/a.csv", "raw/x/y/a.csv"], ["raw/a.tsv"]),
        ("raw/part-?.csv", ["raw/part-1.csv"], ["raw/part-10.csv", "raw/part-/.csv"]),
        ("raw/part-[0-2].csv", ["raw/part-0.csv", "raw/part-2.csv"], ["raw/part-3.csv"]),
        ("raw/part-[!0].csv", ["raw/part-1.csv"], ["raw/part-0.csv"]),
        ("raw/a+b(1).csv", ["raw/a+b(1).csv"], ["raw/aab(1).csv"]),
        ("raw/[]a]-[!]].csv", ["raw/]-x.csv", "raw/a-a.csv"], ["raw/b-x.csv", "raw/a-].csv"]),
        ("raw/[.csv", ["raw/[.csv"], ["raw/a.csv"]),
    ],
)
def test_object_glob_semantics(pattern, matches, misses):
    regex = sources._glob_regex(pattern)
    assert all(regex.match(name) for name in matches)
    assert not any(regex.match(name) for name in misses)


# --- http(s):// against a local server ---------------------------------------------------------------------------


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the test's directory, plus: /export (CSV without an extension, named by Content-Type), /page (HTML),
    /stream/<file> (no Content-Length), /slow/<file> (answers after SLOW_SECONDS), /fail/<status>/<n>/<file> (answers
    <status> to the first n requests, with Retry-After: 1 for 429), /cut/<file> (the first request's body stops
    halfway). Counts the requests for each path in ``server.requests``."""

    def do_GET(self):
        self.server.requests[self.path] += 1
        if self.path.startswith("/fail/"):
            _, _, status, failures, name = self.path.split("/", 4)
            if self.server.requests[self.path] <= int(failures):
                self.send_response(int(status))
                if status == "429":
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.path = f"/{name}"
        if self.path.startswith("/cut/"):
            body = (Path(self.directory) / self.path.removeprefix("/cut/")).read_bytes()
            if self.server.requests[self.path] == 1:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                return None  # HTTP/1.0: the connection closes with half the announced body sent
            return self._send(body, "text/csv")
        if self.path == "/export":
            return self._send(b"a,b\n1,2\n", "text/csv; charset=utf-8")
        if self.path == "/page":
            return self._send(b"<html></html>", "text/html")
        if self.path.startswith("/stream/"):
            return self._send(
                (Path(self.directory) / self.path.removeprefix("/stream/")).read_bytes(), "text/csv", False
            )
        if self.path.startswith("/slow/"):
            time.sleep(SLOW_SECONDS)
            self.path = self.path.removeprefix("/slow")
        return super().do_GET()

    def _send(self, body: bytes, content_type: str, length: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)  # HTTP/1.0: without a length the body ends when the connection closes

    def log_message(self, format, *args):
        pass


@pytest.fixture
def served():
    """How many requests the ``web`` server received, per path."""
    return Counter()


@pytest.fixture
def web(tmp_path, monkeypatch, served):
    """An HTTP server on 127.0.0.1 (a free port) serving ``tmp_path / "site"``; yields (base URL, directory)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(site)))
    server.requests = served
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_http_csv(web):
    base, site = web
    (site / "houses.csv").write_bytes(csv_bytes(part(0)))

    ingested = read_source(f"{base}/houses.csv")

    pd.testing.assert_frame_equal(ingested.frame, part(0))
    assert ingested.files == [f"{base}/houses.csv"]
    assert ingested.bytes == (site / "houses.csv").stat().st_size


def test_http_parquet_and_gzipped_csv(web):
    base, site = web
    part(0).to_parquet(site / "houses.parquet", index=False)
    (site / "houses.csv.gz").write_bytes((CORPUS / "gzipped.csv.gz").read_bytes())

    pd.testing.assert_frame_equal(ingest(f"{base}/houses.parquet"), part(0))
    assert ingest(f"{base}/houses.csv.gz?version=2")["city"].tolist() == ["Lyon", "Porto", "Graz"]


@pytest.fixture
def waits(monkeypatch):
    """The waits between a download's tries, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(sources, "sleep", waited.append)
    return waited


def test_http_404_fails_at_once_naming_the_url_and_status(web, waits):
    base, _ = web
    with pytest.raises(IngestError, match=rf"GET {re.escape(base)}/missing\.csv failed: HTTP 404 \w+") as raised:
        ingest(f"{base}/missing.csv")
    assert "tried" not in str(raised.value)
    assert waits == []  # a missing file is not asked for again


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_http_transient_answers_are_tried_again_with_backoff(web, served, waits, status):
    base, site = web
    (site / "houses.csv").write_bytes(csv_bytes(part(0)))

    ingested = read_source(f"{base}/fail/{status}/2/houses.csv")

    pd.testing.assert_frame_equal(ingested.frame, part(0))
    assert ingested.files == [f"{base}/fail/{status}/2/houses.csv"]
    assert served[f"/fail/{status}/2/houses.csv"] == 3
    # 429 carries Retry-After: 1, which replaces the backoff (5 s, then 10 s)
    assert waits == ([1.0, 1.0] if status == 429 else [sources.HTTP_BACKOFF_SECONDS, 2 * sources.HTTP_BACKOFF_SECONDS])


def test_http_transient_failure_that_persists_names_the_url_status_and_tries(web, served, waits):
    base, _ = web
    path = "/fail/503/99/houses.csv"
    with pytest.raises(
        IngestError, match=rf"GET {re.escape(base + path)} failed: HTTP 503 .*\(tried {sources.HTTP_ATTEMPTS} times\)"
    ):
        ingest(base + path)
    assert served[path] == sources.HTTP_ATTEMPTS
    assert waits == [5.0, 10.0, 20.0]  # the README's figures


def test_http_download_cut_short_is_fetched_again_whole(web, served, waits):
    base, site = web
    (site / "houses.csv").write_bytes(csv_bytes(part(0, rows=500)))

    ingested = read_source(f"{base}/cut/houses.csv")

    pd.testing.assert_frame_equal(ingested.frame, part(0, rows=500))  # not the first try's half
    assert ingested.bytes == (site / "houses.csv").stat().st_size
    assert served["/cut/houses.csv"] == 2
    assert len(waits) == 1


def test_http_malformed_file_is_named_by_its_url(web):
    base, site = web
    (site / "dup.csv").write_bytes((CORPUS / "duplicate_header.csv").read_bytes())

    with pytest.raises(IngestError, match=rf"input file '{re.escape(base)}/dup\.csv' repeats column name"):
        ingest(f"{base}/dup.csv")


def test_http_format_from_content_type(web):
    base, _ = web
    assert ingest(f"{base}/export").to_dict("list") == {"a": [1], "b": [2]}
    with pytest.raises(IngestError, match=r"has unsupported extension; .*Content-Type 'text/html'"):
        ingest(f"{base}/page")


def test_http_size_cap_from_content_length(web, monkeypatch):
    base, site = web
    (site / "big.csv").write_bytes(csv_bytes(part(0, rows=50)))
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", 100)

    with pytest.raises(IngestError, match=rf"{re.escape(base)}/big\.csv is \d+ bytes, more than the download limit"):
        ingest(f"{base}/big.csv")


def test_http_size_cap_while_streaming(web, monkeypatch):
    base, site = web
    (site / "big.csv").write_bytes(csv_bytes(part(0, rows=50)))
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", 100)
    monkeypatch.setattr(sources, "DOWNLOAD_CHUNK", 16)

    with pytest.raises(IngestError, match=r"/stream/big\.csv is larger than the download limit of 100 bytes"):
        ingest(f"{base}/stream/big.csv")


def test_http_read_timeout_is_tried_again_then_named(web, served, waits, monkeypatch):
    base, site = web
    (site / "houses.csv").write_bytes(csv_bytes(part(0)))
    monkeypatch.setattr(sources, "HTTP_TIMEOUT", (5.0, 0.2))

    started = time.monotonic()
    with pytest.raises(
        IngestError, match=rf"cannot download {re.escape(base)}/slow/houses\.csv: .*timed out.* \(tried 4 times\)"
    ):
        ingest(f"{base}/slow/houses.csv")
    assert time.monotonic() - started < SLOW_SECONDS - 0.5  # the timeouts ended it, not the server's late answer
    assert served["/slow/houses.csv"] == 4


def test_http_connection_refused_names_the_url(free_ports, waits):
    (port,) = free_ports(1)  # nothing listens there
    with pytest.raises(IngestError, match=rf"cannot download http://127\.0\.0\.1:{port}/a\.csv: .*\(tried 4 times\)"):
        ingest(f"http://127.0.0.1:{port}/a.csv")
    assert len(waits) == 3


def test_credentials_in_a_url_are_refused_without_repeating_them():
    with pytest.raises(IngestError, match=r"carries a user name or password; credentials are never taken") as raised:
        ingest("https://alice:s3cret@127.0.0.1:9/houses.csv")
    assert "'https://127.0.0.1:9/houses.csv'" in str(raised.value)
    assert "s3cret" not in str(raised.value)


# --- the limits the README documents ------------------------------------------------------------------------------


def test_the_download_limits_are_the_ones_the_readme_documents(web, monkeypatch):
    """README, Data sources: "at most 10 GiB, 10 s to connect, 60 s without data"; each limit is enforced by the
    tests above with a smaller value, and here the values themselves, and that every GET is made with them."""
    import requests

    readme = README.read_text()
    assert "at most 10 GiB, 10 s to connect, 60 s without data" in readme
    assert sources.MAX_DOWNLOAD_BYTES == 10 * 1024**3
    assert sources.HTTP_TIMEOUT == (10.0, 60.0)  # requests: (connect, read: the longest wait between bytes)
    base, site = web
    (site / "houses.csv").write_bytes(csv_bytes(part(0)))
    timeouts = []
    get = requests.get
    monkeypatch.setattr(
        requests, "get", lambda *args, **kwargs: timeouts.append(kwargs["timeout"]) or get(*args, **kwargs)
    )

    ingest(f"{base}/houses.csv")

    assert timeouts == [(10.0, 60.0)]
