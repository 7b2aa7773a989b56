"""Message stages: who read a message, its first answer, and alarm acknowledgements.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_reads",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("station", sa.String(length=32), nullable=False),
        sa.Column("officer", sa.String(length=100), nullable=False),
        sa.Column("read_at_us", sa.BigInteger(), nullable=False),
        sa.Column("claimed_at_us", sa.BigInteger(), nullable=True),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "station", "officer"),
    )
    op.create_table(
        "message_answers",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("reply_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("answered_at_us", sa.BigInteger(), nullable=False),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("acknowledged_at_us", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("ack_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("ack_note")
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at_us")
    op.drop_table("message_answers")
    op.drop_table("message_reads")
