"""One running server: started in its own session, waited for with a bound, always ended.

`Server` is a context manager: on exit, however the block ends, the whole process tree goes
(SIGTERM, then SIGKILL after a grace period) and the port is free again before it returns.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from benchmarks.gateway import proctree
from benchmarks.gateway.target import Launch, Row


class ServerFailed(Exception):
    """The server did not come up, or answered wrongly; the message says how, and where its log is."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def post(url: str, body: str, headers: dict[str, str], timeout_s: float) -> tuple[int, bytes]:
    """POST a JSON body; the status and the response's bytes, error statuses included."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


class Server:
    """A prepared `Launch`, running."""

    def __init__(self, name: str, launch: Launch, log: Path, grace_s: float = 20.0) -> None:
        self.name = name
        self.launch = launch
        self.log = log
        self.grace_s = grace_s
        self.port = urlsplit(launch.url).port or 80
        self._process: subprocess.Popen[bytes] | None = None
        self._seen: set[int] = set()

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not started"
        return self._process.pid

    def __enter__(self) -> Server:
        if _port_open(self.port):
            raise ServerFailed(f"{self.name}: port {self.port} is already taken")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.launch.env}
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                self.launch.argv,
                cwd=self.launch.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: the tree is found, and ended, whole
            )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """End the whole tree and wait, bounded, until the port is free."""
        if self._process is None:
            return
        proctree.end_tree(self._process.pid, self.grace_s, frozenset(self._seen))
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None
        deadline = time.monotonic() + 15
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def cpu_by_process(self) -> dict[int, tuple[str, float]]:
        """CPU seconds each live process of the server's tree has used so far, with its name."""
        procs = proctree.snapshot()
        pids = proctree.tree(self.pid, procs)
        self._seen |= pids - {self.pid}
        return {p: (procs[p].name, procs[p].cpu_ticks / proctree.TICKS) for p in pids}

    def wait_ready(self, row: Row) -> None:
        """Poll with a real inference until it answers 200, within the launch's time limit."""
        deadline = time.monotonic() + self.launch.ready_timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with status {self._process.returncode} while starting; "
                    f"see {self.log}:\n{self.log_tail()}"
                )
            try:
                status, data = post(self.launch.url, self.launch.body(row), self.launch.headers, 5)
            except OSError as e:  # refused or reset while it starts
                last = str(e)
            else:
                if status == 200:
                    self.cpu_by_process()  # note the helpers it started
                    return
                last = f"HTTP {status}: {data[:300].decode(errors='replace')}"
            time.sleep(0.5)
        raise ServerFailed(
            f"{self.name} was not ready within {self.launch.ready_timeout_s:.0f} s (last: {last}); "
            f"see {self.log}:\n{self.log_tail()}"
        )

    def check_predictions(self, rows: list[list[float]], expected: list[int]) -> dict[str, Any]:
        """Ask for a few rows and compare with the classes sklearn gave; one response is kept."""
        sample: Any = None
        for row, want in zip(rows, expected, strict=True):
            status, data = post(self.launch.url, self.launch.body(row), self.launch.headers, 10)
            if status != 200:
                raise ServerFailed(f"{self.name}: HTTP {status} for a valid row: {data[:300]!r}")
            sample = json.loads(data)
            got = self.launch.predicted(sample)
            if got is not None and got != want:
                raise ServerFailed(f"{self.name} predicted {got} where the model gives {want}")
        return {"response": sample}

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])
