"""Fixtures shared by the whole suite: stores on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from modelfleet.clock import VirtualClock
from modelfleet.store import Store, open_store

# pytest-xdist's workers start with COLUMNS=80, which rich's consoles (made when the CLI is
# imported) would keep for good; without it they follow each test's COLUMNS, as in one process.
os.environ.pop("COLUMNS", None)

# The machine is shared and CI's load varies: hypothesis judges properties, not speed.
settings.register_profile("modelfleet", deadline=None)
settings.load_profile("modelfleet")

# `make test` makes sure this server runs; the suite fails rather than skips without it.
POSTGRES_URL = os.environ.get(
    "MODELFLEET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"modelfleet_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is not reachable ({exc.orig}); `make test` starts it"
        )
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store's URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'fleet.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = open_store(database_url)
    yield s
    s.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "retail-vision"


@pytest.fixture(scope="session")
def trained_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the retail-vision example with its models trained by its own script."""
    root = tmp_path_factory.mktemp("retail-vision")
    for name in ("fleet.yaml", "alerting.yaml", "sla.yaml", "capacity.yaml", "v4.py"):
        shutil.copy(EXAMPLE / name, root / name)
    spec = importlib.util.spec_from_file_location("retail_vision_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    train.train(root / "artifacts")
    return root
