"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 13:17:56.966379
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "accounts",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("owner_account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=64), nullable=False),
        sa.Column("auth_token", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("type", sa.String(length=8), server_default="Full", nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_owner_account_sid"), ["owner_account_sid"], unique=False)

    op.create_table(
        "media",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_media")),
    )
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_message_sid"), ["message_sid"], unique=False)

    op.create_table(
        "message_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_events")),
    )
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_events_message_sid_id"), ["message_sid", "id"], unique=False)

    op.create_table(
        "opt_outs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("keyword", sa.String(length=32), nullable=False),
        sa.Column("inbound_message_sid", sa.String(length=34), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_outs")),
        sa.UniqueConstraint(
            "account_sid", "sender", "recipient", name=op.f("uq_opt_outs_account_sid_sender_recipient")
        ),
    )
    op.create_table(
        "api_keys",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=64), server_default="", nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], name=op.f("fk_api_keys_account_sid_accounts")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_api_keys")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_account_sid"), ["account_sid"], unique=False)

    op.create_table(
        "messages",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("messaging_service_sid", sa.String(length=34), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("from_", sa.String(length=64), nullable=True),
        sa.Column("to", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("encoding", sa.String(length=8), server_default="GSM-7", nullable=False),
        sa.Column("num_segments", sa.Integer(), server_default="1", nullable=False),
        sa.Column("num_media", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("price", sa.String(length=16), nullable=True),
        sa.Column("price_unit", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("validity_period", sa.Integer(), nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("smart_encoded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_sent", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], name=op.f("fk_messages_account_sid_accounts")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_account_sid_date_created_sid"), ["account_sid", "date_created", "sid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messages_account_sid_date_sent"), ["account_sid", "date_sent"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messages_account_sid_from__date_created"),
            ["account_sid", "from_", "date_created"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_messages_account_sid_to_date_created"), ["account_sid", "to", "date_created"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_messages_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "messaging_services",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("friendly_name", sa.String(length=64), nullable=False),
        sa.Column("inbound_request_url", sa.Text(), nullable=True),
        sa.Column("inbound_method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("fallback_url", sa.Text(), nullable=True),
        sa.Column("fallback_method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("sticky_sender", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("mms_converter", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("smart_encoding", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("scan_message_content", sa.String(length=8), server_default="inherit", nullable=False),
        sa.Column("fallback_to_long_code", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("area_code_geomatch", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("synchronous_validation", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("validity_period", sa.Integer(), server_default="36000", nullable=False),
        sa.Column("usecase", sa.String(length=16), server_default="undeclared", nullable=False),
        sa.Column("us_app_to_person_registered", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("use_inbound_webhook_on_number", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_sid"], ["accounts.sid"], name=op.f("fk_messaging_services_account_sid_accounts")
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_messaging_services")),
    )
    with op.batch_alter_table("messaging_services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messaging_services_account_sid"), ["account_sid"], unique=False)

    op.create_table(
        "phone_numbers",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("friendly_name", sa.String(length=64), nullable=False),
        sa.Column("number_type", sa.String(length=16), server_default="local", nullable=False),
        sa.Column("iso_country", sa.String(length=2), nullable=True),
        sa.Column("sms_capable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("mms_capable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("voice_capable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("fax_capable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sms_url", sa.Text(), nullable=True),
        sa.Column("sms_method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("sms_fallback_url", sa.Text(), nullable=True),
        sa.Column("sms_fallback_method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("status_callback", sa.Text(), nullable=True),
        sa.Column("status_callback_method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("voice_url", sa.Text(), nullable=True),
        sa.Column("voice_method", sa.String(length=8), server_default="POST", nullable=False),
        sa.Column("messaging_service_sid", sa.String(length=34), nullable=True),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], name=op.f("fk_phone_numbers_account_sid_accounts")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_phone_numbers")),
        sa.UniqueConstraint("phone_number", name=op.f("uq_phone_numbers_phone_number")),
    )
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_phone_numbers_account_sid_phone_number"), ["account_sid", "phone_number"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_phone_numbers_messaging_service_sid"), ["messaging_service_sid"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_numbers_messaging_service_sid"))
        batch_op.drop_index(batch_op.f("ix_phone_numbers_account_sid_phone_number"))

    op.drop_table("phone_numbers")
    with op.batch_alter_table("messaging_services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_services_account_sid"))

    op.drop_table("messaging_services")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_messages_account_sid_to_date_created"))
        batch_op.drop_index(batch_op.f("ix_messages_account_sid_from__date_created"))
        batch_op.drop_index(batch_op.f("ix_messages_account_sid_date_sent"))
        batch_op.drop_index(batch_op.f("ix_messages_account_sid_date_created_sid"))

    op.drop_table("messages")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_account_sid"))

    op.drop_table("api_keys")
    op.drop_table("opt_outs")
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_events_message_sid_id"))

    op.drop_table("message_events")
    with op.batch_alter_table("media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_message_sid"))

    op.drop_table("media")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_owner_account_sid"))

    op.drop_table("accounts")
