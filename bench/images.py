"""Image sizes: each image beside its base and its goal, its largest installed distributions, bytecode and tests.

    .venv/bin/python bench/images.py [IMAGE ...] [--top 12]
    .venv/bin/python bench/images.py --runs 5 --model-dir DIR       # and how long what they start takes
    .venv/bin/python bench/images.py --write-docs                     # also into docs/benchmarks.md

IMAGE defaults to both images `make images` builds (kfp-mlops-components and kfp-mlops-serving, tagged
<project version>-<short commit>, as IMAGE_TAG; --tag and --registry change that). For each image, Docker's size
of the image and of its base: the image its org.opencontainers.image.base.name label names, else the first --base,
provided its layers are the first of the image's (a base tag rebuilt since shows as "?"). Measured inside the
image (``docker run --rm --entrypoint python IMAGE -c ...``, no network): its site-packages, the bytes
of compiled bytecode (.pyc) and of third-party test directories in it, the Debian docs, man pages and locales, and
the --top largest installed distributions, each the size of the files its RECORD lists that exist (files pruned at
build time count as 0; bytecode written after install is not in any RECORD and counted under .pyc only). Images
whose repository is kfp-mlops-serving or kfp-mlops-components are compared with the goals of issue 16.

--runs N (default 0: sizes only) also times what each image starts, N times per image, round-robin over the
images given (a change in the machine's load falls on each alike; the load averages are printed):
- serving images, with --model-dir DIR (a model bundle: model.json, model.joblib): the cold start, from
  `docker run` to GET /v2/health/ready answering 200, the container as the image defines it (uid 8888) with the
  Seldon operator's environment, on host networking and free loopback ports;
- components images: the MLflow server's start with the command and environment of
  cluster/manifests/mlflow.yaml (its database on a tmpfs, host and port changed to a free loopback port), from
  `docker run` to GET /health answering 200; and the import of what the steps import (every component module,
  MLflow, Evidently), timed inside one container.
Then, once per image, the bytecode written when writing is allowed (as root): by the server until it is ready and
has answered one request, and by that import; each file is a module the image holds no .pyc for, which every
start compiles again. Every container is removed when the bench ends. Prints tables and, last, one JSON line;
never fails on a missed goal. ``--write-docs`` also writes the tables into docs/benchmarks.md ("Image sizes").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

DEFAULT_BASES = ["kfp-mlops-base:bookworm", "python:3.11.14-slim-bookworm"]  # make base-image; the Dockerfiles' default
BASE_LABEL = "org.opencontainers.image.base.name"
GOALS_MB = {"kfp-mlops-serving": 500, "kfp-mlops-components": 1000}  # issue 16, on the Debian base
MB = 1e6  # Docker's unit: `docker images` shows 1.41GB for 1.41e9 bytes

# Runs inside the image: only the standard library, and it prints one JSON document.
PROBE = r"""
import importlib.metadata, json, os, sys, sysconfig

def tree(path):
    total = pyc = tests = 0
    for root, dirs, files in os.walk(path):
        in_tests = any(part in ("tests", "test") for part in os.path.relpath(root, path).split(os.sep))
        for name in files:
            try:
                size = os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            total += size
            pyc += size if name.endswith(".pyc") else 0
            tests += size if in_tests else 0
    return total, pyc, tests

site = sysconfig.get_paths()["purelib"]
total, pyc, tests = tree(site)
dists = {}
for dist in importlib.metadata.distributions():
    size = 0
    for file in dist.files or []:
        path = file.locate()
        if os.path.isfile(path) and not os.path.islink(path):
            size += os.path.getsize(path)
    name = dist.metadata["Name"]
    if str(dist.locate_file("")).rstrip("/") == site.rstrip("/"):
        dists[name] = {"version": dist.version, "bytes": size}
share = {}
for part in ("doc", "man", "locale"):
    share[part] = tree(os.path.join("/usr/share", part))[0]
print(json.dumps({"python": sys.version.split()[0], "site_packages": site, "site_bytes": total, "pyc_bytes": pyc,
                  "tests_bytes": tests, "share_bytes": share, "distributions": dists}))
"""


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def default_tag() -> str:
    """IMAGE_TAG as the Makefile computes it: <project version>-<short commit>."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1]
    version = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)[1]
    commit = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return f"{version}-{commit}"


def repository(image: str) -> str:
    """kfp-mlops-serving for registry.example/kfp-mlops-serving:tag."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def image_bytes(image: str) -> int | None:
    output = docker("image", "inspect", "--format", "{{.Size}}", image, check=False)
    return int(output) if output.isdigit() else None


def layers(image: str) -> list[str]:
    return json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image, check=False) or "[]")


def base_of(image: str, candidates: list[str]) -> str | None:
    """The image's base: the labelled one, else the first candidate; either only if its layers start the image's
    (a base tag rebuilt since names another image, whose size would not be this image's base)."""
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image) or "null") or {}
    own = layers(image)
    for base in [labels[BASE_LABEL]] if BASE_LABEL in labels else candidates:
        theirs = layers(base)
        if theirs and own[: len(theirs)] == theirs:
            return base
    return None


def probe(image: str) -> dict:
    output = docker("run", "--rm", "--network", "none", "--entrypoint", "python", image, "-c", PROBE)
    return json.loads(output.splitlines()[-1])


def measure_sizes(image: str, bases: list[str]) -> dict:
    size = image_bytes(image)
    if size is None:
        raise RuntimeError(f"no image {image} here: build it (make images) or name one that exists")
    base = base_of(image, bases)
    inside = probe(image)
    goal = GOALS_MB.get(repository(image))
    return {
        "image": image,
        "image_mb": round(size / MB, 1),
        "base": base,
        "base_mb": None if base is None else round(image_bytes(base) / MB, 1),
        "goal_mb": goal,
        "goal_met": None if goal is None else size / MB <= goal,
        "python": inside["python"],
        "site_packages_mb": round(inside["site_bytes"] / MB, 1),
        "pyc_mb": round(inside["pyc_bytes"] / MB, 1),
        "tests_mb": round(inside["tests_bytes"] / MB, 1),
        "share_mb": {part: round(value / MB, 1) for part, value in inside["share_bytes"].items()},
        "distributions": inside["distributions"],
    }


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@contextlib.contextmanager
def serving_container(image: str, model_dir: Path, *extra: str) -> Iterator[tuple[str, int]]:
    """Starts the serving image on free loopback ports with the Seldon operator's environment; yields (id, port)."""
    http, grpc, metrics = free_ports(3)
    container = docker(
        "run", "-d", "--network", "host", "-v", f"{model_dir.resolve()}:/mnt/models:ro",
        "-e", "MLSERVER_MODEL_URI=/mnt/models", "-e", "PREDICTIVE_UNIT_ID=bench",
        "-e", f"PREDICTIVE_UNIT_HTTP_SERVICE_PORT={http}", "-e", f"PREDICTIVE_UNIT_GRPC_SERVICE_PORT={grpc}",
        "-e", f"PREDICTIVE_UNIT_METRICS_SERVICE_PORT={metrics}", *extra, image,
    )  # fmt: skip
    try:
        yield container, http
    finally:
        docker("rm", "-f", container, check=False)


def wait_ready(container: str, port: int, started: float, path: str, timeout: float = 180.0) -> float:
    url = f"http://127.0.0.1:{port}{path}"
    while time.monotonic() - started < timeout:
        if http_status(url) == 200:
            return time.monotonic() - started
        if docker("inspect", "--format", "{{.State.Running}}", container, check=False) != "true":
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False)
            raise RuntimeError(f"the server exited before it was ready:\n{(logs.stdout + logs.stderr)[-2000:]}")
        time.sleep(0.02)
    raise RuntimeError(f"not ready after {timeout:g} s")


def pyc_written(container: str) -> list[str]:
    return sorted(line.split()[-1] for line in docker("diff", container).splitlines() if line.endswith(".pyc"))


def serving_start(image: str, model_dir: Path, writing: bool = False) -> tuple[float, list[str]]:
    """Seconds from `docker run` to ready; with ``writing``, as root with bytecode writing on, and the .pyc written."""
    extra = ("--user", "0", "-e", "PYTHONDONTWRITEBYTECODE=") if writing else ()
    started = time.monotonic()
    with serving_container(image, model_dir, *extra) as (container, port):
        seconds = wait_ready(container, port, started, "/v2/health/ready")
        if not writing:
            return seconds, []
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/bench", timeout=5).read()
        return seconds, pyc_written(container)


def mlflow_command() -> tuple[list[str], dict[str, str]]:
    """cluster/manifests/mlflow.yaml's MLflow container: its command and plain environment."""
    import yaml

    documents = yaml.safe_load_all((REPO_ROOT / "cluster" / "manifests" / "mlflow.yaml").read_text())
    (deployment,) = [doc for doc in documents if doc and doc.get("kind") == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    environment = {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    return list(container["command"]), environment


def mlflow_start(image: str, writing: bool = False) -> tuple[float, list[str]]:
    command, environment = mlflow_command()
    (port,) = free_ports(1)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    # The pod's user (the image's) unless writing, which takes root; the tmpfs is writable by everyone.
    options = ["--user", "0"] if writing else []
    if writing:
        environment |= {"PYTHONDONTWRITEBYTECODE": ""}
    options += [item for name, value in environment.items() for item in ("-e", f"{name}={value}")]
    started = time.monotonic()
    container = docker(
        "run", "-d", "--network", "host", "--tmpfs", "/data", *options,
        "--entrypoint", command[0], image, *command[1:],
    )  # fmt: skip
    try:
        seconds = wait_ready(container, port, started, "/health")
        return seconds, pyc_written(container) if writing else []
    finally:
        docker("rm", "-f", container, check=False)


# What the steps import, module-level and lazily (detect_drift: evidently; register_model: mlflow.sklearn).
STEP_IMPORTS = """
import importlib, pkgutil, time
started = time.perf_counter()
import components
for module in pkgutil.walk_packages(components.__path__, "components."):
    importlib.import_module(module.name)
import evidently, evidently.presets, mlflow, mlflow.sklearn
print(time.perf_counter() - started)
"""


def step_imports(image: str, writing: bool = False) -> tuple[float, list[str]]:
    extra = ["--user", "0", "-e", "PYTHONDONTWRITEBYTECODE="] if writing else []
    container = docker("create", "--network", "none", *extra, "--entrypoint", "python3", image, "-c", STEP_IMPORTS)
    try:
        result = subprocess.run(["docker", "start", "-a", container], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"importing the steps' modules in {image} failed:\n{result.stderr[-2000:]}")
        return float(result.stdout.split()[-1]), pyc_written(container) if writing else []
    finally:
        docker("rm", "-f", container, check=False)


def timings(image: str, model_dir: Path | None) -> dict:
    """What to time for this image: name -> function(image, writing) -> (seconds, .pyc written)."""
    if repository(image) == "kfp-mlops-serving":
        if model_dir is None:
            return {}
        return {"cold start to ready s": lambda image, writing=False: serving_start(image, model_dir, writing)}
    if repository(image) == "kfp-mlops-components":
        return {"MLflow server start to /health s": mlflow_start, "steps' imports s": step_imports}
    return {}


def measure_timings(images: list[str], model_dir: Path | None, runs: int) -> dict[str, dict]:
    """Round-robin over the images, so a change in the machine's load falls on all of them alike."""
    plans = {image: timings(image, model_dir) for image in images}
    seconds = {image: {name: [] for name in plan} for image, plan in plans.items()}
    for _ in range(runs):
        for image, plan in plans.items():
            for name, measure in plan.items():
                seconds[image][name].append(measure(image)[0])
    results = {}
    for image, plan in plans.items():
        results[image] = {}
        for name, measure in plan.items():
            written = measure(image, writing=True)[1]
            values = seconds[image][name]
            results[image][name] = {
                "runs": [round(value, 2) for value in values],
                "median": round(statistics.median(values), 2),
                "pyc_written": len(written),
                "pyc_written_examples": written[:10],
            }
    return results


def print_tables(results: list[dict], top: int) -> None:
    print("image sizes (MB, 1 MB = 10^6 bytes; Docker's uncompressed size)")
    header = f"{'image':<44}{'size':>8}{'goal':>7}{'met':>6}{'base':>8}{'site-pkgs':>11}{'.pyc':>7}{'tests':>7}"
    print(header + f"{'doc/man/locale':>16}")
    for row in results:
        goal = "-" if row["goal_mb"] is None else f"{row['goal_mb']}"
        met = "-" if row["goal_met"] is None else ("yes" if row["goal_met"] else "NO")
        base = "?" if row["base_mb"] is None else f"{row['base_mb']:.0f}"
        share = "/".join(f"{row['share_mb'][part]:.0f}" for part in ("doc", "man", "locale"))
        print(
            f"{row['image']:<44}{row['image_mb']:>8.0f}{goal:>7}{met:>6}{base:>8}{row['site_packages_mb']:>11.0f}"
            f"{row['pyc_mb']:>7.0f}{row['tests_mb']:>7.0f}{share:>16}"
        )
    for row in results:
        print(f"\n{row['image']} (base {row['base'] or '?'}, Python {row['python']}): {top} largest distributions, MB")
        ranked = sorted(row["distributions"].items(), key=lambda item: -item[1]["bytes"])
        for name, dist in ranked[:top]:
            print(f"  {name + ' ' + dist['version']:<40}{dist['bytes'] / MB:>8.1f}")
        rest = sum(dist["bytes"] for _, dist in ranked[top:])
        print(f"  {f'{len(ranked) - top} others':<40}{rest / MB:>8.1f}")
        for name, timing in row.get("timings", {}).items():
            runs = ", ".join(f"{value:.2f}" for value in timing["runs"])
            print(f"  {name}: median {timing['median']:.2f} ({runs}); .pyc it wrote: {timing['pyc_written']}")


def markdown(results: list[dict], top: int, load: tuple[float, float] | None) -> str:
    """The tables as docs/benchmarks.md shows them: sizes, then per image its largest distributions and timings."""
    header = ["image", "MB", "goal MB", "base", "base MB", "site-packages MB", ".pyc MB", "third-party tests MB"]
    header.append("doc / man / locale MB")
    rows = []
    for row in results:
        goal = "" if row["goal_mb"] is None else f"{row['goal_mb']:,} ({'met' if row['goal_met'] else 'NOT met'})"
        base_mb = "?" if row["base_mb"] is None else f"{row['base_mb']:,.0f}"
        share = " / ".join(f"{row['share_mb'][part]:.0f}" for part in ("doc", "man", "locale"))
        rows.append(
            [
                f"`{row['image']}`",
                f"{row['image_mb']:,.0f}",
                goal,
                f"`{row['base']}`" if row["base"] else "?",
                base_mb,
                f"{row['site_packages_mb']:,.0f}",
                f"{row['pyc_mb']:,.0f}",
                f"{row['tests_mb']:,.1f}",
                share,
            ]
        )
    lines = [
        "MB are 10^6 bytes, Docker's uncompressed size; a distribution's size is the files its RECORD lists that are "
        "still there (bytecode not included).",
        "",
        _docs.markdown_table(header, rows),
    ]
    for row in results:
        ranked = sorted(row["distributions"].items(), key=lambda item: -item[1]["bytes"])[:top]
        largest = ", ".join(f"{name} {dist['bytes'] / MB:.1f}" for name, dist in ranked)
        lines += [
            "",
            f"`{row['image']}` (Python {row['python']}), its {len(ranked)} largest distributions, MB: {largest}.",
        ]
        for name, timing in row.get("timings", {}).items():
            runs = ", ".join(f"{value:.2f}" for value in timing["runs"])
            lines.append(
                f"- {name}: median {timing['median']:.2f} ({runs}); modules it compiles on every start (no .pyc in "
                f"the image): {timing['pyc_written']}"
            )
    if load is not None:
        lines += ["", f"Load average (1 min) before / after the timings: {load[0]:.2f} / {load[1]:.2f}."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="*", help="images to measure (default: both images of `make images`)")
    parser.add_argument("--tag", help="IMAGE_TAG of the default images (default: <version>-<short commit>)")
    parser.add_argument("--registry", default="", help="IMAGE_REGISTRY of the default images (default: none)")
    parser.add_argument(
        "--base",
        action="append",
        help=f"an image's base when it has no base label (repeatable; default: {' and '.join(DEFAULT_BASES)})",
    )
    parser.add_argument("--top", type=int, default=12, help="largest distributions to list per image")
    parser.add_argument("--runs", type=int, default=0, help="time each image's starts this often (default: 0)")
    parser.add_argument("--model-dir", type=Path, help="a model bundle, for the serving image's cold start")
    parser.add_argument("--write-docs", action="store_true", help="also write the tables into docs/benchmarks.md")
    args = parser.parse_args()

    registry = args.registry if not args.registry or args.registry.endswith("/") else args.registry + "/"
    tag = args.tag or default_tag()
    images = args.images or [f"{registry}kfp-mlops-{name}:{tag}" for name in ("components", "serving")]
    if args.model_dir and not (args.model_dir / "model.json").is_file():
        parser.error(f"--model-dir {args.model_dir}: no model.json there (a model bundle directory is needed)")
    load = os.getloadavg()
    try:
        results = [measure_sizes(image, args.base or DEFAULT_BASES) for image in images]
        if args.runs > 0:
            measured = measure_timings(images, args.model_dir, args.runs)
            for row in results:
                row["timings"] = measured[row["image"]]
    except (RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_tables(results, args.top)
    loads = None
    if args.runs > 0:
        if args.model_dir is None and any(repository(image) == "kfp-mlops-serving" for image in images):
            print("\nno serving cold start: it needs --model-dir (a model bundle directory)")
        loads = (load[0], os.getloadavg()[0])
        print(f"\nload average (1 min) before / after the timings: {loads[0]:.2f} / {loads[1]:.2f}")
    for row in results:
        ranked = sorted(row["distributions"].items(), key=lambda item: -item[1]["bytes"])
        row["distributions"] = dict(ranked[: args.top])
    print(json.dumps(results))
    if args.write_docs:
        written = _docs.write_section("Image sizes", markdown(results, args.top, loads), _docs.command_line())
        print(f"wrote {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
