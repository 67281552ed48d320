"""What a benchmarked server is: how to install it, start it, and speak to it.

Each server under `targets/` is one `Target`. The harness installs its packages into a venv of
its own (`.bench/<name>/venv`), asks it to `prepare` its files and return a `Launch` (command,
endpoint, request bodies), starts that, and loads it with wrk. A target that cannot run yet
raises `Unavailable` and is skipped with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Row = Sequence[float]


class Unavailable(Exception):
    """The target cannot run on this checkout (yet); the message says why."""


@dataclass(frozen=True)
class Context:
    """What every target may use: where files go, the shared model, the sizing."""

    root: Path  # the repository
    bench: Path  # .bench/, ignored by git
    model: Path  # .bench/model.joblib, trained once by digits.py
    workers: int  # worker processes for modelfleet and the bare FastAPI endpoint
    cores: int  # cores the frameworks size themselves for, as their docs advise

    @property
    def project_python(self) -> Path:
        return self.root / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Launch:
    """How to start a prepared server and how to speak to it."""

    argv: list[str]
    cwd: Path
    url: str  # http://127.0.0.1:PORT/path that wrk loads
    body: Callable[[Row], str]  # one row -> the JSON request body
    predicted: Callable[[Any], int | None]  # decoded response -> the class, None if unknown
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 90.0
    # What the run records about the configuration, for the results file and the README.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """One server under test."""

    name: str
    title: str
    # pip requirements for its own venv (scikit-learn is added at the project's version);
    # None: it runs from the project's own venv (modelfleet itself).
    requirements: tuple[str, ...] | None
    reported: tuple[str, ...]  # distributions whose installed versions the results record
    prepare: Callable[[Context, Path, Path, Callable[[], int]], Launch]
    # (context, its folder .bench/<name>, its venv's python, a function giving a free port)


def instances_body(row: Row) -> str:
    """The plain JSON body the bare FastAPI, BentoML and Ray Serve endpoints take."""
    return json.dumps({"instances": [list(row)]})


def v2_body(row: Row) -> str:
    """An Open Inference Protocol v2 request with one row of 64 pixels."""
    return json.dumps(
        {
            "inputs": [
                {"name": "pixels", "shape": [1, len(row)], "datatype": "FP32", "data": list(row)}
            ]
        }
    )


def predictions_class(response: Any) -> int | None:
    """The class from `{"predictions": [k]}`."""
    return int(response["predictions"][0])


def v2_class(response: Any) -> int | None:
    """The class from a v2 response's first output; None when it is not a class number."""
    try:
        return int(str(response["outputs"][0]["data"][0]))
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def copy_app(source: str, home: Path) -> Path:
    """Copy a server's code from apps/ into its folder under .bench/, where it runs."""
    text = (Path(__file__).parent / "apps" / source).read_text()
    dest = home / source
    dest.write_text(text)
    return dest
