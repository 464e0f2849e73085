"""two-way messaging

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:40:33.577414
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "available_numbers",
        sa.Column("phone_number", sa.String(length=32), nullable=False),
        sa.Column("iso_country", sa.String(length=2), nullable=False),
        sa.Column("number_type", sa.String(length=16), server_default="local", nullable=False),
        sa.Column("friendly_name", sa.String(length=64), nullable=False),
        sa.Column("locality", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("postal_code", sa.String(length=16), nullable=True),
        sa.Column("rate_center", sa.String(length=64), nullable=True),
        sa.Column("lata", sa.String(length=8), nullable=True),
        sa.Column("latitude", sa.String(length=16), nullable=True),
        sa.Column("longitude", sa.String(length=16), nullable=True),
        sa.Column("sms_capable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("mms_capable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("voice_capable", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("fax_capable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("address_requirements", sa.String(length=8), server_default="none", nullable=False),
        sa.Column("date_added", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_number", name=op.f("pk_available_numbers")),
    )
    with op.batch_alter_table("available_numbers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_available_numbers_iso_country_number_type"), ["iso_country", "number_type"], unique=False
        )

    op.create_table(
        "unroutable_inbound",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("from_", sa.String(length=64), nullable=False),
        sa.Column("to", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unroutable_inbound")),
    )
    with op.batch_alter_table("unroutable_inbound", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unroutable_inbound_to"), ["to"], unique=False)

    op.create_table(
        "alpha_senders",
        sa.Column("sid", sa.String(length=34), nullable=False),
        sa.Column("account_sid", sa.String(length=34), nullable=False),
        sa.Column("messaging_service_sid", sa.String(length=34), nullable=False),
        sa.Column("alpha_sender", sa.String(length=11), nullable=False),
        sa.Column("date_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("date_updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_sid"], ["accounts.sid"], name=op.f("fk_alpha_senders_account_sid_accounts")),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_alpha_senders")),
        sa.UniqueConstraint(
            "messaging_service_sid", "alpha_sender", name=op.f("uq_alpha_senders_messaging_service_sid_alpha_sender")
        ),
    )
    with op.batch_alter_table("alpha_senders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alpha_senders_messaging_service_sid"), ["messaging_service_sid"], unique=False
        )

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allow_short_code_inbound", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("messaging_services", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opt_out_reply", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("opt_in_reply", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("help_reply", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("messaging_services", schema=None) as batch_op:
        batch_op.drop_column("help_reply")
        batch_op.drop_column("opt_in_reply")
        batch_op.drop_column("opt_out_reply")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("allow_short_code_inbound")

    with op.batch_alter_table("alpha_senders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alpha_senders_messaging_service_sid"))

    op.drop_table("alpha_senders")
    with op.batch_alter_table("unroutable_inbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unroutable_inbound_to"))

    op.drop_table("unroutable_inbound")
    with op.batch_alter_table("available_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_available_numbers_iso_country_number_type"))

    op.drop_table("available_numbers")
