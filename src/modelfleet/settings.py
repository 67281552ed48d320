"""Process settings: the only module that reads environment variables.

Everything else receives a `Settings` (or the values in it) from the CLI or the server.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
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
    """

    database_url: str
    actor: str
    home: Path
    region: str = "local"
    redis_url: str | None = None
    telemetry: bool = True

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
        )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a bare container
        return "unknown"
