"""request log: the account a request's URL names, when its credentials could not be checked

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 12:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and without a default: adding it rewrites no rows, on SQLite or PostgreSQL.
    op.add_column("request_log", sa.Column("claimed_account_sid", sa.String(length=34), nullable=True))
    # Partial: almost every request has it null, and those rows then cost the index nothing.
    op.create_index(
        op.f("ix_request_log_claimed_account_sid_to_at"),
        "request_log",
        ["claimed_account_sid", "to", "at"],
        unique=False,
        postgresql_where=sa.text("claimed_account_sid IS NOT NULL"),
        sqlite_where=sa.text("claimed_account_sid IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_request_log_claimed_account_sid_to_at"), table_name="request_log")
    with op.batch_alter_table("request_log", schema=None) as batch_op:
        batch_op.drop_column("claimed_account_sid")
