"""The digits model as a Ray Serve application, configured as Ray Serve's docs advise.

Settings (docs.ray.io, Serve "Configure Ray Serve deployments" and "Performance Tuning"):
a local Ray with `num_cpus` = the machine's cores; one replica per core, each reserving one
CPU through `ray_actor_options`; an `async` handler (the performance guide's advice); default
`max_ongoing_requests` (5); access logs off, as for every server in this benchmark. No
dashboard, no usage reporting, a small object store (nothing large crosses it). The launcher
sets RAY_worker_niceness=0: Ray starts its actors (proxy, replicas) at nice 15, which on a
dedicated machine changes nothing but here would hand the cores to whatever else runs.

Run: python ray_app.py MODEL PORT CORES. It serves until SIGTERM, then shuts Ray down.
"""

import signal
import sys
import time

import joblib
import numpy as np
import ray
from ray import serve
from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 1})
class Digits:
    def __init__(self, model_path: str) -> None:
        self.model = joblib.load(model_path)

    async def __call__(self, request: Request) -> dict[str, list[int]]:
        body = await request.json()
        x = np.asarray(body["instances"], dtype=np.float32)
        return {"predictions": self.model.predict(x).tolist()}


def main() -> None:
    model_path, port, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    ray.init(
        num_cpus=cores,
        _node_ip_address="127.0.0.1",  # Ray's own traffic stays on loopback too
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        log_to_driver=False,
    )
    no_access_log = {"enable_access_log": False}
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=no_access_log)
    app = Digits.options(num_replicas=cores).bind(model_path)
    serve.run(app, name="digits", route_prefix="/predict", logging_config=no_access_log)
    print(f"ray serve ready on 127.0.0.1:{port}", flush=True)

    def stop(signum: int, frame: object) -> None:
        serve.shutdown()
        ray.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)  # after ray.init, which installs handlers of its own
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
