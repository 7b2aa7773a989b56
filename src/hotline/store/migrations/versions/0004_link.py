"""Refusals: a delivery the peer refused (parked, with its code), counted in link health.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refused", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("refused_at_us", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("link_status", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refused", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_refused", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("link_status", schema=None) as batch_op:
        batch_op.drop_column("last_refused")
        batch_op.drop_column("refused")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("refused_at_us")
        batch_op.drop_column("refused")
