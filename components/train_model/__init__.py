"""Fits a scikit-learn Pipeline and writes the model directory (model.joblib + model.json)."""
