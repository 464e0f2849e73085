"""messages: an index on (account_sid, to, status, date_updated) for the doctor's recipient flow

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "My message to this number wasn't delivered" looks at the messages to a recipient that
    # changed in a window (one made days before, scheduled, failing today) and at those still
    # open from before it; both read this index, one range per status.
    op.create_index(
        op.f("ix_messages_account_sid_to_status_date_updated"),
        "messages",
        ["account_sid", "to", "status", "date_updated"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_account_sid_to_status_date_updated"), table_name="messages")
