"""Picks the best of the candidate models trained in parallel, by their validation scores.

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
