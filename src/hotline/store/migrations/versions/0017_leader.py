"""The active process of a station (active/standby on PostgreSQL): the fencing epoch.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leader",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("process_name", sa.String(length=200), nullable=False),
        sa.Column("api_url", sa.String(length=300), nullable=False),
        sa.Column("peer_url", sa.String(length=300), nullable=False),
        sa.Column("promoted_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("leader")
