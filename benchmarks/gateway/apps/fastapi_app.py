"""The floor: a bare FastAPI endpoint that calls the model directly, served by uvicorn.

`async def` because one-row inference takes well under a millisecond: a thread hand-off would
cost more than it saves, and the floor should be the least work a Python HTTP server can do.
"""

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["BENCH_MODEL"])
app = FastAPI()


class Instances(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
async def predict(body: Instances) -> dict[str, list[int]]:
    x = np.asarray(body.instances, dtype=np.float32)
    return {"predictions": model.predict(x).tolist()}
