"""Tenants' API keys: issued once, stored only as a salted hash with a public prefix.

A key reads `mf_<prefix>_<secret>`. The prefix (8 characters) is stored in clear so a key is
found with one indexed lookup and can be named in listings and revocations; the whole key is
stored as sha256(salt + key). Keys carry 256 random bits, so no password-style slow hash is
needed to resist guessing, and verification stays cheap enough for the gateway's hot path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from modelfleet.errors import InvalidInput, NotFound
from modelfleet.registry import audit
from modelfleet.store.tables import api_keys, tenants

_KEY = re.compile(r"^mf_(?P<prefix>[a-z0-9]{8})_(?P<secret>[A-Za-z0-9_-]{43})$")
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class IssuedKey:
    """A new key. `plaintext` exists only here: show it once, never store or log it."""

    prefix: str
    tenant: str
    plaintext: str

    def __repr__(self) -> str:  # keep the secret out of tracebacks and debug logs
        return f"IssuedKey(prefix={self.prefix!r}, tenant={self.tenant!r}, plaintext=<hidden>)"


@dataclass(frozen=True)
class KeyRecord:
    prefix: str
    tenant: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def create_key(conn: Connection, tenant: str, *, actor: str, now: datetime) -> IssuedKey:
    """Issue a key for `tenant`, recording its prefix (not the key) in the audit log."""
    if conn.execute(select(tenants.c.name).where(tenants.c.name == tenant)).first() is None:
        raise NotFound("tenant", tenant)
    while True:
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
        taken = conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix)).first()
        if taken is None:
            break
    plaintext = f"mf_{prefix}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    conn.execute(
        insert(api_keys).values(
            prefix=prefix,
            tenant=tenant,
            salt=salt,
            key_hash=_hash(salt, plaintext),
            created_at=now,
            created_by=actor,
        )
    )
    audit.record(
        conn,
        at=now,
        actor=actor,
        action="create",
        kind="ApiKey",
        name=prefix,
        old=None,
        new={"tenant": tenant, "prefix": prefix},
    )
    return IssuedKey(prefix, tenant, plaintext)


def copy_key(
    source: Connection, target: Connection, prefix: str, *, actor: str, now: datetime
) -> bool:
    """Install the key `prefix` of `source` (its salted hash, never a plaintext) in `target`,
    another region's store, so that the tenant is known there too; False if it was already."""
    row = source.execute(select(api_keys).where(api_keys.c.prefix == prefix)).one()
    if key_exists(target, prefix):
        return False
    if target.execute(select(tenants.c.name).where(tenants.c.name == row.tenant)).first() is None:
        raise NotFound("tenant", row.tenant)  # apply the fleet to that region first
    conn_row = {c: getattr(row, c) for c in ("prefix", "tenant", "salt", "key_hash", "created_at")}
    target.execute(insert(api_keys).values(**conn_row, created_by=row.created_by))
    audit.record(
        target,
        at=now,
        actor=actor,
        action="create",
        kind="ApiKey",
        name=prefix,
        old=None,
        new={"tenant": row.tenant, "prefix": prefix, "copied": True},
    )
    return True


def key_exists(conn: Connection, prefix: str) -> bool:
    return (
        conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix)).first() is not None
    )


def list_keys(conn: Connection, tenant: str | None = None) -> list[KeyRecord]:
    """Every key, or one tenant's, oldest first."""
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if tenant is not None:
        query = query.where(api_keys.c.tenant == tenant)
    return [_record(r) for r in conn.execute(query)]


def revoke_key(conn: Connection, prefix: str, *, actor: str, now: datetime) -> KeyRecord:
    """Revoke the key with `prefix` (accepts the whole key too); revoking twice is harmless."""
    prefix = _prefix_of(prefix)
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
    if row is None:
        raise NotFound("API key", prefix)
    if row.revoked_at is not None:
        return _record(row)
    conn.execute(update(api_keys).where(api_keys.c.prefix == prefix).values(revoked_at=now))
    audit.record(
        conn,
        at=now,
        actor=actor,
        action="revoke",
        kind="ApiKey",
        name=prefix,
        old={"tenant": row.tenant, "prefix": prefix, "revoked": False},
        new={"tenant": row.tenant, "prefix": prefix, "revoked": True},
    )
    return _record(conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).one())


def verify_key(conn: Connection, plaintext: str) -> KeyRecord | None:
    """The active key that `plaintext` is, or None for a malformed, unknown or revoked key."""
    match = _KEY.match(plaintext)
    if match is None:
        return None
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == match["prefix"])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not StoredKey(row.prefix, row.tenant, row.salt, row.key_hash).matches(plaintext):
        return None
    return _record(row)


def touch_key(conn: Connection, prefix: str, *, now: datetime) -> None:
    """Record that a key was used at `now` (the gateway batches these)."""
    conn.execute(update(api_keys).where(api_keys.c.prefix == prefix).values(last_used_at=now))


@dataclass(frozen=True)
class StoredKey:
    """What the gateway needs to check a key without the store: never the key itself."""

    prefix: str
    tenant: str
    salt: str
    key_hash: str

    def matches(self, plaintext: str) -> bool:
        return hmac.compare_digest(self.key_hash, _hash(self.salt, plaintext))


def active_keys(conn: Connection) -> list[StoredKey]:
    """Every unrevoked key's prefix, tenant, salt and hash, for the gateway's in-memory table."""
    query = select(api_keys.c.prefix, api_keys.c.tenant, api_keys.c.salt, api_keys.c.key_hash)
    rows = conn.execute(query.where(api_keys.c.revoked_at.is_(None)))
    return [StoredKey(r.prefix, r.tenant, r.salt, r.key_hash) for r in rows]


def prefix_of_key(plaintext: str) -> str | None:
    """The prefix of a well-formed key, or None."""
    match = _KEY.match(plaintext)
    return match["prefix"] if match else None


def _hash(salt: str, plaintext: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + plaintext.encode()).hexdigest()


def _prefix_of(given: str) -> str:
    match = _KEY.match(given)
    if match is not None:
        return match["prefix"]
    if re.fullmatch(r"(mf_)?[a-z0-9]{8}", given):
        return given.removeprefix("mf_")
    raise InvalidInput(f"not a key prefix: expected 8 lowercase letters or digits, got {given!r}")


def _record(row: object) -> KeyRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return KeyRecord(
        prefix=m["prefix"],
        tenant=m["tenant"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )
