"""Files a model version names: resolved against the fleet file, checked, and fingerprinted."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def resolve(path: str, base: Path) -> Path:
    """A path from fleet.yaml, relative to the file that declared it unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def split_callable(artifact: str, model_format: str) -> tuple[str, str | None]:
    """`python` artifacts name a function in a file (`handlers/model.py:predict`); the file is
    what gets fingerprinted. Other formats are a plain file path."""
    if model_format != "python":
        return artifact, None
    path, sep, function = artifact.rpartition(":")
    return (path, function) if sep and function.isidentifier() else (artifact, None)


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks so large artifacts fit in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
