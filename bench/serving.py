"""Model serving latency and throughput: the real Seldon Core server, a hand-written FastAPI server and raw predict.

    .venv/bin/python bench/serving.py [--workers 1] [--seconds 10] [--model-type hist_gradient_boosting]
    .venv/bin/python bench/serving.py --load-test [--load-seconds 60] [--load-concurrency 32] [--workers 1]

Trains one regression model on ``house_prices(rows=5000, seed=7)`` (target "price"), saves it as a model bundle
in a temporary directory and, on that same model, measures:

- seldon: the real ``seldon-core-microservice`` from .venv-serving, started with ``serving.local_server.start``
  (GUNICORN_WORKERS=--workers), POST /api/v1.0/predictions;
- fastapi: bench/fastapi_reference.py, the server users usually write by hand (joblib.load at startup,
  ``model.predict(pd.DataFrame(ndarray, columns=names))``), run by uvicorn from .venv with ``--workers``,
  POST /predict;
- raw: ``bundle.model.predict(frame)`` in this process on already coerced DataFrames (the floor);
- and, for the single-row p50 only, seldon-core-microservice serving bench/seldon_floor.py, a class that does no
  work but records the same metrics: what Seldon's wrapper itself costs per request.

Measures: sequential single-row latency p50/p99 (500 requests after 50 warm-up ones); single-row req/s and p99
at concurrency 1, 8 and 32 for ``--seconds`` each (asyncio + aiohttp, one keep-alive ClientSession, N workers,
non-200 answers and connection failures counted as errors; Seldon's gunicorn sync worker answers
``Connection: close``, so its client reconnects for every request); rows/s for 1,000- and 10,000-row batches (20
sequential requests after 2 warm-up ones, bodies encoded once beforehand). Prints a table, the three goals and
whether each holds, and, last, one JSON line.

``--load-test`` serves with Seldon only: single-row requests at ``--load-concurrency`` for ``--load-seconds``;
prints requests, errors, req/s, p50/p99/max ms and a JSON last line; exits 1 if any request failed.

Request rows are real rows of held-out data (``house_prices(rows=10000, seed=8)``), in the model card's feature
order, typed as the model types them (``coerce_features``: "True" rather than true, missing as null); the model
types its own raw input too, so the hand-written server predicts the same from raw JSON. Single-row requests cycle
through complete rows; warm-up answers must be 200 and equal raw predict, or the bench aborts. Batches include
rows with missing values; the table counts the predictions in the 1k batch that differ from raw predict.

Requests go to 127.0.0.1 only, on free ports (the FastAPI server listens there; seldon-core-microservice itself
binds 0.0.0.0). OMP_NUM_THREADS=1 for both servers and this process. Both servers are stopped when the bench
ends, whatever happens.
"""

from __future__ import annotations

import os

# Before numpy/scikit-learn load their OpenMP runtime: one thread, as in both servers.
os.environ["OMP_NUM_THREADS"] = "1"

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# Run as a script, bench/ comes first on sys.path, and this file would shadow the `serving` package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import model_bundle  # noqa: E402
from components.ingest_data.logic import house_prices  # noqa: E402
from components.train_model.logic import train  # noqa: E402
from serving import local_server  # noqa: E402

HOST = "127.0.0.1"
TARGET = "price"
HEADERS = {"Content-Type": "application/json"}
SINGLE_ROW_POOL = 200  # distinct complete rows cycled through by single-row requests
LATENCY_WARMUP, LATENCY_REQUESTS = 50, 500
BATCH_WARMUP, BATCH_REQUESTS = 2, 20
BATCH_SIZES = {"1k": 1_000, "10k": 10_000}
CONCURRENCIES = (1, 8, 32)
REQUEST_TIMEOUT_S = 120.0
START_TIMEOUT_S = 120.0


class BenchError(RuntimeError):
    """The bench cannot produce meaningful numbers; the message says why."""


@dataclass
class Workload:
    """Request bodies and the frames and predictions of raw predict for the same rows, prepared once."""

    names: list[str]
    single_bodies: list[bytes]
    single_frames: list[pd.DataFrame]
    single_expected: np.ndarray
    batch_bodies: dict[str, bytes]
    batch_frames: dict[str, pd.DataFrame]
    batch_expected: dict[str, np.ndarray]


@dataclass
class Server:
    name: str
    url: str
    predictions: Callable[[dict], list]  # response JSON -> its predictions
    errors: int = 0
    results: dict = field(default_factory=dict)


# --- model and data ---------------------------------------------------------------------------------------


def build_model(model_dir: Path, rows: int, model_type: str) -> model_bundle.Bundle:
    frame = house_prices(rows=rows, seed=7)
    pipeline, card = train(frame, TARGET, "regression", model_type=model_type)
    written = model_bundle.save(model_dir, pipeline, card)
    return model_bundle.load(model_dir, expected_sha256=written.sha256)


def json_rows(frame: pd.DataFrame) -> list[list]:
    """Rows as JSON-ready Python values: floats, strings, None for missing (NaN -> null)."""
    return frame.astype(object).where(frame.notna(), None).to_numpy().tolist()


def body(names: list[str], rows: list[list]) -> bytes:
    return json.dumps({"data": {"names": names, "ndarray": rows}}).encode()


def prepare_workload(bundle: model_bundle.Bundle) -> Workload:
    names = bundle.feature_names
    held_out = house_prices(rows=max(BATCH_SIZES.values()), seed=8)[names]
    # The values the model saw in training; what a client of the hand-written server has to send.
    coerced = model_bundle.coerce_features(held_out, bundle.features)
    complete = coerced[coerced.notna().all(axis=1)].head(SINGLE_ROW_POOL)
    single_rows = json_rows(complete)
    # Expected answers go through the same path as a request: JSON values -> DataFrame -> bundle.predict.
    single_expected = bundle.predict(pd.DataFrame(single_rows, columns=names))
    batch_bodies, batch_frames, batch_expected = {}, {}, {}
    for label, size in BATCH_SIZES.items():
        rows = json_rows(coerced.head(size))
        batch_bodies[label] = body(names, rows)
        batch_frames[label] = coerced.head(size).copy()
        batch_expected[label] = bundle.predict(pd.DataFrame(rows, columns=names))
    return Workload(
        names=names,
        single_bodies=[body(names, [row]) for row in single_rows],
        single_frames=[complete.iloc[[index]].copy() for index in range(len(complete))],
        single_expected=single_expected,
        batch_bodies=batch_bodies,
        batch_frames=batch_frames,
        batch_expected=batch_expected,
    )


# --- servers ------------------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 that are free now (each socket held until all are chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in sockets:
            probe.bind((HOST, 0))
        return [probe.getsockname()[1] for probe in sockets]


def start_fastapi(model_dir: Path, port: int, workers: int, log_file: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "fastapi_reference:app",
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REFERENCE_MODEL_PATH": str(model_dir / model_bundle.MODEL_FILE)}
    process = local_server.spawn(command, log_file, env)
    try:
        local_server.wait_healthy(f"http://{HOST}:{port}/health", process, log_file, START_TIMEOUT_S, "FastAPI server")
    except local_server.LocalServerError:
        stop_process_group(process)
        raise
    return process


def stop_process_group(process: subprocess.Popen) -> None:
    local_server.stop_group(process.pid)
    process.wait(timeout=5)  # reap it


def seldon_predictions(payload: dict) -> list[float]:
    return [row[0] for row in payload["data"]["ndarray"]]


def fastapi_predictions(payload: dict) -> list[float]:
    return payload["predictions"]


# --- HTTP measurements --------------------------------------------------------------------------------------


def session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=False),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def post(client: aiohttp.ClientSession, url: str, data: bytes) -> tuple[int, bytes]:
    async with client.post(url, data=data, headers=HEADERS) as response:
        return response.status, await response.read()


def check_answers(server: Server, status: int, raw: bytes, expected: np.ndarray, what: str) -> np.ndarray:
    if status != 200:
        raise BenchError(f"{server.name} answered {status} to {what}: {raw[:500]!r}")
    predicted = np.asarray(server.predictions(json.loads(raw)), dtype=float)
    if predicted.shape != expected.shape:
        count = predicted.shape[0] if predicted.ndim else 0
        raise BenchError(f"{server.name} returned {count} predictions for {what}, expected {len(expected)}")
    return predicted


async def warm_up_and_check(server: Server, work: Workload) -> None:
    """Warm-up single-row requests: each must be 200 and predict what raw predict does, or the bench aborts."""
    async with session(1) as client:
        for index in range(LATENCY_WARMUP):
            slot = index % len(work.single_bodies)
            status, raw = await post(client, server.url, work.single_bodies[slot])
            expected = work.single_expected[slot : slot + 1]
            predicted = check_answers(server, status, raw, expected, f"warm-up row {slot}")
            if not np.allclose(predicted, expected, rtol=1e-7, atol=0):
                row = json.loads(work.single_bodies[slot])
                raise BenchError(
                    f"{server.name} predicted {predicted[0]!r} for warm-up row {slot} but raw predict gives "
                    f"{expected[0]!r}; request: {row}"
                )


async def sequential_latency(server: Server, work: Workload) -> dict:
    latencies, errors = [], 0
    async with session(1) as client:
        for index in range(LATENCY_REQUESTS):
            data = work.single_bodies[index % len(work.single_bodies)]
            started = time.perf_counter()
            try:
                status, _ = await post(client, server.url, data)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            latencies.append(time.perf_counter() - started)
            errors += status != 200
    server.errors += errors
    return {"p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99), "errors": errors}


async def closed_loop(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """``concurrency`` workers sending one request after another on one keep-alive session for ``seconds``."""
    latencies: list[float] = []
    errors = 0

    async def worker(first: int, client: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal errors
        index = first
        while (started := time.perf_counter()) < deadline:
            try:
                status, _ = await post(client, url, bodies[index % len(bodies)])
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            latencies.append(time.perf_counter() - started)
            errors += status != 200
            index += concurrency

    async with session(concurrency) as client:
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(worker(number, client, deadline) for number in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": max(latencies, default=0.0) * 1000,
    }


async def batch_throughput(server: Server, work: Workload, label: str) -> dict:
    data, expected = work.batch_bodies[label], work.batch_expected[label]
    mismatches = 0
    async with session(1) as client:
        for index in range(BATCH_WARMUP):
            status, raw = await post(client, server.url, data)
            predicted = check_answers(server, status, raw, expected, f"the {label}-row batch")
            if index == 0:
                mismatches = int((~np.isclose(predicted, expected, rtol=1e-7, atol=0)).sum())
        errors = 0
        started = time.perf_counter()
        for _ in range(BATCH_REQUESTS):
            try:
                status, _ = await post(client, server.url, data)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            errors += status != 200
        elapsed = time.perf_counter() - started
    server.errors += errors
    return {"rows_per_s": len(expected) * BATCH_REQUESTS / elapsed, "errors": errors, "mismatches": mismatches}


async def measure_server(server: Server, work: Workload, seconds: float) -> None:
    await warm_up_and_check(server, work)
    server.results["latency"] = await sequential_latency(server, work)
    for concurrency in CONCURRENCIES:
        run = await closed_loop(server.url, work.single_bodies, concurrency, seconds)
        server.errors += run["errors"]
        server.results[f"c{concurrency}"] = run
    for label in BATCH_SIZES:
        server.results[label] = await batch_throughput(server, work, label)


# --- raw predict --------------------------------------------------------------------------------------------


def measure_raw(bundle: model_bundle.Bundle, work: Workload) -> dict:
    model = bundle.model
    for index in range(LATENCY_WARMUP):
        model.predict(work.single_frames[index % len(work.single_frames)])
    latencies = []
    for index in range(LATENCY_REQUESTS):
        frame = work.single_frames[index % len(work.single_frames)]
        started = time.perf_counter()
        model.predict(frame)
        latencies.append(time.perf_counter() - started)
    results = {"p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99)}
    for label, frame in work.batch_frames.items():
        for _ in range(BATCH_WARMUP):
            model.predict(frame)
        started = time.perf_counter()
        for _ in range(BATCH_REQUESTS):
            model.predict(frame)
        results[f"rows_per_s_{label}"] = len(frame) * BATCH_REQUESTS / (time.perf_counter() - started)
    return results


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q)) * 1000 if seconds else float("nan")


# --- reports ------------------------------------------------------------------------------------------------


def summary(servers: list[Server], raw: dict, args: argparse.Namespace) -> dict:
    result: dict = {}
    for server in servers:
        prefix, results = server.name, server.results
        result[f"{prefix}_p50_ms"] = round(results["latency"]["p50_ms"], 3)
        result[f"{prefix}_p99_ms"] = round(results["latency"]["p99_ms"], 3)
        for concurrency in CONCURRENCIES:
            result[f"{prefix}_rps_c{concurrency}"] = round(results[f"c{concurrency}"]["rps"], 1)
        for concurrency in CONCURRENCIES:
            result[f"{prefix}_p99_ms_c{concurrency}"] = round(results[f"c{concurrency}"]["p99_ms"], 3)
        result[f"{prefix}_errors"] = server.errors
        for label in BATCH_SIZES:
            result[f"{prefix}_rows_per_s_{label}"] = round(results[label]["rows_per_s"])
        result[f"{prefix}_mismatches_1k"] = results["1k"]["mismatches"]
    result["raw_p50_ms"] = round(raw["p50_ms"], 3)
    result["raw_p99_ms"] = round(raw["p99_ms"], 3)
    for label in BATCH_SIZES:
        result[f"raw_rows_per_s_{label}"] = round(raw[f"rows_per_s_{label}"])
    result["goal_rps_c8"] = result["seldon_rps_c8"] >= result["fastapi_rps_c8"]
    result["goal_p50"] = result["seldon_p50_ms"] <= result["raw_p50_ms"] + 2
    result["goal_rows_10k"] = result["seldon_rows_per_s_10k"] >= 0.5 * result["raw_rows_per_s_10k"]
    result.update(workers=args.workers, seconds=args.seconds, cpu_count=os.cpu_count())
    return result


def print_table(servers: list[Server], raw: dict, result: dict, args: argparse.Namespace) -> None:
    by_name = {server.name: server.results for server in servers}
    seldon, fastapi = by_name["seldon"], by_name["fastapi"]
    dash = "-"

    def line(label: str, seldon_value, fastapi_value, raw_value, spec: str) -> None:
        cells = [dash if value is None else format(value, spec) for value in (seldon_value, fastapi_value, raw_value)]
        print(f"{label:<30}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}")

    print(
        f"model serving: {args.model_type} regression on {args.rows} rows, {args.workers} worker(s), "
        f"{args.seconds:g} s per throughput run, {os.cpu_count()} CPUs"
    )
    print(f"{'measure':<30}{'seldon':>12}{'fastapi':>12}{'raw':>12}")
    line("single-row p50 ms", seldon["latency"]["p50_ms"], fastapi["latency"]["p50_ms"], raw["p50_ms"], ".2f")
    line("single-row p99 ms", seldon["latency"]["p99_ms"], fastapi["latency"]["p99_ms"], raw["p99_ms"], ".2f")
    for concurrency in CONCURRENCIES:
        key = f"c{concurrency}"
        line(f"req/s, concurrency {concurrency}", seldon[key]["rps"], fastapi[key]["rps"], None, ".1f")
        line(f"  p99 ms, concurrency {concurrency}", seldon[key]["p99_ms"], fastapi[key]["p99_ms"], None, ".2f")
        line(f"  errors, concurrency {concurrency}", seldon[key]["errors"], fastapi[key]["errors"], None, "d")
    for label in BATCH_SIZES:
        values = seldon[label]["rows_per_s"], fastapi[label]["rows_per_s"], raw[f"rows_per_s_{label}"]
        line(f"rows/s, {label}-row batches", *values, ",.0f")
    line("errors, all runs", result["seldon_errors"], result["fastapi_errors"], None, "d")
    line("1k batch: predictions != raw", seldon["1k"]["mismatches"], fastapi["1k"]["mismatches"], None, "d")
    floor = result["seldon_wrapper_floor_p50_ms"]
    print(f"Seldon's wrapper alone (a model class that does no work, same metrics): single-row p50 {floor:.2f} ms")
    print("goals:")
    goals = [
        ("seldon_rps_c8 >= fastapi_rps_c8", "goal_rps_c8", result["seldon_rps_c8"], result["fastapi_rps_c8"], ".1f"),
        ("seldon_p50_ms <= raw_p50_ms + 2", "goal_p50", result["seldon_p50_ms"], result["raw_p50_ms"] + 2, ".2f"),
        (
            "seldon_rows_per_s_10k >= 0.5 * raw_rows_per_s_10k",
            "goal_rows_10k",
            result["seldon_rows_per_s_10k"],
            0.5 * result["raw_rows_per_s_10k"],
            ",.0f",
        ),
    ]
    for text, key, left, right, spec in goals:
        verdict = "holds" if result[key] else "FAILS"
        print(f"  {text:<52}{format(left, spec):>12} vs {format(right, spec):>12}  {verdict}")


# --- main ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def seldon_server(model_dir: Path, sha256: str, state_dir: Path, workers: int):
    http_port, metrics_port, grpc_port = free_ports(3)
    os.environ["GUNICORN_WORKERS"] = str(workers)  # local_server.start passes os.environ to the server
    try:
        server = local_server.start(
            model_dir, sha256, state_dir, http_port, metrics_port, grpc_port, timeout=START_TIMEOUT_S
        )
        yield server
    finally:
        local_server.stop(http_port, state_dir)


def wrapper_floor_p50_ms(work: Workload, temp: Path) -> float:
    """Single-row p50 of seldon-core-microservice serving bench/seldon_floor.py, a class that does no work."""
    http_port, metrics_port, grpc_port = free_ports(3)
    command = [
        str(local_server.serving_venv() / "bin" / "seldon-core-microservice"),
        "bench.seldon_floor.FloorModel",
        *("--service-type", "MODEL", "--http-port", str(http_port)),
        *("--metrics-port", str(metrics_port), "--grpc-port", str(grpc_port)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"}
    log_file = temp / "floor.log"
    process = local_server.spawn(command, log_file, env)
    try:
        local_server.wait_healthy(
            f"http://{HOST}:{http_port}/health/ping", process, log_file, START_TIMEOUT_S, "Seldon floor server"
        )
        floor = Server("floor", f"http://{HOST}:{http_port}/api/v1.0/predictions", seldon_predictions)
        return asyncio.run(sequential_latency(floor, work))["p50_ms"]
    finally:
        stop_process_group(process)


def run_comparison(args: argparse.Namespace, bundle: model_bundle.Bundle, work: Workload, temp: Path) -> dict:
    raw = measure_raw(bundle, work)
    (fastapi_port,) = free_ports(1)
    fastapi_process = None
    with seldon_server(bundle.directory, bundle.card.sha256, temp / "state", args.workers) as seldon:
        try:
            fastapi_process = start_fastapi(bundle.directory, fastapi_port, args.workers, temp / "fastapi.log")
            servers = [
                Server("seldon", seldon.predictions_url, seldon_predictions),
                Server("fastapi", f"http://{HOST}:{fastapi_port}/predict", fastapi_predictions),
            ]
            for server in servers:
                asyncio.run(measure_server(server, work, args.seconds))
        finally:
            if fastapi_process is not None:
                stop_process_group(fastapi_process)
    result = summary(servers, raw, args)
    result["seldon_wrapper_floor_p50_ms"] = round(wrapper_floor_p50_ms(work, temp), 3)
    print_table(servers, raw, result, args)
    return result


def run_load_test(args: argparse.Namespace, bundle: model_bundle.Bundle, work: Workload, temp: Path) -> dict:
    with seldon_server(bundle.directory, bundle.card.sha256, temp / "state", args.workers) as seldon:
        server = Server("seldon", seldon.predictions_url, seldon_predictions)
        asyncio.run(warm_up_and_check(server, work))
        run = asyncio.run(closed_loop(server.url, work.single_bodies, args.load_concurrency, args.load_seconds))
    print(
        f"Seldon load test: {args.workers} worker(s), concurrency {args.load_concurrency}, "
        f"{args.load_seconds:g} s, single-row requests, {os.cpu_count()} CPUs"
    )
    print(f"{'requests':<12}{run['requests']:>12,d}")
    print(f"{'errors':<12}{run['errors']:>12,d}")
    print(f"{'req/s':<12}{run['rps']:>12.1f}")
    for key in ("p50_ms", "p99_ms", "max_ms"):
        print(f"{key.replace('_', ' '):<12}{run[key]:>12.2f}")
    return {
        "load_seconds": args.load_seconds,
        "concurrency": args.load_concurrency,
        "requests": run["requests"],
        "errors": run["errors"],
        "rps": round(run["rps"], 1),
        "p50_ms": round(run["p50_ms"], 3),
        "p99_ms": round(run["p99_ms"], 3),
        "max_ms": round(run["max_ms"], 3),
        "workers": args.workers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (Seldon and FastAPI)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrency run")
    parser.add_argument("--rows", type=int, default=5000, help="training rows")
    parser.add_argument("--model-type", default="hist_gradient_boosting")
    parser.add_argument("--load-test", action="store_true", help="only Seldon, one long run at one concurrency")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--load-concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.workers < 1 or args.seconds <= 0 or args.load_seconds <= 0 or args.load_concurrency < 1:
        parser.error("--workers and --load-concurrency must be >= 1, --seconds and --load-seconds > 0")

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as directory:
        temp = Path(directory)
        bundle = build_model(temp / "model", args.rows, args.model_type)
        work = prepare_workload(bundle)
        try:
            if args.load_test:
                result = run_load_test(args, bundle, work, temp)
            else:
                result = run_comparison(args, bundle, work, temp)
        except (BenchError, local_server.LocalServerError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(json.dumps(result))
    return 1 if args.load_test and result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
