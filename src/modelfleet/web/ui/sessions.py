"""Who is signed in to the dashboard or the portal: server-side sessions and their CSRF tokens.

Operators sign in with the admin token (`MODELFLEET_ADMIN_TOKEN`; the process keeps only its
SHA-256 and compares in constant time), customers with one of their tenant's API keys. A
session is a random id in an `HttpOnly`, `Secure`, `SameSite=Lax` cookie; the store keeps only
its SHA-256 (table `web_sessions`), so a copy of the store signs no one in. Each session has
its own CSRF token, which every form that changes something must send back. Sessions last
12 hours; signing out deletes the row. Neither the token, the key nor the id is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, delete, insert, select

from modelfleet.registry.keys import verify_key
from modelfleet.store.tables import web_sessions

COOKIE = "modelfleet_session"
LIFETIME = timedelta(hours=12)

Kind = Literal["operator", "tenant"]


@dataclass(frozen=True)
class Session:
    kind: Kind
    tenant: str | None  # tenant sessions only
    csrf_token: str
    expires_at: datetime


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def operator_token_matches(presented: str, admin_token_sha256: str | None) -> bool:
    """Whether `presented` is the operators' token; always False when none is configured."""
    if admin_token_sha256 is None:
        return False
    return hmac.compare_digest(_sha256(presented.strip()), admin_token_sha256)


def tenant_of_key(conn: Connection, presented: str) -> str | None:
    """The tenant whose valid, unrevoked API key `presented` is; None otherwise."""
    key = verify_key(conn, presented.strip())
    return None if key is None else key.tenant


def open_session(
    conn: Connection, kind: Kind, *, tenant: str | None, now: datetime
) -> tuple[str, Session]:
    """A new session; returns the id to put in the cookie (only its hash is stored)."""
    if (kind == "tenant") != (tenant is not None):
        raise ValueError("a tenant session names its tenant, an operator session none")
    session_id = secrets.token_urlsafe(32)
    session = Session(kind, tenant, secrets.token_urlsafe(32), now + LIFETIME)
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    conn.execute(
        insert(web_sessions).values(
            id_sha256=_sha256(session_id),
            kind=kind,
            tenant=tenant,
            csrf_token=session.csrf_token,
            created_at=now,
            expires_at=session.expires_at,
        )
    )
    return session_id, session


def find_session(conn: Connection, session_id: str | None, *, now: datetime) -> Session | None:
    """The live session whose id the cookie carries; None when missing, unknown or expired."""
    if not session_id:
        return None
    row = conn.execute(
        select(web_sessions).where(web_sessions.c.id_sha256 == _sha256(session_id))
    ).first()
    if row is None or row.expires_at <= now:
        return None
    return Session(row.kind, row.tenant, row.csrf_token, row.expires_at)


def close_session(conn: Connection, session_id: str | None) -> None:
    """Sign out: the session's row is deleted, so its cookie no longer opens anything."""
    if session_id:
        conn.execute(delete(web_sessions).where(web_sessions.c.id_sha256 == _sha256(session_id)))


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether a form's CSRF token is its session's, compared in constant time."""
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8"), session.csrf_token.encode("utf-8")
    )
