"""The registry: tenants, API keys, models, versions, deployments, and the audit log of changes."""

from modelfleet.registry.apply import Action, Change, apply_fleet
from modelfleet.registry.audit import AuditEntry, latest
from modelfleet.registry.keys import (
    IssuedKey,
    KeyRecord,
    create_key,
    list_keys,
    revoke_key,
    verify_key,
)
from modelfleet.registry.resources import FleetState, Registered, load_state

__all__ = [
    "Action",
    "AuditEntry",
    "Change",
    "FleetState",
    "IssuedKey",
    "KeyRecord",
    "Registered",
    "apply_fleet",
    "create_key",
    "latest",
    "list_keys",
    "load_state",
    "revoke_key",
    "verify_key",
]
