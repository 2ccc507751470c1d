"""The import guard: owns the boundary between the code KFP compiles and the code a pipeline step runs.

    python tools/import_guard.py [--root DIR]

A step runs ``components/<name>/logic.py`` (and everything it imports) inside KFP's trimmed runtime, and the model
server imports ``model_bundle`` and ``serving`` without kfp installed at all; only ``component.py`` files may import
kfp. KFP compiles a component from its function's body alone, so that body must import what it uses. Checked:

- no runtime module (every module of components/, model_bundle/ and serving/ except component.py files and tests)
  imports kfp directly (its source, read as a syntax tree) or when it is imported (a fresh interpreter imports each
  one and looks for kfp in ``sys.modules``, naming the module that pulled it in);
- no component function's body uses a name it neither imports itself nor gets as a parameter (builtins aside):
  module-level imports are not in the compiled component.

tests/static/test_import_guard.py runs these checks; `make lint` and the pre-commit hook run this script; each
fails naming the file, the line and the name.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import subprocess
import symtable
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = ("components", "model_bundle", "serving")
COMPONENT_FILE = "component.py"
# The decorators that make a function a KFP component (as `dsl.component`, `component`, or called with options).
COMPONENT_DECORATORS = {"component", "container_component"}
BUILTIN_NAMES = set(dir(builtins))


@dataclass(frozen=True)
class Violation:
    """One breach of the boundary: where, and what."""

    path: str  # relative to the checked root
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _is_test_file(path: Path, root: Path) -> bool:
    return "tests" in path.relative_to(root).parts[:-1]


def runtime_modules(root: Path = REPO_ROOT) -> list[Path]:
    """Every module a step or the model server may import: the packages' .py files but component.py and tests."""
    found = []
    for package in RUNTIME_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.name != COMPONENT_FILE and not _is_test_file(path, root):
                found.append(path)
    return found


def component_modules(root: Path = REPO_ROOT) -> list[Path]:
    """Every ``components/<name>/component.py``."""
    return sorted(path for path in (root / "components").glob(f"*/{COMPONENT_FILE}"))


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_kfp(name: str | None) -> bool:
    return name is not None and (name == "kfp" or name.startswith("kfp."))


def direct_kfp_imports(root: Path = REPO_ROOT) -> list[Violation]:
    """`import kfp...`, `from kfp... import ...` and `importlib.import_module("kfp...")` / `__import__("kfp...")`
    with a literal name, anywhere in a runtime module (inside functions too: they run in the step)."""
    found = []
    for path in runtime_modules(root):
        relative = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module] if node.level == 0 else []
            elif isinstance(node, ast.Call) and _is_import_call(node.func) and node.args:
                first = node.args[0]
                names = [first.value] if isinstance(first, ast.Constant) and isinstance(first.value, str) else []
            else:
                continue
            for name in filter(_is_kfp, names):
                found.append(Violation(relative, node.lineno, f"imports {name}: runtime code must not import kfp"))
    return found


def _is_import_call(function: ast.expr) -> bool:
    if isinstance(function, ast.Name):
        return function.id in {"__import__", "import_module"}
    return isinstance(function, ast.Attribute) and function.attr == "import_module"


# Run in a fresh interpreter from the checked root. A module whose import brings kfp into sys.modules is reported
# with the chain of project modules being imported at that moment; kfp and the project modules imported with it are
# then dropped (from sys.modules and from their packages), so a later module that pulls kfp in through the same path
# imports it again and is reported too.
_TRANSITIVE_CHECK = r"""
import importlib, json, sys, traceback

modules, packages = json.loads(sys.argv[1])
chain = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if (name == "kfp" or name.startswith("kfp.")) and not chain:
            frame = sys._getframe(1)
            while frame is not None:
                module = frame.f_globals.get("__name__", "")
                if module.split(".")[0] in packages and module not in chain:
                    chain.append(module)
                frame = frame.f_back
        return None

sys.meta_path.insert(0, Watch())
results = []
for module in modules:
    before = set(sys.modules)
    try:
        importlib.import_module(module)
    except BaseException as error:  # SystemExit too: a module that runs a program when imported
        results.append({"module": module, "error": "".join(traceback.format_exception_only(error)).strip()})
        continue
    if "kfp" in sys.modules:
        results.append({"module": module, "via": list(reversed(chain))})
        for name in set(sys.modules) - before:
            if name == "kfp" or name.startswith("kfp.") or name.split(".")[0] in packages:
                dropped = sys.modules.pop(name)
                parent, _, child = name.rpartition(".")
                # `from package import module` would find the dropped module as the package's attribute.
                if getattr(sys.modules.get(parent), child, None) is dropped:
                    delattr(sys.modules[parent], child)
        chain.clear()
print(json.dumps(results))
"""


def transitive_kfp_imports(root: Path = REPO_ROOT, python: str = sys.executable) -> list[Violation]:
    """Imports every runtime module (but ``__main__`` ones, which run a program) in one fresh interpreter whose
    working directory is ``root``, and reports each one that brings kfp into ``sys.modules``, or fails to import."""
    paths = {_module_name(path, root): path for path in runtime_modules(root) if path.name != "__main__.py"}
    completed = subprocess.run(
        [python, "-c", _TRANSITIVE_CHECK, json.dumps([list(paths), list(RUNTIME_PACKAGES)])],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the import check could not run in {root}:\n{completed.stderr[-3000:]}")
    found = []
    for result in json.loads(completed.stdout.strip().splitlines()[-1]):
        relative = str(paths[result["module"]].relative_to(root))
        if "error" in result:
            found.append(
                Violation(relative, 1, f"cannot be imported, so its imports cannot be checked: {result['error']}")
            )
        else:
            via = " -> ".join(result["via"]) or result["module"]
            found.append(Violation(relative, 1, f"importing it imports kfp (through {via})"))
    return found


def _is_component(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name in COMPONENT_DECORATORS:
            return True
    return False


def _globals_used(table: symtable.SymbolTable) -> set[str]:
    """Names a function scope (and the scopes nested in it) reads from the module or the builtins."""
    used = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_referenced() and symbol.is_global()}
    for child in table.get_children():
        used |= _globals_used(child)
    return used


def _first_use(function: ast.FunctionDef, name: str) -> int:
    """The line where the function's body first reads ``name`` (its signature is not searched: see below)."""
    lines = [
        node.lineno
        for statement in function.body
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and node.id == name
    ]
    return min(lines, default=function.lineno)


def component_body_globals(root: Path = REPO_ROOT) -> list[Violation]:
    """Each component function whose body uses a module-level name (an import or a constant of component.py):
    KFP puts only the function's source in the compiled component, so the name is undefined when the step runs.
    Parameters, builtins and names the body imports or assigns itself are fine; the signature's annotations
    (Input, Output, the artifact types) and defaults are evaluated at compile time."""
    found = []
    for path in component_modules(root):
        relative = str(path.relative_to(root))
        source = path.read_text()
        tables = {
            (table.get_name(), table.get_lineno()): table
            for table in symtable.symtable(source, relative, "exec").get_children()
        }
        for node in ast.parse(source, filename=relative).body:
            if not isinstance(node, ast.FunctionDef) or not _is_component(node):
                continue
            table = tables.get((node.name, node.lineno)) or next(
                table for (name, _), table in tables.items() if name == node.name
            )
            used = sorted((_first_use(node, name), name) for name in _globals_used(table) - BUILTIN_NAMES)
            for line, name in used:
                found.append(
                    Violation(
                        relative,
                        line,
                        f"component {node.name} uses {name!r} from the module; import it inside the function body "
                        "(only the body is compiled into the component)",
                    )
                )
    return found


def check(root: Path = REPO_ROOT, python: str = sys.executable) -> list[Violation]:
    """Every violation under ``root``: direct kfp imports, kfp imported on import, component bodies' globals."""
    return direct_kfp_imports(root) + transitive_kfp_imports(root, python) + component_body_globals(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository to check (default: this one)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    violations = check(root)
    for violation in violations:
        print(violation, file=sys.stderr)
    if violations:
        print(f"import guard: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    print(
        f"import guard: {len(runtime_modules(root))} runtime modules import no kfp; the bodies of the components in "
        f"{len(component_modules(root))} component.py files import what they use"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
