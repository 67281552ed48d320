"""alerting: declarations, detector states, alerts, groups, notifications, silences,
runbook runs, replica targets, region status, throttles, incidents, SLA credits, capacity
decisions and forecasts

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
NAME = sa.String(length=63)


def upgrade() -> None:
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("receiver", NAME, nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.Column("last_notified_at", TZ, nullable=True),
        sa.Column("next_flush_at", TZ, nullable=False),
        sa.Column("paged_at", TZ, nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", TZ, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_groups")),
    )
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_groups_key"), ["key"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("anomaly_at", TZ, nullable=True),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=True),
        sa.Column("refreshed_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("flaps", sa.Integer(), nullable=False),
        sa.Column("suppressed_by", sa.JSON(), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_alerts_fingerprint")),
    )
    op.create_table(
        "capacity_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("version", NAME, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capacity_decisions")),
    )
    with op.batch_alter_table("capacity_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_capacity_decisions_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_capacity_decisions_model"), ["model"], unique=False)

    op.create_table(
        "capacity_forecasts",
        sa.Column("model", NAME, nullable=False),
        sa.Column("fitted_at", TZ, nullable=False),
        sa.Column("start", TZ, nullable=False),
        sa.Column("mean", sa.JSON(), nullable=False),
        sa.Column("lower", sa.JSON(), nullable=False),
        sa.Column("upper", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("mase", sa.Float(), nullable=True),
        sa.Column("per_replica_rps", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_capacity_forecasts")),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cursors")),
    )
    op.create_table(
        "declarations",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name=op.f("pk_declarations")),
    )
    op.create_table(
        "detector_states",
        sa.Column("stream", sa.String(length=400), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("last_minute", TZ, nullable=True),
        sa.Column("firing", sa.String(length=8), nullable=True),
        sa.Column("anomalous_since", TZ, nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_detector_states")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_key", sa.String(length=600), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("anomaly_at", TZ, nullable=True),
        sa.Column("detected_at", TZ, nullable=False),
        sa.Column("acknowledged_at", TZ, nullable=True),
        sa.Column("resolved_at", TZ, nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_group_key"), ["group_key"], unique=False)

    op.create_table(
        "region_status",
        sa.Column("region", NAME, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failover_to", NAME, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("region", name=op.f("pk_region_status")),
    )
    op.create_table(
        "replica_targets",
        sa.Column("model", NAME, nullable=False),
        sa.Column("version", NAME, nullable=False),
        sa.Column("replicas", sa.Integer(), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_replica_targets")),
    )
    op.create_table(
        "runbook_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("runbook", NAME, nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("deadline", TZ, nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runbook_runs")),
    )
    with op.batch_alter_table("runbook_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_runbook_runs_fingerprint"), ["fingerprint"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_runbook_runs_runbook"), ["runbook"], unique=False)

    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", TZ, nullable=False),
        sa.Column("ends_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_table(
        "sla_credits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sla", NAME, nullable=False),
        sa.Column("tenant", NAME, nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("slis", sa.JSON(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("computed_at", TZ, nullable=False),
        sa.Column("notified_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_credits")),
        sa.UniqueConstraint("sla", "tenant", "period", name="uq_sla_credits_period"),
    )
    with op.batch_alter_table("sla_credits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sla_credits_tenant"), ["tenant"], unique=False)

    op.create_table(
        "tenant_throttles",
        sa.Column("tenant", NAME, nullable=False),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.Column("until", TZ, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", name=op.f("pk_tenant_throttles")),
    )
    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident", sa.Integer(), nullable=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident"],
            ["incidents.id"],
            name=op.f("fk_incident_timeline_incident_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_timeline")),
    )
    with op.batch_alter_table("incident_timeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_timeline_incident"), ["incident"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("receiver", NAME, nullable=False),
        sa.Column("integration", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("page", sa.Boolean(), nullable=False),
        sa.Column("person", sa.String(length=100), nullable=True),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["alert_groups.id"],
            name=op.f("fk_notifications_group_id_alert_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notifications_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_notifications_group_id"), ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_group_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_created_at"))

    op.drop_table("notifications")
    with op.batch_alter_table("incident_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_timeline_incident"))

    op.drop_table("incident_timeline")
    op.drop_table("tenant_throttles")
    with op.batch_alter_table("sla_credits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sla_credits_tenant"))

    op.drop_table("sla_credits")
    op.drop_table("silences")
    with op.batch_alter_table("runbook_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runbook_runs_runbook"))
        batch_op.drop_index(batch_op.f("ix_runbook_runs_fingerprint"))

    op.drop_table("runbook_runs")
    op.drop_table("replica_targets")
    op.drop_table("region_status")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_group_key"))

    op.drop_table("incidents")
    op.drop_table("detector_states")
    op.drop_table("declarations")
    op.drop_table("cursors")
    op.drop_table("capacity_forecasts")
    with op.batch_alter_table("capacity_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_capacity_decisions_model"))
        batch_op.drop_index(batch_op.f("ix_capacity_decisions_at"))

    op.drop_table("capacity_decisions")
    op.drop_table("alerts")
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_groups_key"))

    op.drop_table("alert_groups")
