"""One KFP component per MLOps stage: ``components/<verb_noun>/component.py`` defines the component named like
its directory; ``discover()`` finds them all (for compile.py and the generated reference).

Packages whose name starts with an underscore hold shared helpers, not components. Nothing here imports kfp: a
running step imports ``components.<name>.logic`` inside KFP's trimmed runtime, so importing a package must stay
plain (tests/static/test_import_guard.py checks it).
"""

import importlib
import pkgutil
from pathlib import Path


def discover() -> dict:
    """Returns ``{name: component}`` for every component package, sorted by name (what compile.py compiles)."""
    found = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not module.ispkg or module.name.startswith("_"):
            continue
        try:
            defined = importlib.import_module(f"{__name__}.{module.name}.component")
            component = getattr(defined, module.name)
        except (AttributeError, ModuleNotFoundError) as error:
            raise ImportError(
                f"components/{module.name}/ must define a KFP component named {module.name!r} in component.py"
            ) from error
        if not hasattr(component, "component_spec"):
            raise ImportError(f"components/{module.name}/component.py: {module.name!r} is not a KFP component")
        found[module.name] = component
    return dict(sorted(found.items()))
