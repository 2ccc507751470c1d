"""Model serving: the Seldon Core Python-wrapper class (``serving.model_server``, runs in .venv-serving and the
serving image) and the launcher of local servers (``serving.local_server``, standard library only)."""
