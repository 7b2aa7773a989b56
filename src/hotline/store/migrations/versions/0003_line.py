"""The line against a hostile peer: the peer's claimed acknowledgement time kept beside
ours, and each inbound envelope's message id (an old id on a new sequence is refused).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ack_claimed_at_us", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_inbound_message", ["peer", "message_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("inbound", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_message")
        batch_op.drop_column("message_id")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("ack_claimed_at_us")
