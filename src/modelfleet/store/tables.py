"""The store's tables, as SQLAlchemy Core. Migrations in `migrations/` create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
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
    Column("residency", String(NAME), nullable=True),  # a jurisdiction; None: anywhere
    Column("cross_region", String(16), nullable=False, server_default="redirect"),
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
    Column("monitoring", JSON, nullable=True),  # null: the defaults
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
    Column("resources", JSON, nullable=True),  # what each replica reserves; None: defaults
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
    # The version that serves (rollouts promote and roll back), and the one fleet.yaml declares:
    # they differ while a rollout runs, and after one was rolled back.
    Column("stable_version", String(NAME), nullable=False),
    Column("declared_version", String(NAME), nullable=False),
    # The declared version changed and the rollout controller has not acted on it yet.
    Column("awaiting_rollout", Boolean, nullable=False, server_default=false()),
    Column("strategy", JSON, nullable=True),
    Column("gate", JSON, nullable=False),
    Column("sticky_key", String(64), nullable=False, server_default="tenant"),
    Column("pins", JSON, nullable=False),  # tenant -> version
    Column("autoscaling", JSON, nullable=True),  # bounds for Ray Serve's autoscaler, if any
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
    Column("shadow", Boolean, nullable=False, server_default=false()),
    Column("payload", JSON, nullable=False),
    Column("flushed_at", UTCDateTime, nullable=False),
    # "minute"; "hour" once retention compacted an hour's minutes into one row at its start.
    Column("resolution", String(8), nullable=False, server_default="minute"),
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
    Column("request_id", String(128), nullable=True),  # joins feedback given on this request
)

# How a deployment's traffic is split while a rollout runs, as the rollout controller publishes
# it: the gateway reads it with the routes. No row: all traffic to the stable version.
traffic_splits = Table(
    "traffic_splits",
    metadata,
    Column(
        "deployment",
        String(NAME),
        ForeignKey("deployments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("candidate", String(NAME), nullable=False),
    Column("canary_percent", Float, nullable=False),  # of requests answered by the candidate
    Column("shadow_percent", Float, nullable=False),  # of stable's requests mirrored to it
    Column("warm", JSON, nullable=False),  # versions kept loaded without traffic
    Column("seed", Integer, nullable=False),  # reshuffles sticky assignment per rollout
    Column("updated_at", UTCDateTime, nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "deployment",
        String(NAME),
        ForeignKey("deployments.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("model", String(NAME), nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("spec", JSON, nullable=False),  # strategy, gate and sticky key as they were at start
    Column("stable_version", String(NAME), nullable=False),
    Column("candidate_version", String(NAME), nullable=False),
    Column("state", String(16), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("percent", Float, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("phase_started_at", UTCDateTime, nullable=False),
    Column("baseline", JSON, nullable=True),  # stable's window when it no longer gets traffic
    Column("started_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=False),
    Column("actor", String(200), nullable=False),
)

# Every decision of a rollout, with its evidence: gate reports, analyses, steps, pauses.
rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "rollout",
        Integer,
        ForeignKey("rollouts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("step", Integer, nullable=False),
    Column("percent", Float, nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("reason", Text, nullable=False),
    Column("evidence", JSON, nullable=True),
)

# What the control plane's controllers tell each other and people: a rollout rolled back, a
# gate refused a version. Alerting routes them; they are only ever appended.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("tenant", String(NAME), nullable=True),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
)

# A version's reference profile: per-column bin edges and counts, ranges, the class and
# confidence distribution of its predictions, and thresholds learned from its own variation.
profiles = Table(
    "profiles",
    metadata,
    Column("model", String(NAME), primary_key=True),
    Column("version", String(NAME), primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# What the gateway answered to requests that carry an id (and to sampled ones), so feedback
# on a request id can be scored. Not every request: only those someone can give feedback on.
predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("predicted", JSON, nullable=False),  # one label (or value) per row
    Column("confidences", JSON, nullable=True),
    UniqueConstraint("tenant", "model", "request_id", name="uq_predictions_request"),
)

# True labels, from customers (`POST /v1/feedback`) or from people working the review queue.
# One row per (request, row): giving the same feedback again changes nothing.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("row", Integer, nullable=False),
    Column("label", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # customer or review
    Column("actor", String(200), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant", "model", "request_id", "row", name="uq_feedback_row"),
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "sample", Integer, ForeignKey("samples.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
    Column("tenant", String(NAME), nullable=False, index=True),
    Column("model", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("reason", String(32), nullable=False),  # low_confidence or sampled
    Column("status", String(16), nullable=False),  # open or labelled
    Column("label", String(200), nullable=True),
    Column("labelled_by", String(200), nullable=True),
    Column("labelled_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Each monitor's verdict on a (tenant, model, version) for one window, with its evidence.
monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("tenant", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("version", String(NAME), nullable=False),
    Column("monitor", String(32), nullable=False),  # drift, data_quality, output_quality
    Column("status", String(16), nullable=False),  # ok, warning, alert, insufficient
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
)

# -- alerting and automated response ---------------------------------------------------------

# Kinds of the control plane (alert rules, receivers, routing, on-call, runbooks), each stored
# whole as its validated spec: their consumers parse it back with the same schema.
declarations = Table(
    "declarations",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(NAME), primary_key=True),
    Column("labels", JSON, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Where a controller has read up to in an append-only table (the events' id, a rollup minute).
cursors = Table(
    "cursors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Each metric stream's anomaly detector: its learned state, so a restart loses no learning.
detector_states = Table(
    "detector_states",
    metadata,
    Column("stream", String(400), primary_key=True),  # metric and labels, canonical
    Column("metric", String(32), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("state", JSON, nullable=False),
    Column("last_minute", UTCDateTime, nullable=True),  # the last complete minute learned
    Column("firing", String(8), nullable=True),  # the direction it alarms in: up or down
    Column("anomalous_since", UTCDateTime, nullable=True),  # first anomalous point, if alarming
    Column("started_at", UTCDateTime, nullable=False),  # when the stream was first followed
    Column("updated_at", UTCDateTime, nullable=False),
)

# Alerts by fingerprint (a hash of their labels): one row however often a source re-fires it.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(16), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("annotations", JSON, nullable=False),
    Column("source", String(32), nullable=False),  # rules, anomaly, rollouts, monitors, ...
    Column("state", String(16), nullable=False),  # firing or resolved
    Column("anomaly_at", UTCDateTime, nullable=True),  # the first anomalous point seen
    Column("starts_at", UTCDateTime, nullable=False),  # detected
    Column("ends_at", UTCDateTime, nullable=True),  # resolved
    Column("refreshed_at", UTCDateTime, nullable=False),  # last time a source said it fires
    Column("expires_at", UTCDateTime, nullable=True),  # resolves by itself unless refreshed
    Column("flaps", Integer, nullable=False),  # times it fired again inside the flap window
    Column("suppressed_by", JSON, nullable=True),  # silences and inhibiting alerts muting it
    Column("updated_at", UTCDateTime, nullable=False),
)

# Aggregation groups: alerts routed to one receiver with the same `group_by` values.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # route path and grouped labels; a key's group closes and a later one may open again
    Column("key", String(600), nullable=False, index=True),
    Column("receiver", String(NAME), nullable=False),
    Column("labels", JSON, nullable=False),  # the group_by labels and their values
    Column("settings", JSON, nullable=False),  # group_wait, group_interval, repeat_interval
    Column("state", String(16), nullable=False),  # open or closed
    Column("opened_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("notified", JSON, nullable=False),  # firing and resolved fingerprints last notified
    Column("last_notified_at", UTCDateTime, nullable=True),
    Column("next_flush_at", UTCDateTime, nullable=False),
    Column("paged_at", UTCDateTime, nullable=True),
    Column("escalation_level", Integer, nullable=False),  # the last level paged; -1: none
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
)

# Every notification and page, and each attempt to deliver it: an outbox, retried with backoff.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", Integer, ForeignKey("alert_groups.id", ondelete="CASCADE"), index=True),
    Column("receiver", String(NAME), nullable=False),
    Column("integration", String(16), nullable=False),  # webhook, slack, pagerduty, email
    Column("kind", String(16), nullable=False),  # firing, resolved, acknowledged
    Column("page", Boolean, nullable=False),  # to a person, through an escalation policy
    Column("person", String(100), nullable=True),
    Column("level", Integer, nullable=True),
    Column("target", JSON, nullable=False),  # the integration's settings
    Column("body", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("delivered_at", UTCDateTime, nullable=True),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Runbook runs: one per alert episode that a runbook took on, with its step and verdict.
runbook_runs = Table(
    "runbook_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("runbook", String(NAME), nullable=False, index=True),
    Column("fingerprint", String(16), nullable=False, index=True),
    Column("labels", JSON, nullable=False),
    Column("state", String(24), nullable=False),
    Column("step", Integer, nullable=False),
    Column("deadline", UTCDateTime, nullable=True),  # of the step's verification
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("outcomes", JSON, nullable=False),  # each step's action and result
)

# What remediation asks of the data plane, which applies it when it refreshes its routes:
# a version's replica count, and a restart counter that redeploys the version when it moves.
replica_targets = Table(
    "replica_targets",
    metadata,
    Column("model", String(NAME), primary_key=True),
    Column("version", String(NAME), primary_key=True),
    Column("replicas", Integer, nullable=True),
    Column("restarts", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A region declared down, and where its tenants are served meanwhile.
region_status = Table(
    "region_status",
    metadata,
    Column("region", String(NAME), primary_key=True),
    Column("status", String(16), nullable=False),  # up or down
    Column("failover_to", String(NAME), nullable=True),
    Column("reason", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A tenant's quota cut to a share of its own for a while.
tenant_throttles = Table(
    "tenant_throttles",
    metadata,
    Column("tenant", String(NAME), primary_key=True),
    Column("factor", Float, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_key", String(600), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open, acknowledged, resolved
    Column("labels", JSON, nullable=False),
    Column("tenants", JSON, nullable=False),  # affected tenants
    Column("anomaly_at", UTCDateTime, nullable=True),  # first anomalous point
    Column("detected_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", String(200), nullable=True),  # a runbook, a person, or recovery
    Column("pages", Integer, nullable=False),
)

incident_timeline = Table(
    "incident_timeline",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
)

# -- customer SLAs --------------------------------------------------------------------------

# Service credits: one row per (SLA, tenant, period), provisional while the period runs and
# final once it has closed; a final row is never changed again.
sla_credits = Table(
    "sla_credits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sla", String(NAME), nullable=False),
    Column("tenant", String(NAME), nullable=False, index=True),
    Column("period", String(7), nullable=False),  # 2026-11, in the SLA's time zone
    Column("state", String(16), nullable=False),  # provisional or final
    Column("slis", JSON, nullable=False),  # each SLO's good, total and value
    Column("share", Float, nullable=False),  # of the monthly fee
    Column("amount", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("notified_at", UTCDateTime, nullable=True),
    UniqueConstraint("sla", "tenant", "period", name="uq_sla_credits_period"),
)

# -- capacity -----------------------------------------------------------------------------------

# Every scaling decision, with what it was decided from: replay it, audit it, chart it.
capacity_decisions = Table(
    "capacity_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(NAME), nullable=False, index=True),
    Column("version", String(NAME), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("replicas", Integer, nullable=False),
    Column("previous", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("inputs", JSON, nullable=False),
)

# A model's demand forecast as last fitted, with its accuracy on the week before (MASE).
capacity_forecasts = Table(
    "capacity_forecasts",
    metadata,
    Column("model", String(NAME), primary_key=True),
    Column("fitted_at", UTCDateTime, nullable=False),
    Column("start", UTCDateTime, nullable=False),  # the first hour forecast
    Column("mean", JSON, nullable=False),  # requests per hour
    Column("lower", JSON, nullable=False),
    Column("upper", JSON, nullable=False),
    Column("method", String(32), nullable=False),
    Column("mase", Float, nullable=True),
    Column("per_replica_rps", Float, nullable=True),  # measured, see capacity/measure.py
)

# Signed-in web sessions (operator dashboard, tenant portal). Only the SHA-256 of the cookie's
# random id is kept, so a copy of the store signs no one in.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # operator or tenant
    Column("tenant", String(NAME), nullable=True),  # tenant sessions only
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# One row per lease: who holds it, until when, and the term, which grows with every new holder
# (a fencing token: a holder that lost the lease cannot renew it under its old term).
leases = Table(
    "leases",
    metadata,
    Column("name", String(NAME), primary_key=True),  # e.g. "control-loop"
    Column("holder", String(255), nullable=False),  # host:pid:random of the holder
    Column("term", Integer, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("renewed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Telemetry batches a gateway spooled to its disk while the store was unreachable, recorded in
# the same transaction that writes one back, so a batch is never written twice.
spooled_batches = Table(
    "spooled_batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("gateway", String(255), nullable=False),
    Column("written_at", UTCDateTime, nullable=False),
)
