"""scale out: the control loop's leader lease, telemetry batches written back from a spool, and
what each replica of a version reserves and a deployment's bounds for Ray Serve's autoscaler

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resources", sa.JSON(), nullable=True))
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("autoscaling", sa.JSON(), nullable=True))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
        sa.Column("renewed_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "spooled_batches",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=255), nullable=False),
        sa.Column("written_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spooled_batches")),
    )


def downgrade() -> None:
    op.drop_table("spooled_batches")
    op.drop_table("leases")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("autoscaling")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("resources")
