"""debugger

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:49:39.972517
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "idempotency_keys",
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_sid", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_date_created"), ["date_created"], unique=False)

    op.create_table(
        "request_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("resource_sid", sa.String(length=34), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("to", sa.String(length=64), nullable=True),
        sa.Column("from_", sa.String(length=64), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_log")),
        sa.UniqueConstraint("sid", name=op.f("uq_request_log_sid")),
    )
    with op.batch_alter_table("request_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_log_account_sid_at"), ["account_sid", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_log_account_sid_to_at"), ["account_sid", "to", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_request_log_content_hash"), ["content_hash"], unique=False)

    op.create_table(
        "event_sinks",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("sink_type", sa.String(length=16), nullable=False),
        sa.Column("sink_configuration", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], name=op.f("fk_event_sinks_account_sid_accounts")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_event_sinks")),
    )
    with op.batch_alter_table("event_sinks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_sinks_account_sid"), ["account_sid"], unique=False)

    op.create_table(
        "event_subscriptions",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("sink_sid", sa.String(length=34), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_sid"], ["accounts.sid"], name=op.f("fk_event_subscriptions_account_sid_accounts")
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_event_subscriptions")),
    )
    with op.batch_alter_table("event_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_subscriptions_account_sid"), ["account_sid"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_subscriptions_sink_sid"), ["sink_sid"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("event_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_subscriptions_sink_sid"))
        batch_op.drop_index(batch_op.f("ix_event_subscriptions_account_sid"))

    op.drop_table("event_subscriptions")
    with op.batch_alter_table("event_sinks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_sinks_account_sid"))

    op.drop_table("event_sinks")
    with op.batch_alter_table("request_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_log_content_hash"))
        batch_op.drop_index(batch_op.f("ix_request_log_at"))
        batch_op.drop_index(batch_op.f("ix_request_log_account_sid_to_at"))
        batch_op.drop_index(batch_op.f("ix_request_log_account_sid_at"))

    op.drop_table("request_log")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_date_created"))

    op.drop_table("idempotency_keys")
