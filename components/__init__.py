"""One KFP component per MLOps stage: ``components/<verb_noun>/`` exports a component named like its directory.

Packages whose name starts with an underscore hold shared helpers, not components.
"""

import importlib
import pkgutil
from pathlib import Path


def lazy_component_export(package: str):
    """A module ``__getattr__`` that imports ``<package>.component`` only when the component is asked for.

    Inside a running step KFP loads a trimmed ``kfp.dsl`` without ``dsl.component``; importing the decorated
    component there would fail. Lazy export keeps ``components.<name>.logic`` importable in every runtime.
    """
    name = package.rsplit(".", 1)[-1]

    def __getattr__(attribute: str):
        if attribute != name:
            raise AttributeError(f"module {package!r} has no attribute {attribute!r}")
        return getattr(importlib.import_module(f"{package}.component"), name)

    return __getattr__


def discover() -> dict:
    """Returns ``{name: component}`` for every component package, sorted by name (what compile.py compiles)."""
    found = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not module.ispkg or module.name.startswith("_"):
            continue
        package = importlib.import_module(f"{__name__}.{module.name}")
        try:
            component = getattr(package, module.name)
        except (AttributeError, ModuleNotFoundError) as error:
            raise ImportError(
                f"components/{module.name}/ must define a KFP component named {module.name!r} in component.py"
            ) from error
        if not hasattr(component, "component_spec"):
            raise ImportError(f"components/{module.name}/component.py: {module.name!r} is not a KFP component")
        found[module.name] = component
    return dict(sorted(found.items()))
