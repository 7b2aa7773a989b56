"""Paths: health per (peer, path), and the path of each delivery attempt and link test.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "path_status",
        sa.Column("peer", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("rtt_ms", sa.Integer(), nullable=True),
        sa.Column("skew_ms", sa.Integer(), nullable=True),
        sa.Column("last_test_at_us", sa.BigInteger(), nullable=True),
        sa.Column("last_ok_at_us", sa.BigInteger(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("peer", "path"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("path", sa.String(length=16), nullable=True))
    with op.batch_alter_table("link_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("path", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("link_history", schema=None) as batch_op:
        batch_op.drop_column("path")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("path")
    op.drop_table("path_status")
