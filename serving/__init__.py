"""Model serving: the Open Inference Protocol model server on the KServe Python SDK (``python -m serving``:
serving.settings, serving.app, serving.model_server, serving.oip) and the launcher of local servers
(``serving.local_server``, standard library only)."""
