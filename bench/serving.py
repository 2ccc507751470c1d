"""Model serving latency and throughput: this project's OIP model server, a hand-written FastAPI server and raw predict.

    .venv/bin/python bench/serving.py [--seconds 10] [--model-type hist_gradient_boosting] [--write-docs]
    .venv/bin/python bench/serving.py --load-test [--load-seconds 60] [--load-concurrency 32] [--write-docs]

Trains one regression model on ``house_prices(rows=5000, seed=7)`` (target "price"), saves it as a model bundle
in a temporary directory and, on that same model, measures:

- server: the real model server (``python -m serving``, the serving image's entry point: the KServe SDK's Open
  Inference Protocol server), started with ``serving.local_server.start``, one process;
  POST /v2/models/<name>/infer with an OIP table (one input per column, ``parameters.content_type: "pd"``);
- fastapi: bench/fastapi_reference.py, the server users usually write by hand (joblib.load at startup,
  ``model.predict(pd.DataFrame(ndarray, columns=names))``), run by uvicorn with one worker, POST /predict;
- raw: ``bundle.model.predict(frame)`` in this process on DataFrames built beforehand (the floor).

Measures: sequential single-row latency p50/p99 (500 requests after 50 warm-up ones) and the p50 of 500 health
checks (the HTTP round trip with no model work: the floor under any request); single-row req/s and p99
at concurrency 1, 8 and 32 for ``--seconds`` each (asyncio + aiohttp, one keep-alive ClientSession, N workers,
non-200 answers and connection failures counted as errors); rows/s for 1,000- and 10,000-row batches (20
sequential requests after 2 warm-up ones, bodies encoded once beforehand). Prints a table, the goals of issue 15
and whether each holds, and, last, one JSON line.

``--load-test`` runs the model server only: single-row requests at ``--load-concurrency`` for ``--load-seconds``;
prints requests, errors, req/s, p50/p99/max ms, the goal, and a JSON last line; exits 1 if any request failed.

Request rows are real rows of held-out data (``house_prices(rows=10000, seed=8)``), in the model card's feature
order, with the values the model saw in training (``coerce_features``: "True" rather than true, missing as null),
the same values in both servers' request forms: numeric columns are FP64 inputs, categorical ones BYTES.
Single-row requests cycle through complete rows; warm-up answers must be 200 and equal raw predict, or the bench
aborts. Batches include rows with missing values; the table counts the predictions in the 1k batch that differ
from raw predict.

``--write-docs`` also writes the figures into docs/benchmarks.md: the section "Serving" (the comparison) or
"Serving load test", stamped with the command, date and machine.

Requests go to 127.0.0.1 only, on free ports. OMP_NUM_THREADS=1 for both servers and this process. The load
generator shares the machine's CPUs with the servers. Both servers are stopped when the bench ends, whatever
happens.
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
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
from bench import _docs  # noqa: E402
from components.ingest_data.samples import house_prices  # noqa: E402
from components.train_model.logic import train  # noqa: E402
from serving import local_server  # noqa: E402

HOST = "127.0.0.1"
TARGET = "price"
MODEL_NAME = "house-prices"
HEADERS = {"Content-Type": "application/json"}
SINGLE_ROW_POOL = 200  # distinct complete rows cycled through by single-row requests
LATENCY_WARMUP, LATENCY_REQUESTS = 50, 500
BATCH_WARMUP, BATCH_REQUESTS = 2, 20
BATCH_SIZES = {"1k": 1_000, "10k": 10_000}
CONCURRENCIES = (1, 8, 32)
REQUEST_TIMEOUT_S = 120.0
START_TIMEOUT_S = 120.0

# The goals of issue 15 (acceptance 3).
GOAL_RPS_C8_RATIO, STRETCH_RPS_C8_RATIO = 1.5, 2.0  # model server req/s at concurrency 8 over FastAPI's
GOAL_P50_MARGIN_MS = 1.5  # single-row p50 over raw predict's
GOAL_ROWS_10K_SHARE = 0.6  # rows/s on 10,000-row batches, share of raw predict's
GOAL_LOAD_SECONDS, GOAL_LOAD_CONCURRENCY = 60.0, 32  # with 0 errors


class BenchError(RuntimeError):
    """The bench cannot produce meaningful numbers; the message says why."""


@dataclass
class Workload:
    """Request bodies of both servers and the frames and predictions of raw predict for the same rows."""

    single_frames: list[pd.DataFrame]
    single_expected: np.ndarray
    batch_frames: dict[str, pd.DataFrame]
    batch_expected: dict[str, np.ndarray]
    single_bodies: dict[str, list[bytes]]  # per server
    batch_bodies: dict[str, dict[str, bytes]]  # per server, per batch label


@dataclass
class Server:
    name: str
    url: str
    predictions: Callable[[dict], list]  # response JSON -> its predictions
    health_url: str  # a GET that does no model work: the HTTP round trip alone
    errors: int = 0
    results: dict = field(default_factory=dict)


# --- model, data and request bodies -------------------------------------------------------------------------


def build_model(model_dir: Path, rows: int, model_type: str) -> model_bundle.Bundle:
    frame = house_prices(rows=rows, seed=7)
    pipeline, card = train(frame, TARGET, "regression", model_type=model_type)
    written = model_bundle.save(model_dir, pipeline, card)
    return model_bundle.load(model_dir, expected_sha256=written.sha256)


def json_rows(frame: pd.DataFrame) -> list[list]:
    """Rows as JSON-ready Python values: floats, strings, None for missing (NaN -> null)."""
    return frame.astype(object).where(frame.notna(), None).to_numpy().tolist()


def fastapi_body(names: list[str], rows: list[list]) -> bytes:
    return json.dumps({"data": {"names": names, "ndarray": rows}}).encode()


def oip_body(features: list[dict], rows: list[list]) -> bytes:
    """An OIP table: one input per column, FP64 for numeric columns and BYTES for categorical ones."""
    inputs = []
    for index, feature in enumerate(features):
        numeric = feature["type"] == model_bundle.NUMERIC
        inputs.append(
            {
                "name": feature["name"],
                "shape": [len(rows)],
                "datatype": "FP64" if numeric else "BYTES",
                "data": [row[index] for row in rows],
            }
        )
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


def prepare_workload(bundle: model_bundle.Bundle) -> Workload:
    names = bundle.feature_names
    held_out = house_prices(rows=max(BATCH_SIZES.values()), seed=8)[names]
    # The values the model saw in training; what a client of the hand-written server has to send.
    coerced = model_bundle.coerce_features(held_out, bundle.features)
    complete = coerced[coerced.notna().all(axis=1)].head(SINGLE_ROW_POOL)
    single_rows = json_rows(complete)
    # Expected answers go through the same path as a request: JSON values -> DataFrame -> bundle.predict.
    single_expected = bundle.predict(pd.DataFrame(single_rows, columns=names))
    batch_rows = {label: json_rows(coerced.head(size)) for label, size in BATCH_SIZES.items()}
    return Workload(
        single_frames=[complete.iloc[[index]].copy() for index in range(len(complete))],
        single_expected=single_expected,
        batch_frames={label: coerced.head(size).copy() for label, size in BATCH_SIZES.items()},
        batch_expected={label: bundle.predict(pd.DataFrame(rows, columns=names)) for label, rows in batch_rows.items()},
        single_bodies={
            "server": [oip_body(bundle.features, [row]) for row in single_rows],
            "fastapi": [fastapi_body(names, [row]) for row in single_rows],
        },
        batch_bodies={
            "server": {label: oip_body(bundle.features, rows) for label, rows in batch_rows.items()},
            "fastapi": {label: fastapi_body(names, rows) for label, rows in batch_rows.items()},
        },
    )


def oip_predictions(payload: dict) -> list:
    return next(output["data"] for output in payload["outputs"] if output["name"] == TARGET)


def fastapi_predictions(payload: dict) -> list:
    return payload["predictions"]


# --- servers ------------------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Distinct ports on 127.0.0.1 that are free now (each socket held until all are chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in sockets:
            probe.bind((HOST, 0))
        return [probe.getsockname()[1] for probe in sockets]


@contextlib.contextmanager
def model_server(bundle: model_bundle.Bundle, state_dir: Path) -> Iterator[local_server.LocalServer]:
    """The real model server, as `make serve` starts it, stopped on exit."""
    http_port, metrics_port, grpc_port = free_ports(3)
    try:
        yield local_server.start(
            bundle.directory,
            bundle.card.sha256,
            state_dir,
            http_port=http_port,
            metrics_port=metrics_port,
            grpc_port=grpc_port,
            timeout=START_TIMEOUT_S,
            model_name=MODEL_NAME,
        )
    finally:
        local_server.stop(http_port, state_dir)


@contextlib.contextmanager
def fastapi_server(model_dir: Path, log_file: Path) -> Iterator[str]:
    """bench/fastapi_reference.py under uvicorn, one worker; yields its /predict URL, stopped on exit."""
    (port,) = free_ports(1)
    command = [
        *(sys.executable, "-m", "uvicorn", "fastapi_reference:app", "--app-dir", str(BENCH_DIR)),
        *("--host", HOST, "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REFERENCE_MODEL_PATH": str(model_dir / model_bundle.MODEL_FILE)}
    process = local_server.spawn(command, log_file, env)
    try:
        url = f"http://{HOST}:{port}/health"
        local_server.wait_healthy(url, process, log_file, START_TIMEOUT_S, "the FastAPI server")
        yield f"http://{HOST}:{port}/predict"
    finally:
        local_server.stop_group(process.pid, timeout=10)
        process.wait(timeout=5)


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
    bodies = work.single_bodies[server.name]
    async with session(1) as client:
        for index in range(LATENCY_WARMUP):
            slot = index % len(bodies)
            status, raw = await post(client, server.url, bodies[slot])
            expected = work.single_expected[slot : slot + 1]
            predicted = check_answers(server, status, raw, expected, f"warm-up row {slot}")
            if not np.allclose(predicted, expected, rtol=1e-7, atol=0):
                raise BenchError(
                    f"{server.name} predicted {predicted[0]!r} for warm-up row {slot} but raw predict gives "
                    f"{expected[0]!r}; request: {bodies[slot].decode()}"
                )


async def sequential_latency(server: Server, work: Workload) -> dict:
    bodies = work.single_bodies[server.name]
    latencies, errors = [], 0
    async with session(1) as client:
        for index in range(LATENCY_REQUESTS):
            started = time.perf_counter()
            try:
                status, _ = await post(client, server.url, bodies[index % len(bodies)])
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            latencies.append(time.perf_counter() - started)
            errors += status != 200
    server.errors += errors
    return {"p50_ms": percentile_ms(latencies, 50), "p99_ms": percentile_ms(latencies, 99), "errors": errors}


async def health_latency(server: Server) -> float:
    """p50 ms of sequential health checks: what the HTTP stack alone costs per request (no model work)."""
    latencies = []
    async with session(1) as client:
        for _ in range(LATENCY_REQUESTS):
            started = time.perf_counter()
            async with client.get(server.health_url) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
    return percentile_ms(latencies, 50)


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
    data, expected = work.batch_bodies[server.name][label], work.batch_expected[label]
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
    server.results["health_p50_ms"] = await health_latency(server)
    for concurrency in CONCURRENCIES:
        run = await closed_loop(server.url, work.single_bodies[server.name], concurrency, seconds)
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
        result[f"{prefix}_health_p50_ms"] = round(results["health_p50_ms"], 3)
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
    result["rps_c8_ratio"] = round(result["server_rps_c8"] / result["fastapi_rps_c8"], 2)
    result["goal_rps_c8"] = result["rps_c8_ratio"] >= GOAL_RPS_C8_RATIO
    result["stretch_rps_c8"] = result["rps_c8_ratio"] >= STRETCH_RPS_C8_RATIO
    result["goal_p50"] = result["server_p50_ms"] <= result["raw_p50_ms"] + GOAL_P50_MARGIN_MS
    result["goal_rows_10k"] = result["server_rows_per_s_10k"] >= GOAL_ROWS_10K_SHARE * result["raw_rows_per_s_10k"]
    result["goal_no_errors"] = result["server_errors"] == 0
    result.update(seconds=args.seconds, cpu_count=os.cpu_count())
    return result


def print_table(servers: list[Server], raw: dict, result: dict, args: argparse.Namespace) -> None:
    by_name = {server.name: server.results for server in servers}
    server, fastapi = by_name["server"], by_name["fastapi"]
    dash = "-"

    def line(label: str, server_value, fastapi_value, raw_value, spec: str) -> None:
        cells = [dash if value is None else format(value, spec) for value in (server_value, fastapi_value, raw_value)]
        print(f"{label:<30}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}")

    print(
        f"model serving: {args.model_type} regression on {args.rows} rows, one worker each, "
        f"{args.seconds:g} s per throughput run, {os.cpu_count()} CPUs"
    )
    print(f"{'measure':<30}{'server':>12}{'fastapi':>12}{'raw':>12}")
    line("single-row p50 ms", server["latency"]["p50_ms"], fastapi["latency"]["p50_ms"], raw["p50_ms"], ".2f")
    line("single-row p99 ms", server["latency"]["p99_ms"], fastapi["latency"]["p99_ms"], raw["p99_ms"], ".2f")
    line("health check p50 ms (no model)", server["health_p50_ms"], fastapi["health_p50_ms"], None, ".2f")
    for concurrency in CONCURRENCIES:
        key = f"c{concurrency}"
        line(f"req/s, concurrency {concurrency}", server[key]["rps"], fastapi[key]["rps"], None, ".1f")
        line(f"  p99 ms, concurrency {concurrency}", server[key]["p99_ms"], fastapi[key]["p99_ms"], None, ".2f")
        line(f"  errors, concurrency {concurrency}", server[key]["errors"], fastapi[key]["errors"], None, "d")
    for label in BATCH_SIZES:
        values = server[label]["rows_per_s"], fastapi[label]["rows_per_s"], raw[f"rows_per_s_{label}"]
        line(f"rows/s, {label}-row batches", *values, ",.0f")
    line("errors, all runs", result["server_errors"], result["fastapi_errors"], None, "d")
    line("1k batch: predictions != raw", server["1k"]["mismatches"], fastapi["1k"]["mismatches"], None, "d")
    print("goals (issue 15):")
    stretch = "stretch 2x holds" if result["stretch_rps_c8"] else "stretch 2x missed"
    goals = [
        (
            f"req/s c8 >= {GOAL_RPS_C8_RATIO:g} x fastapi ({result['rps_c8_ratio']:.2f} x; {stretch})",
            result["goal_rps_c8"],
            f"{result['server_rps_c8']:.1f}",
            f"{GOAL_RPS_C8_RATIO * result['fastapi_rps_c8']:.1f}",
        ),
        (
            f"single-row p50 ms <= raw + {GOAL_P50_MARGIN_MS:g}",
            result["goal_p50"],
            f"{result['server_p50_ms']:.2f}",
            f"{result['raw_p50_ms'] + GOAL_P50_MARGIN_MS:.2f}",
        ),
        (
            f"rows/s 10k batches >= {GOAL_ROWS_10K_SHARE:.0%} of raw",
            result["goal_rows_10k"],
            f"{result['server_rows_per_s_10k']:,.0f}",
            f"{GOAL_ROWS_10K_SHARE * result['raw_rows_per_s_10k']:,.0f}",
        ),
    ]
    for text, holds, left, right in goals:
        print(f"  {text:<58}{left:>10} vs {right:>10}  {'holds' if holds else 'MISSED'}")
    print(
        f"  {GOAL_LOAD_SECONDS:g} s at concurrency {GOAL_LOAD_CONCURRENCY} with 0 errors: bench/serving.py --load-test"
    )


def comparison_markdown(result: dict, args: argparse.Namespace) -> str:
    """The comparison as docs/benchmarks.md shows it: one table, then the goals of issue 15 with their verdicts."""

    def cells(key: str, spec: str) -> list[str]:
        return [format(result[f"{name}_{key}"], spec) for name in ("server", "fastapi")]

    def pair(first: str, second: str, spec: str) -> list[str]:
        return [f"{a} / {b}" for a, b in zip(cells(first, spec), cells(second, spec), strict=True)]

    raw_latency = f"{result['raw_p50_ms']:.2f} / {result['raw_p99_ms']:.2f}"
    rows = [
        ["single-row p50 / p99 ms", *pair("p50_ms", "p99_ms", ".2f"), raw_latency],
        ["health check p50 ms (the HTTP round trip, no model work)", *cells("health_p50_ms", ".2f"), ""],
    ]
    for concurrency in CONCURRENCIES:
        rps, p99 = cells(f"rps_c{concurrency}", ",.1f"), cells(f"p99_ms_c{concurrency}", ",.1f")
        rows.append(
            [f"req/s, concurrency {concurrency} (p99 ms)", *(f"{a} ({b})" for a, b in zip(rps, p99, strict=True)), ""]
        )
    for label, size in BATCH_SIZES.items():
        key = f"rows_per_s_{label}"
        rows.append([f"rows/s, {size:,}-row batches", *cells(key, ",d"), f"{result[f'raw_{key}']:,d}"])
    differing = "predictions that differ from raw predict, 1,000-row batch with missing values"
    rows.append([differing, *cells("mismatches_1k", "d"), ""])
    rows.append(["errors, all runs", *cells("errors", "d"), ""])
    table = _docs.markdown_table(["measure", "this server", "fastapi", "raw predict"], rows)

    def verdict(holds: bool) -> str:
        return "holds" if holds else "missed"

    stretch = verdict(result["stretch_rps_c8"])
    margin = result["server_p50_ms"] - result["raw_p50_ms"]
    fastapi_margin = result["fastapi_p50_ms"] - result["raw_p50_ms"]
    share = result["server_rows_per_s_10k"] / result["raw_rows_per_s_10k"]
    goals = [
        f"- req/s at concurrency 8 ≥ {GOAL_RPS_C8_RATIO:g}x the FastAPI endpoint: {verdict(result['goal_rps_c8'])}, "
        f"{result['rps_c8_ratio']:.2f}x (stretch {STRETCH_RPS_C8_RATIO:g}x {stretch})",
        f"- 10,000-row batches ≥ {GOAL_ROWS_10K_SHARE:.0%} of raw rows/s: {verdict(result['goal_rows_10k'])}, "
        f"{share:.0%}",
        f"- single-row p50 ≤ raw predict + {GOAL_P50_MARGIN_MS:g} ms: {verdict(result['goal_p50'])}, raw + "
        f"{margin:.1f} ms (the FastAPI endpoint: raw + {fastapi_margin:.1f} ms)",
        f"- {GOAL_LOAD_SECONDS:g} s at concurrency {GOAL_LOAD_CONCURRENCY} with 0 errors: see *Serving load test*",
    ]
    setup = (
        f"A {args.model_type} regression model on {args.rows:,} rows, one worker each, {args.seconds:g} s per "
        f"throughput run, the load generator on the same {result['cpu_count']} CPUs."
    )
    return "\n".join([setup, "", table, "", "Goals (issue 15):", "", *goals])


def load_test_markdown(result: dict) -> str:
    header = ["concurrency", "seconds", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms"]
    row = [result["concurrency"], f"{result['load_seconds']:g}", f"{result['requests']:,d}", result["errors"]]
    row += [f"{result[key]:,.1f}" for key in ("rps", "p50_ms", "p99_ms", "max_ms")]
    goal_run = result["load_seconds"] >= GOAL_LOAD_SECONDS and result["concurrency"] >= GOAL_LOAD_CONCURRENCY
    verdict = "holds" if result["goal_load"] else ("missed" if goal_run else "not measured (a shorter or lower run)")
    goal = (
        f"Goal (issue 15): {GOAL_LOAD_SECONDS:g} s at concurrency {GOAL_LOAD_CONCURRENCY} with 0 errors: {verdict}. "
        "Single-row requests, one worker."
    )
    return "\n".join([_docs.markdown_table(header, [row]), "", goal])


# --- main ---------------------------------------------------------------------------------------------------


def run_comparison(args: argparse.Namespace, bundle: model_bundle.Bundle, work: Workload, temp: Path) -> dict:
    raw = measure_raw(bundle, work)
    with model_server(bundle, temp / "state") as oip, fastapi_server(bundle.directory, temp / "fastapi.log") as url:
        servers = [
            Server("server", oip.infer_url, oip_predictions, f"{oip.base_url}/v2/health/live"),
            Server("fastapi", url, fastapi_predictions, url.removesuffix("/predict") + "/health"),
        ]
        for server in servers:
            asyncio.run(measure_server(server, work, args.seconds))
    result = summary(servers, raw, args)
    print_table(servers, raw, result, args)
    return result


def run_load_test(args: argparse.Namespace, bundle: model_bundle.Bundle, work: Workload, temp: Path) -> dict:
    with model_server(bundle, temp / "state") as oip:
        server = Server("server", oip.infer_url, oip_predictions, f"{oip.base_url}/v2/health/live")
        asyncio.run(warm_up_and_check(server, work))
        bodies = work.single_bodies["server"]
        run = asyncio.run(closed_loop(server.url, bodies, args.load_concurrency, args.load_seconds))
    print(
        f"model server load test: one worker, concurrency {args.load_concurrency}, {args.load_seconds:g} s, "
        f"single-row requests, {os.cpu_count()} CPUs"
    )
    print(f"{'requests':<12}{run['requests']:>12,d}")
    print(f"{'errors':<12}{run['errors']:>12,d}")
    print(f"{'req/s':<12}{run['rps']:>12.1f}")
    for key in ("p50_ms", "p99_ms", "max_ms"):
        print(f"{key.replace('_', ' '):<12}{run[key]:>12.2f}")
    goal_run = args.load_seconds >= GOAL_LOAD_SECONDS and args.load_concurrency >= GOAL_LOAD_CONCURRENCY
    holds = goal_run and run["errors"] == 0
    verdict = "holds" if holds else ("MISSED" if goal_run else "not measured (shorter or lower than the goal)")
    print(f"goal (issue 15): {GOAL_LOAD_SECONDS:g} s at concurrency {GOAL_LOAD_CONCURRENCY} with 0 errors: {verdict}")
    return {
        "load_seconds": args.load_seconds,
        "concurrency": args.load_concurrency,
        "requests": run["requests"],
        "errors": run["errors"],
        "rps": round(run["rps"], 1),
        "p50_ms": round(run["p50_ms"], 3),
        "p99_ms": round(run["p99_ms"], 3),
        "max_ms": round(run["max_ms"], 3),
        "goal_load": holds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each concurrency run")
    parser.add_argument("--rows", type=int, default=5000, help="training rows")
    parser.add_argument("--model-type", default="hist_gradient_boosting")
    parser.add_argument("--load-test", action="store_true", help="only the model server, one long run")
    parser.add_argument("--load-seconds", type=float, default=GOAL_LOAD_SECONDS)
    parser.add_argument("--load-concurrency", type=int, default=GOAL_LOAD_CONCURRENCY)
    parser.add_argument("--write-docs", action="store_true", help="also write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    if args.seconds <= 0 or args.load_seconds <= 0 or args.load_concurrency < 1:
        parser.error("--seconds and --load-seconds must be > 0, --load-concurrency >= 1")

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
    if args.write_docs:
        if args.load_test:
            written = _docs.write_section("Serving load test", load_test_markdown(result), _docs.command_line())
        else:
            written = _docs.write_section("Serving", comparison_markdown(result, args), _docs.command_line())
        print(f"wrote {written}", file=sys.stderr)
    return 1 if args.load_test and result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
