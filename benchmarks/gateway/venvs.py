"""A virtual environment per server under .bench/<name>/venv, with pinned packages.

Each server gets its own venv, never the project's dependencies. scikit-learn is pinned to the
project venv's version so every server unpickles the same model file. A venv is reused while
its requirements are unchanged (a stamp file holds them) and rebuilt when they change.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

INSTALL_TIMEOUT_S = 1800  # ray[serve] is a few hundred MB


class InstallFailed(Exception):
    """pip could not install a server's requirements; the message holds pip's last lines."""


def project_version(project_python: Path, distribution: str) -> str:
    """The version of a distribution installed in the project's venv."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    out = subprocess.run(
        [str(project_python), "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


def ensure(home: Path, requirements: list[str], log: Path) -> Path:
    """The venv's python, creating or rebuilding the venv when its requirements changed."""
    venv = home / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    (home / "requirements.txt").write_text(wanted)
    steps = [
        ["python3", "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(home / "requirements.txt")],
    ]
    with log.open("w") as out:
        for step in steps:
            try:
                subprocess.run(
                    step,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=INSTALL_TIMEOUT_S,
                    check=True,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
                raise InstallFailed(f"{' '.join(step)} failed ({e}); see {log}:\n{tail}") from e
    stamp.write_text(wanted)
    return python


def versions(python: Path, distributions: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `distributions` in the venv of `python`."""
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(python), "-c", code, *distributions], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        return {d: "?" for d in distributions}
    found: dict[str, str] = json.loads(out.stdout)
    return found
