"""The deploy step's smoke test: the server must serve *this* model and answer exactly as it predicts in-process.

Speaks the Open Inference Protocol over plain HTTP (urllib: it runs in the components image and in pipeline steps,
where no HTTP client library is guaranteed), with the table request of serving.oip (its one builder).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pandas as pd

from serving.oip import table_body


class DeploymentError(RuntimeError):
    """The model could not be deployed or failed its smoke test; the message says which and why."""


def smoke_test(
    base_url: str,
    model_name: str,
    rows: pd.DataFrame,
    expected: np.ndarray,
    expected_sha256: str,
    timeout: float = 30.0,
) -> None:
    """Checks that the OIP server at ``base_url`` serves model ``model_name`` with digest ``expected_sha256`` and
    answers ``rows`` with exactly ``expected`` (the in-process predictions; numbers to a relative 1e-9).

    The digest comes first: right after a replace an old server may still answer, and must never pass for the
    new version. Any other outcome (an error status, no answer, another model, other predictions) is a
    DeploymentError naming what is wrong.
    """
    model_url = f"{base_url.rstrip('/')}/v2/models/{urllib.parse.quote(model_name, safe='')}"
    metadata = _call(model_url, None, timeout, "model metadata")
    parameters = metadata.get("parameters") if isinstance(metadata, dict) else None
    served_sha256 = parameters.get("sha256") if isinstance(parameters, dict) else None
    if not served_sha256:
        raise DeploymentError(f"smoke test: {model_url} reports no sha256 parameter in its metadata: {metadata!r:.300}")
    if served_sha256 != expected_sha256:
        raise DeploymentError(f"smoke test: {model_url} serves sha256 {served_sha256}, expected {expected_sha256}")

    infer_url = f"{model_url}/infer"
    answer = _call(infer_url, table_body(rows), timeout, "predictions")
    served = _predictions(answer, parameters.get("target"), infer_url)
    if len(served) != len(rows):
        raise DeploymentError(f"smoke test: sent {len(rows)} rows to {infer_url}, got {len(served)} predictions")
    expected = np.asarray(expected).reshape(-1)
    if not _equal(served, expected):
        raise DeploymentError(
            f"smoke test: served predictions {served} differ from the model's {expected.tolist()} ({infer_url})"
        )


def _call(url: str, body: bytes | None, timeout: float, what: str):
    """GET (no body) or POST JSON ``url``; the decoded JSON answer, or DeploymentError saying what went wrong."""
    request = urllib.request.Request(
        url,
        data=body,
        headers={"Content-Type": "application/json"} if body is not None else {},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise DeploymentError(f"smoke test: {url} answered {error.code}: {error.read()[:500]!r}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DeploymentError(f"smoke test: cannot reach {url}: {error}") from error
    try:
        return json.loads(raw)
    except ValueError as error:
        raise DeploymentError(f"smoke test: {url} did not answer with {what} (not JSON): {raw[:500]!r}") from error


def _predictions(answer, target: str | None, url: str) -> list:
    """The predictions of an OIP inference response: the output named after the target (the only output when the
    metadata names none), flattened from shape [n] or [n, 1]."""
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list) or not all(isinstance(output, dict) for output in outputs):
        raise DeploymentError(f"smoke test: {url} did not answer with OIP outputs: {answer!r:.500}")
    named = [output for output in outputs if output.get("name") == target] if target else outputs
    if len(named) != 1:
        names = [output.get("name") for output in outputs]
        wanted = f"an output named {target!r}" if target else "exactly one output"
        raise DeploymentError(f"smoke test: {url} answered outputs {names}, expected {wanted}")
    data = named[0].get("data")
    if not isinstance(data, list):
        raise DeploymentError(f"smoke test: output {named[0].get('name')!r} of {url} has no data list")
    return [value[0] if isinstance(value, list) and len(value) == 1 else value for value in data]


def _equal(served: list, expected: np.ndarray) -> bool:
    if expected.dtype.kind in "iuf":
        numbers = [value for value in served if isinstance(value, int | float) and not isinstance(value, bool)]
        if len(numbers) != len(served) or not all(math.isfinite(value) for value in numbers):
            return False  # text, null or nested lists where the model predicts numbers
        return bool(np.allclose(np.asarray(numbers, dtype="float64"), expected.astype("float64"), rtol=1e-9, atol=0.0))
    return [str(value) for value in served] == [str(value) for value in expected.tolist()]
