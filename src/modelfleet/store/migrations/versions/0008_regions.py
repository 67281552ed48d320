"""regions and data governance: a tenant's residency and cross-region policy, rollups'
resolution (minute, or hourly once compacted by retention)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("residency", sa.String(length=63), nullable=True))
        batch_op.add_column(
            sa.Column(
                "cross_region", sa.String(length=16), nullable=False, server_default="redirect"
            )
        )
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resolution", sa.String(length=8), nullable=False, server_default="minute")
        )


def downgrade() -> None:
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.drop_column("resolution")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("cross_region")
        batch_op.drop_column("residency")
