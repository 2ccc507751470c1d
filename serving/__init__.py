"""Model serving: the Open Inference Protocol model server on the KServe Python SDK (``python -m serving``:
serving.settings, serving.app, serving.model_server, serving.oip, serving.decoding, serving.metrics,
serving.feature_monitor) and the launcher of local model servers (serving.local_server, serving.processes)."""
