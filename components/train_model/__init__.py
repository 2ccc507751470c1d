"""Fits a scikit-learn Pipeline and writes the model directory (model.joblib + model.json).

The component is in component.py, its decisions in logic.py.
"""

from components import lazy_component_export

__getattr__ = lazy_component_export(__name__)
