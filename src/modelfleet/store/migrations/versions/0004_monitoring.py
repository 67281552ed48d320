"""monitoring: reference profiles, prediction log, feedback, review queue, monitor results

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
NAME = sa.String(length=63)


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("monitoring", sa.JSON(), nullable=True))
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))
    op.create_table(
        "profiles",
        sa.Column("model", NAME, nullable=False),
        sa.Column("version", NAME, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_profiles")),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", NAME, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("version", NAME, nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("predicted", sa.JSON(), nullable=False),
        sa.Column("confidences", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint("tenant", "model", "request_id", name="uq_predictions_request"),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_predictions_at"), ["at"], unique=False)
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", NAME, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("tenant", "model", "request_id", "row", name="uq_feedback_row"),
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.Column("tenant", NAME, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("version", NAME, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("labelled_by", sa.String(length=200), nullable=True),
        sa.Column("labelled_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["sample"],
            ["samples.id"],
            name=op.f("fk_review_items_sample_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("sample", name=op.f("uq_review_items_sample")),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_items_tenant"), ["tenant"], unique=False)
    op.create_table(
        "monitor_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("tenant", NAME, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("version", NAME, nullable=False),
        sa.Column("monitor", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("window_start", TZ, nullable=False),
        sa.Column("window_end", TZ, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_results")),
    )
    with op.batch_alter_table("monitor_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monitor_results_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitor_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_results_at"))
    op.drop_table("monitor_results")
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_items_tenant"))
    op.drop_table("review_items")
    op.drop_table("feedback")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_at"))
    op.drop_table("predictions")
    op.drop_table("profiles")
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_column("request_id")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("monitoring")
