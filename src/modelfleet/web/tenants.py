"""The caller's tenant, from its API key: what every tenant-facing web API starts from.

The tenant always comes from the key, never from the request, so no call can name another
tenant's data.
"""

from __future__ import annotations

from modelfleet.gateway.app import Scope
from modelfleet.gateway.errors import unauthorized
from modelfleet.registry.keys import verify_key
from modelfleet.store import Store


def tenant_of(store: Store, scope: Scope) -> str:
    """The tenant whose key authorizes the request; 401 without a valid one."""
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if header is None or not header.startswith(b"Bearer "):
        raise unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    with store.begin() as conn:
        key = verify_key(conn, header[7:].strip().decode("latin-1"))
    if key is None:
        raise unauthorized("unknown or revoked API key")
    return key.tenant
