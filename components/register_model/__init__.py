"""Logs the model to MLflow and registers a new version with the alias challenger.

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
