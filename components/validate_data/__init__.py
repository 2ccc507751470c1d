"""Infers the data's schema and stops the run when a model cannot be trained on it.

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
