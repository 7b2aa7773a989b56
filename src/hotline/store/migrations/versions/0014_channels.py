"""Channels at several levels: proposals, members' answers, message groups.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_proposals",
        sa.Column("proposal_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("proposer", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("proposed_at_us", sa.BigInteger(), nullable=False),
        sa.Column("decided_at_us", sa.BigInteger(), nullable=True),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id"),
    )
    with op.batch_alter_table("channel_proposals", schema=None) as batch_op:
        batch_op.create_index("ix_channel_proposals_name", ["name"], unique=False)
    op.create_table(
        "channel_votes",
        sa.Column("proposal_id", sa.String(length=64), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", "station"),
    )
    op.create_table(
        "channel_groups",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    with op.batch_alter_table("channel_groups", schema=None) as batch_op:
        batch_op.create_index("ix_channel_groups_group", ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("channel_groups", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_groups_group")
    op.drop_table("channel_groups")
    op.drop_table("channel_votes")
    with op.batch_alter_table("channel_proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_channel_proposals_name")
    op.drop_table("channel_proposals")
