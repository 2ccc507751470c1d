"""A Seldon model class that does no work, for bench/serving.py: what Seldon Core's Python wrapper itself costs.

It answers every request with one constant prediction and the same kinds of custom metrics the real server
records per single-row request (requests, rows, the latency TIMER, a missing-value and a prediction-range
counter), so its latency is the floor under any model class served by seldon-core-microservice.
"""

METRICS = [
    {"key": "model_requests", "type": "COUNTER", "value": 1, "tags": {"outcome": "ok", "reason": ""}},
    {"key": "model_prediction_rows", "type": "COUNTER", "value": 1},
    {"key": "model_prediction_seconds", "type": "TIMER", "value": 3.0},
    {"key": "model_missing_values", "type": "COUNTER", "value": 1, "tags": {"feature": "age_years"}},
    {"key": "model_predicted_value", "type": "COUNTER", "value": 1, "tags": {"bucket": "200000-250000"}},
]


class FloorModel:
    def predict_raw(self, request):
        return {"data": {"names": ["price"], "ndarray": [[0.0]]}, "meta": {"metrics": [dict(m) for m in METRICS]}}
