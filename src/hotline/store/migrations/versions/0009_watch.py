"""Escalation, duty rota and handover: the ``rota``, ``escalations`` and ``handovers``
projections, and the role an alarm is for (``alarms.role``).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alarms", sa.Column("role", sa.String(length=32), nullable=True))
    op.create_table(
        "rota",
        sa.Column("entry_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("from_us", sa.BigInteger(), nullable=False),
        sa.Column("to_us", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("set_at_us", sa.BigInteger(), nullable=False),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index("ix_rota_role", "rota", ["role", "from_us"])
    op.create_table(
        "escalations",
        sa.Column("entry_idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("peer", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("both_sides", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("entry_idx"),
    )
    op.create_index("ix_escalations_message", "escalations", ["message_id", "origin", "step"])
    op.create_table(
        "handovers",
        sa.Column("handover_id", sa.String(length=36), nullable=False),
        sa.Column("written_by", sa.String(length=100), nullable=False),
        sa.Column("written_at_us", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("acknowledged_at_us", sa.BigInteger(), nullable=True),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("handover_id"),
    )
    op.create_index("ix_handovers_written", "handovers", ["written_at_us"])


def downgrade() -> None:
    op.drop_index("ix_handovers_written", table_name="handovers")
    op.drop_table("handovers")
    op.drop_index("ix_escalations_message", table_name="escalations")
    op.drop_table("escalations")
    op.drop_index("ix_rota_role", table_name="rota")
    op.drop_table("rota")
    with op.batch_alter_table("alarms") as batch_op:
        batch_op.drop_column("role")
