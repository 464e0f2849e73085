"""messages: an index of outbound messages on (account_sid, to, status, date_updated), for the doctor

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "My message to this number wasn't delivered" looks at the messages to a recipient that
    # changed in a window (one made days before, scheduled, failing today) and at those still
    # open from before it; both read this index, one range per status. Partial, on the
    # condition those reads state: the send's duplicate lookup (account_sid, to, date_created)
    # does not state it, so the planner can never take this index for it.
    op.create_index(
        op.f("ix_messages_account_sid_to_status_date_updated"),
        "messages",
        ["account_sid", "to", "status", "date_updated"],
        unique=False,
        postgresql_where=sa.text("direction <> 'inbound'"),
        sqlite_where=sa.text("direction <> 'inbound'"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_account_sid_to_status_date_updated"), table_name="messages")
