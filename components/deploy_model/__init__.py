"""Serves a registered version (locally, or renders its SeldonDeployment) and moves champion.

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
