"""erasures, erased_messages: a record of each `pigeon erase`, without the number erased

erasures: one row per erasure run with --yes: when it started and finished, the account it
covered (null: every account), who ran it, how much went, and the number only as a keyed
fingerprint (pigeon/store/erasure_log.py). erased_messages: the messages it removed, each as
a keyed fingerprint of its SID and the account it was of. With them the doctor says that a
number or a message was erased rather than that it was never asked for. Erasures before this
release left no record. Downgrading drops both tables: the doctor of the older release no
longer knows what was erased.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("number_fingerprint", sa.String(64), nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_by", sa.String(255), nullable=True),
        sa.Column("messages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("alerts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("unroutable", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("kept_in_progress", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index(op.f("ix_erasures_number_fingerprint"), "erasures", ["number_fingerprint"])
    op.create_table(
        "erased_messages",
        sa.Column("sid_fingerprint", sa.String(64), nullable=False),
        sa.Column("erasure_id", _ID, nullable=False),
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.ForeignKeyConstraint(["erasure_id"], ["erasures.id"], name=op.f("fk_erased_messages_erasure_id_erasures")),
        sa.PrimaryKeyConstraint("sid_fingerprint", name=op.f("pk_erased_messages")),
    )
    op.create_index(op.f("ix_erased_messages_erasure_id_account_sid"), "erased_messages", ["erasure_id", "account_sid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_erased_messages_erasure_id_account_sid"), table_name="erased_messages")
    op.drop_table("erased_messages")
    op.drop_index(op.f("ix_erasures_number_fingerprint"), table_name="erasures")
    op.drop_table("erasures")
