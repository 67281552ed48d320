"""Files a model version names: resolved against the fleet file, checked, and fingerprinted."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def resolve(path: str, base: Path) -> Path:
    """A path from fleet.yaml, relative to the file that declared it unless absolute."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks so large artifacts fit in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
