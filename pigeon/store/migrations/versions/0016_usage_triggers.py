"""usage_triggers: thresholds on an account's usage that call a URL when reached

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 07:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_triggers",
        sa.Column("sid", sa.String(34), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("friendly_name", sa.String(64), nullable=True),
        sa.Column("usage_category", sa.String(16), nullable=False),
        sa.Column("trigger_by", sa.String(8), nullable=False),
        sa.Column("trigger_value", sa.String(32), nullable=False),
        sa.Column("recurring", sa.String(8), nullable=True),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("callback_method", sa.String(8), nullable=False),
        sa.Column("fired_period", sa.String(10), nullable=True),
        sa.Column("date_fired", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], name=op.f("fk_usage_triggers_account_sid_accounts")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_usage_triggers")),
    )
    op.create_index(op.f("ix_usage_triggers_account_sid"), "usage_triggers", ["account_sid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_usage_triggers_account_sid"), table_name="usage_triggers")
    op.drop_table("usage_triggers")
