"""The hand-written model server that bench/serving.py compares Seldon with: what users usually write.

Loads ``model.joblib`` (path in the environment variable REFERENCE_MODEL_PATH) at startup and answers
``POST /predict`` with ``{"data": {"names": [...], "ndarray": [[...], ...]}}`` by
``model.predict(pd.DataFrame(ndarray, columns=names))``. No feature coercion, no integrity check, no metrics:
the client must send the values exactly as the model saw them in training (e.g. "True", not true).

    REFERENCE_MODEL_PATH=DIR/model.joblib OMP_NUM_THREADS=1 \\
        .venv/bin/python -m uvicorn fastapi_reference:app --app-dir bench --host 127.0.0.1 --port 8000 --workers 1
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

MODEL_PATH_ENV = "REFERENCE_MODEL_PATH"
state: dict[str, Any] = {}


class Data(BaseModel):
    names: list[str]
    ndarray: list[list[Any]]


class PredictRequest(BaseModel):
    data: Data


@asynccontextmanager
async def lifespan(_: FastAPI):
    state["model"] = joblib.load(os.environ[MODEL_PATH_ENV])
    yield
    state.clear()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    frame = pd.DataFrame(request.data.ndarray, columns=request.data.names)
    return {"predictions": state["model"].predict(frame).tolist()}
