"""Cleans the data by explicit policy and splits train and test sets.

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
