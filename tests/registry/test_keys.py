"""API keys: shown once, stored as a salted hash, revocable, never logged."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from modelfleet.clock import VirtualClock
from modelfleet.config import load_fleet
from modelfleet.errors import InvalidInput, NotFound
from modelfleet.registry import apply_fleet, create_key, latest, list_keys, revoke_key, verify_key
from modelfleet.registry.keys import touch_key
from modelfleet.store import Store
from tests.registry.conftest import dump


@pytest.fixture
def tenants(store: Store, fleet_dir: Path, clock: VirtualClock) -> Store:
    apply_fleet(store, load_fleet([fleet_dir / "fleet.yaml"]), actor="alice", now=clock.now())
    return store


def test_a_key_is_issued_once_and_verifies(tenants: Store, clock: VirtualClock) -> None:
    with tenants.begin() as conn:
        issued = create_key(conn, "acme", actor="alice", now=clock.now())
        record = verify_key(conn, issued.plaintext)
    assert re.fullmatch(r"mf_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", issued.plaintext)
    assert issued.plaintext.startswith(f"mf_{issued.prefix}_")
    assert record is not None and (record.tenant, record.prefix) == ("acme", issued.prefix)
    assert "plaintext=<hidden>" in repr(issued) and issued.plaintext not in repr(issued)


def test_the_plaintext_key_is_nowhere_in_the_database(
    tenants: Store, clock: VirtualClock, database_url: str
) -> None:
    with tenants.begin() as conn:
        issued = create_key(conn, "acme", actor="alice", now=clock.now())
    secret = issued.plaintext.split("_", 2)[2]
    assert secret not in repr(dump(tenants))
    if database_url.startswith("sqlite"):
        tenants.close()  # checkpoint the WAL, then read every byte the database wrote
        db = Path(database_url.removeprefix("sqlite:///"))
        for f in db.parent.iterdir():
            assert secret.encode() not in f.read_bytes(), f


def test_same_prefix_with_a_wrong_secret_is_refused(tenants: Store, clock: VirtualClock) -> None:
    with tenants.begin() as conn:
        issued = create_key(conn, "acme", actor="alice", now=clock.now())
        forged = issued.plaintext[:-4] + (
            "AAAA" if not issued.plaintext.endswith("AAAA") else "BBBB"
        )
        assert verify_key(conn, forged) is None
        assert verify_key(conn, "not a key") is None
        assert verify_key(conn, "") is None


def test_salts_differ_so_equal_hashes_reveal_nothing(tenants: Store, clock: VirtualClock) -> None:
    with tenants.begin() as conn:
        create_key(conn, "acme", actor="alice", now=clock.now())
        create_key(conn, "acme", actor="alice", now=clock.now())
        rows = conn.execute(text("SELECT salt, key_hash FROM api_keys")).all()
    assert len({r.salt for r in rows}) == 2 and len({r.key_hash for r in rows}) == 2


def test_a_revoked_key_no_longer_verifies(tenants: Store, clock: VirtualClock) -> None:
    with tenants.begin() as conn:
        issued = create_key(conn, "bolt", actor="alice", now=clock.now())
    clock.advance(timedelta(minutes=1))
    with tenants.begin() as conn:
        revoked = revoke_key(conn, issued.prefix, actor="bob", now=clock.now())
        again = revoke_key(conn, issued.plaintext, actor="bob", now=clock.now())
        assert verify_key(conn, issued.plaintext) is None
        entries = latest(conn, kind="ApiKey")
    assert revoked.revoked_at == clock.now() and not revoked.active and again == revoked
    assert [(e.action, e.actor, e.name) for e in entries] == [
        ("revoke", "bob", issued.prefix),
        ("create", "alice", issued.prefix),
    ]
    assert issued.plaintext.split("_", 2)[2] not in repr(entries)


def test_listing_shows_prefix_tenant_and_last_use(tenants: Store, clock: VirtualClock) -> None:
    with tenants.begin() as conn:
        a = create_key(conn, "acme", actor="alice", now=clock.now())
        b = create_key(conn, "bolt", actor="alice", now=clock.now() + timedelta(seconds=1))
        touch_key(conn, a.prefix, now=clock.now() + timedelta(hours=2))
        everything = list_keys(conn)
        bolts = list_keys(conn, "bolt")
    assert [(k.prefix, k.tenant) for k in everything] == [(a.prefix, "acme"), (b.prefix, "bolt")]
    assert everything[0].last_used_at == clock.now() + timedelta(hours=2)
    assert everything[1].last_used_at is None
    assert [k.prefix for k in bolts] == [b.prefix]


def test_keys_are_only_for_known_tenants_and_prefixes(tenants: Store, clock: VirtualClock) -> None:
    with tenants.begin() as conn:
        with pytest.raises(NotFound, match="tenant 'zeta' not found"):
            create_key(conn, "zeta", actor="alice", now=clock.now())
        with pytest.raises(NotFound, match="API key 'abcd1234' not found"):
            revoke_key(conn, "abcd1234", actor="alice", now=clock.now())
        with pytest.raises(InvalidInput, match="not a key prefix"):
            revoke_key(conn, "DROP TABLE", actor="alice", now=clock.now())


def test_no_key_is_written_to_any_log(
    tenants: Store, clock: VirtualClock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    try:
        chatty = create_engine(database_url, echo="debug")  # logs every statement and parameter
        with chatty.begin() as conn:
            issued = create_key(conn, "acme", actor="alice", now=clock.now())
            verify_key(conn, issued.plaintext)
        chatty.dispose()
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert "INSERT INTO api_keys" in caplog.text  # the log did see the statement
    assert issued.plaintext.split("_", 2)[2] not in caplog.text
