"""Officers and roles: the officers' record (projection), their secrets, API tokens and
browser sessions.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "officer_record",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("languages", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("entry_idx", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "officers",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_pending", sa.String(length=64), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "officer_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_officer_tokens_username", "officer_tokens", ["username"])
    op.create_table(
        "officer_sessions",
        sa.Column("session_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("csrf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    op.create_index("ix_officer_sessions_username", "officer_sessions", ["username"])


def downgrade() -> None:
    op.drop_index("ix_officer_sessions_username", table_name="officer_sessions")
    op.drop_table("officer_sessions")
    op.drop_index("ix_officer_tokens_username", table_name="officer_tokens")
    op.drop_table("officer_tokens")
    op.drop_table("officers")
    op.drop_table("officer_record")
