"""Processes on this machine that outlive the step starting them: one started in its own process group with its
output in a log file, waited for until a URL answers, told apart from a zombie, and stopped as a group.

Standard library only: the local model servers (serving.local_server) and the tests' own servers use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


class LocalServerError(RuntimeError):
    """A local server could not be started or stopped; the message says why and where its log is."""


def spawn(command: list[str], log_file: str | Path, env: dict[str, str]) -> subprocess.Popen:
    """Starts ``command`` in its own process group (it outlives the step that starts it, and stops as one group
    with its workers), output to ``log_file``."""
    with open(log_file, "w") as log:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(url: str, process: subprocess.Popen, log_file: str | Path, timeout: float, name: str) -> None:
    """Waits until ``url`` answers 200; raises LocalServerError with the log's tail when the process exits or
    the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalServerError(f"{name} exited with code {process.returncode}:\n{_tail(log_file)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise LocalServerError(f"{name} not healthy at {url} after {timeout:.0f} s:\n{_tail(log_file)}")


def stop_group(pid: int, timeout: float = 20.0) -> None:
    """Stops the process group led by ``pid``: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if not is_alive(pid):
        return
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if is_alive(pid):
        _signal_group(pid, signal.SIGKILL)


def _tail(log_file: str | Path, lines: int = 25) -> str:
    try:
        text = Path(log_file).read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log_file})"
    return "\n".join(text[-lines:]) + f"\n(full log: {log_file})"


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex((HOST, port)) == 0


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not serving, once its other threads are gone too.
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return not (status["State"].split()[0] == "Z" and int(status["Threads"]) <= 1)
    except (OSError, KeyError, ValueError, IndexError):
        return True


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def wait_ports_free(ports, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(port_in_use(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.05)
