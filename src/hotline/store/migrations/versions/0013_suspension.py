"""Suspension and dissemination: the ``suspensions`` and ``disseminations`` projections
and the operational ``dissemination_due`` list.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suspensions",
        sa.Column("entry_idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("declared_by", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("officer", sa.String(length=100), nullable=True),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("claimed_at_us", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("entry_idx", "peer"),
    )
    op.create_index("ix_suspensions_peer", "suspensions", ["peer", "channel"])
    op.create_table(
        "disseminations",
        sa.Column("entry_idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("to_whom", sa.String(length=200), nullable=False),
        sa.Column("passed_at_us", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger(), nullable=False),
        sa.Column("officer", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("record_id", sa.String(length=36), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("entry_idx"),
    )
    op.create_index("ix_disseminations_message", "disseminations", ["message_id"])
    op.create_table(
        "dissemination_due",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("precedence", sa.SmallInteger(), nullable=False),
        sa.Column("notice_id", sa.String(length=128), nullable=False),
        sa.Column("due_at_us", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )


def downgrade() -> None:
    op.drop_table("dissemination_due")
    op.drop_index("ix_disseminations_message", table_name="disseminations")
    op.drop_table("disseminations")
    op.drop_index("ix_suspensions_peer", table_name="suspensions")
    op.drop_table("suspensions")
