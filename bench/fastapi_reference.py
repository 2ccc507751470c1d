"""The hand-written model server bench/serving.py compares the OIP model server with: what users usually write.

Loads ``model.joblib`` (path in the environment variable REFERENCE_MODEL_PATH) at startup and answers
``POST /predict`` with ``{"data": {"names": [...], "ndarray": [[...], ...]}}`` by
``model.predict(pd.DataFrame(ndarray, columns=names))``. No feature coercion, no integrity check, no metrics:
the client must send the values exactly as the model saw them in training (e.g. "True", not true).

One addition a user would make on noticing it: uvicorn ``--workers N`` (N > 1) leaves Nagle's algorithm on
for every connection (Kludex/uvicorn#3149), so each keep-alive response after the first waits ~40 ms for the
client's delayed ACK; this module turns TCP_NODELAY back on so that N > 1 compares servers, not that bug.

    REFERENCE_MODEL_PATH=DIR/model.joblib OMP_NUM_THREADS=1 \\
        .venv/bin/python -m uvicorn fastapi_reference:app --app-dir bench --host 127.0.0.1 --port 8000 --workers 1
"""

from __future__ import annotations

import asyncio.base_events
import os
import socket
from contextlib import asynccontextmanager
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

MODEL_PATH_ENV = "REFERENCE_MODEL_PATH"
state: dict[str, Any] = {}


def _set_nodelay(sock: socket.socket) -> None:
    # asyncio's own version also requires sock.proto == IPPROTO_TCP, which the socket uvicorn passes to its
    # worker processes lacks (proto 0); accepted connections inherit it and keep Nagle's algorithm on.
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


asyncio.base_events._set_nodelay = _set_nodelay


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
