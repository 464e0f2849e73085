"""unmatched_receipts.whole_message: a parked receipt from a carrier that reports on whole messages

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 10:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "unmatched_receipts",
        sa.Column("whole_message", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("unmatched_receipts") as batch_op:
        batch_op.drop_column("whole_message")
