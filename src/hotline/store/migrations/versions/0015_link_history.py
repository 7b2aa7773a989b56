"""Link health history: the last link tests of each peer (a bounded ring).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("peer", sa.String(length=32), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("rtt_ms", sa.Integer(), nullable=True),
        sa.Column("skew_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("link_history", schema=None) as batch_op:
        batch_op.create_index("ix_link_history_peer", ["peer", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("link_history", schema=None) as batch_op:
        batch_op.drop_index("ix_link_history_peer")
    op.drop_table("link_history")
