"""The store's tables, as SQLAlchemy Core. Migrations in `migrations/` create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from modelfleet.store.types import UTCDateTime

# Explicit constraint names keep migrations portable between SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NAME = 63  # the longest resource name fleet.yaml admits

tenants = Table(
    "tenants",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("tier", String(32), nullable=False),
    Column("home_region", String(NAME), nullable=False),
    Column("contact_email", String(320), nullable=False),
    Column("quota", JSON, nullable=True),  # overrides the tier's quota when set
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("description", Text, nullable=False),
    Column("input_schema", JSON, nullable=False),
    Column("output_schema", JSON, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(NAME), ForeignKey("models.name"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("format", String(16), nullable=False),
    Column("artifact_path", Text, nullable=False),
    Column("artifact_sha256", String(64), nullable=False),
    Column("reference_data", Text, nullable=True),
    Column("evaluation_data", Text, nullable=True),
    Column("notes", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("model", "name", name="uq_model_versions_model_name"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("model", String(NAME), ForeignKey("models.name"), nullable=False),
    Column("all_tenants", Boolean, nullable=False),
    Column("stable_version", String(NAME), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["model", "stable_version"],
        ["model_versions.model", "model_versions.name"],
        name="fk_deployments_stable_version_model_versions",
    ),
)

deployment_tenants = Table(
    "deployment_tenants",
    metadata,
    Column(
        "deployment",
        String(NAME),
        ForeignKey("deployments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tenant", String(NAME), ForeignKey("tenants.name"), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("tenant", String(NAME), ForeignKey("tenants.name"), nullable=False, index=True),
    Column("salt", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("old", JSON, nullable=True),
    Column("new", JSON, nullable=True),
)

# Per-minute telemetry rollups, one row per (key, flush): rows of the same key merge by
# addition when read, so concurrent workers and gateways never update each other's rows.
rollups = Table(
    "rollups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("region", String(NAME), nullable=False),
    Column("minute", UTCDateTime, nullable=False, index=True),
    Column("payload", JSON, nullable=False),
    Column("flushed_at", UTCDateTime, nullable=False),
)

# What the data plane found when it tried to serve a deployment's version.
deployment_status = Table(
    "deployment_status",
    metadata,
    Column(
        "deployment",
        String(NAME),
        ForeignKey("deployments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", String(NAME), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Raw requests kept for review and debugging: a configured share of all, and every
# low-confidence one. Bounded per flush, so a flood cannot fill the store.
samples = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("region", String(NAME), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("reason", String(32), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("outputs", JSON, nullable=False),
)
