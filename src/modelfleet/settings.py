"""Process settings: the only module that reads environment variables.

Everything else receives a `Settings` (or the values in it) from the CLI or the server.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOME = Path(".modelfleet")


@dataclass(frozen=True)
class Settings:
    """Where the store is and who is acting.

    database_url: SQLAlchemy URL of the store; SQLite under `home` unless
        MODELFLEET_DATABASE_URL says otherwise (e.g. postgresql+psycopg://host/db).
    actor: the name recorded in the audit log for changes made by this process.
    region: the region this gateway serves (MODELFLEET_REGION), recorded in telemetry.
    redis_url: when set (MODELFLEET_REDIS_URL), quotas are shared through this Redis.
    telemetry: MODELFLEET_TELEMETRY=off turns rollups off (for measuring their cost).
    admin_token_sha256: the SHA-256 of MODELFLEET_ADMIN_TOKEN, the operators' token for the
        HTTP APIs that act on the whole fleet (silences); only the hash is kept, and it is
        never logged. None: those APIs are off.
    secrets: the values of MODELFLEET_SECRET_* variables, by full name, for receivers that
        name one (an SMTP password).
    backend: where model replicas run (MODELFLEET_BACKEND): "local", threads of each gateway
        process, or "ray", one Ray Serve deployment per version.
    ray_address: the Ray cluster to join (MODELFLEET_RAY_ADDRESS, e.g. ray://head:10001 or
        auto); None with the ray backend: start a local cluster.
    redis_prefix: the prefix of every Redis key this fleet uses (MODELFLEET_REDIS_PREFIX), so
        several fleets can share one Redis.
    spool_dir: where a gateway keeps telemetry it could not write to the store, until it can
        (MODELFLEET_SPOOL_DIR; default `home`/spool).
    """

    database_url: str
    actor: str
    home: Path
    region: str = "local"
    redis_url: str | None = None
    telemetry: bool = True
    admin_token_sha256: str | None = field(default=None, repr=False)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    backend: str = "local"
    ray_address: str | None = None
    redis_prefix: str = "modelfleet"
    spool_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("MODELFLEET_HOME", str(DEFAULT_HOME)))
        url = env.get("MODELFLEET_DATABASE_URL") or f"sqlite:///{home / 'fleet.db'}"
        actor = env.get("MODELFLEET_ACTOR") or _login_name()
        return cls(
            database_url=url,
            actor=actor,
            home=home,
            region=env.get("MODELFLEET_REGION", "local"),
            redis_url=env.get("MODELFLEET_REDIS_URL") or None,
            telemetry=env.get("MODELFLEET_TELEMETRY", "on").lower() not in ("off", "0", "false"),
            admin_token_sha256=_sha256(env.get("MODELFLEET_ADMIN_TOKEN")),
            secrets={k: v for k, v in env.items() if k.startswith("MODELFLEET_SECRET_")},
            backend=_backend(env.get("MODELFLEET_BACKEND", "local")),
            ray_address=env.get("MODELFLEET_RAY_ADDRESS") or None,
            redis_prefix=env.get("MODELFLEET_REDIS_PREFIX") or "modelfleet",
            spool_dir=Path(env.get("MODELFLEET_SPOOL_DIR") or home / "spool"),
        )


BACKENDS = ("local", "ray")


def _backend(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"MODELFLEET_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def _sha256(token: str | None) -> str | None:
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a bare container
        return "unknown"
