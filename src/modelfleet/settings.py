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
    """

    database_url: str
    actor: str
    home: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("MODELFLEET_HOME", str(DEFAULT_HOME)))
        url = env.get("MODELFLEET_DATABASE_URL") or f"sqlite:///{home / 'fleet.db'}"
        actor = env.get("MODELFLEET_ACTOR") or _login_name()
        return cls(database_url=url, actor=actor, home=home)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in a bare container
        return "unknown"
