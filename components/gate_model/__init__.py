"""Approves a challenger only if it passes thresholds, beats a baseline and the champion.

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
