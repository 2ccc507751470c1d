"""The server refuses model bytes other than those recorded at training, and leaves nothing running when it does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import model_bundle
from serving import local_server, processes

pytestmark = pytest.mark.serving

START_TIMEOUT = 60.0


def _copy_bundle(bundle, destination: Path) -> Path:
    shutil.copytree(bundle.directory, destination)
    return destination


def _tamper(model_dir: Path) -> None:
    with open(model_dir / "model.joblib", "ab") as stream:
        stream.write(b"\x00not the trained model")


def _processes_with_port(port: int) -> list[str]:
    """Command lines of live processes started with ``--http_port <port>``."""
    needle = f"--http_port\x00{port}\x00".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            raw = cmdline.read_bytes()
        except OSError:
            continue
        if needle in raw:
            found.append(raw.replace(b"\x00", b" ").decode(errors="replace"))
    return found


def _start_refused(model_dir: Path, sha256: str, state_dir: Path, ports: list[int]) -> str:
    """Starts a server that must refuse to serve; returns the error message after checking nothing is left over."""
    http_port, metrics_port, grpc_port = ports
    try:
        with pytest.raises(local_server.LocalServerError) as refused:
            local_server.start(model_dir, sha256, state_dir, http_port, metrics_port, grpc_port, timeout=START_TIMEOUT)
    finally:
        leftover = local_server.running(state_dir)
        if leftover:  # clean up before failing, so a broken start() does not leak servers
            local_server.stop_all(state_dir)
    assert not leftover, f"servers left running after a refused start: {leftover}"
    assert not (state_dir / f"server-{http_port}.json").exists(), "a refused server must not stay recorded"
    assert not _processes_with_port(http_port), _processes_with_port(http_port)
    for port in ports:
        assert not processes.port_in_use(port), f"port {port} still answers after a refused start"
    return str(refused.value)


def test_modified_model_file_is_refused(regression_bundle, tmp_path, free_ports):
    bundle, _ = regression_bundle
    tampered = _copy_bundle(bundle, tmp_path / "model")
    _tamper(tampered)

    message = _start_refused(tampered, bundle.card.sha256, tmp_path / "state", free_ports(3))

    assert "digest mismatch" in message
    assert bundle.card.sha256 in message
    assert "server-" in message and ".log" in message, "the error should point at the server log"


def test_modified_model_file_is_refused_even_with_its_own_digest(classification_bundle, tmp_path, free_ports):
    """A deployer passing the digest of the altered file still fails: the model card records the trained bytes."""
    bundle, _ = classification_bundle
    tampered = _copy_bundle(bundle, tmp_path / "model")
    _tamper(tampered)
    altered_digest = model_bundle.file_sha256(tampered / "model.joblib")

    message = _start_refused(tampered, altered_digest, tmp_path / "state", free_ports(3))

    assert "digest mismatch" in message
    assert bundle.card.sha256 in message


def test_wrong_expected_digest_is_refused(regression_bundle, tmp_path, free_ports):
    bundle, _ = regression_bundle
    intact = _copy_bundle(bundle, tmp_path / "model")
    wrong = "0" * 64

    message = _start_refused(intact, wrong, tmp_path / "state", free_ports(3))

    assert "digest mismatch" in message
    assert wrong in message


def test_modified_bundle_document_is_refused(regression_bundle, tmp_path, free_ports):
    """The data contract travels digest-checked like the model: an edited schema.json (say, a widened domain)
    stops the server too."""
    bundle, _ = regression_bundle
    tampered = _copy_bundle(bundle, tmp_path / "model")
    schema = tampered / model_bundle.SCHEMA_FILE
    schema.write_text(schema.read_text().replace('"Riverside"', '"Atlantis"', 1))

    message = _start_refused(tampered, bundle.card.sha256, tmp_path / "state", free_ports(3))

    assert "digest mismatch" in message and "schema.json" in message
    assert bundle.card.documents[model_bundle.SCHEMA_FILE] in message


def test_the_entry_point_exits_non_zero_naming_the_file_and_both_digests(regression_bundle, tmp_path, free_ports):
    bundle, _ = regression_bundle
    tampered = _copy_bundle(bundle, tmp_path / "model")
    _tamper(tampered)
    found = model_bundle.file_sha256(tampered / "model.joblib")
    http_port, metrics_port, grpc_port = free_ports(3)

    ports = ["--http_port", str(http_port), "--grpc_port", str(grpc_port), "--metrics_port", str(metrics_port)]
    result = subprocess.run(
        [sys.executable, "-m", "serving", "--model_dir", str(tampered), *ports],
        cwd=processes.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )

    assert result.returncode != 0
    assert str(tampered / "model.joblib") in result.stderr
    assert bundle.card.sha256 in result.stderr and found in result.stderr
    assert not processes.port_in_use(http_port)
