"""Detects drift of new data from the champion's training rows (Evidently's statistical tests).

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
