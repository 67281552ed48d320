"""The digits model as a BentoML service, configured as BentoML's docs advise for CPU work.

Settings (docs.bentoml.com, "Workers" / "Parallelize requests handling" and "Configurations"):
one worker process per CPU core, because the GIL keeps one Python process to one core; the
sync API runs in BentoML's thread pool, as the docs recommend for CPU-bound code; access
logging off, as for every server in this benchmark.
"""

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(
    workers=int(os.environ["BENCH_WORKERS"]),
    logging={"access": {"enabled": False}},
)
class Digits:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])

    @bentoml.api
    def predict(self, instances: list[list[float]]) -> list[int]:
        x = np.asarray(instances, dtype=np.float32)
        return self.model.predict(x).tolist()
