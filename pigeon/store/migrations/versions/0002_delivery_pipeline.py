"""delivery pipeline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:28:11.334482
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "alerts",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=False),
        sa.Column("log_level", sa.String(length=8), server_default="error", nullable=False),
        sa.Column("resource_sid", sa.String(length=34), nullable=True),
        sa.Column("alert_text", sa.Text(), nullable=False),
        sa.Column("request_method", sa.String(length=8), nullable=True),
        sa.Column("request_url", sa.Text(), nullable=True),
        sa.Column("request_variables", sa.JSON(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alerts_account_sid_date_created"), ["account_sid", "date_created"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alerts_resource_sid"), ["resource_sid"], unique=False)

    op.create_table(
        "carrier_refs",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("carrier_message_id", sa.String(length=80), nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("part_index", sa.Integer(), server_default="0", nullable=False),
        sa.Column("part_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt_stat", sa.String(length=16), nullable=True),
        sa.Column("receipt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("carrier", "carrier_message_id", name=op.f("pk_carrier_refs")),
    )
    with op.batch_alter_table("carrier_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_carrier_refs_message_sid"), ["message_sid"], unique=False)

    op.create_table(
        "sender_pacing",
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("next_send_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender", name=op.f("pk_sender_pacing")),
    )
    op.create_table(
        "simulated_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("carrier_message_id", sa.String(length=80), nullable=False),
        sa.Column("stat", sa.String(length=16), nullable=False),
        sa.Column("err", sa.String(length=16), nullable=False),
        sa.Column("submit_date", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulated_receipts")),
    )
    with op.batch_alter_table("simulated_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_simulated_receipts_due_at"), ["due_at"], unique=False)

    op.create_table(
        "unmatched_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("carrier_message_id", sa.String(length=80), nullable=False),
        sa.Column("stat", sa.String(length=16), nullable=True),
        sa.Column("err", sa.String(length=16), nullable=True),
        sa.Column("done_date", sa.String(length=16), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_receipts")),
    )
    with op.batch_alter_table("unmatched_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unmatched_receipts_carrier_carrier_message_id"),
            ["carrier", "carrier_message_id"],
            unique=False,
        )

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("idempotency_token", sa.String(length=64), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("fallback_url", sa.Text(), nullable=True),
        sa.Column("fallback_method", sa.String(length=8), nullable=True),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=12), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("idempotency_token", name=op.f("uq_webhook_deliveries_idempotency_token")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_message_sid"), ["message_sid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_deliveries_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("carrier", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_from__status"), ["from_", "status"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_from__status"))
        batch_op.drop_column("carrier")
        batch_op.drop_column("paced_at")

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_message_sid"))

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("unmatched_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unmatched_receipts_carrier_carrier_message_id"))

    op.drop_table("unmatched_receipts")
    with op.batch_alter_table("simulated_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_simulated_receipts_due_at"))

    op.drop_table("simulated_receipts")
    op.drop_table("sender_pacing")
    with op.batch_alter_table("carrier_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carrier_refs_message_sid"))

    op.drop_table("carrier_refs")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_resource_sid"))
        batch_op.drop_index(batch_op.f("ix_alerts_account_sid_date_created"))

    op.drop_table("alerts")
