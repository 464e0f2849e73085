"""phone_numbers.held_since (since when its account holds the number); accounts.console_sign_outs
(signing out of the console ends the account's sessions)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("phone_numbers", sa.Column("held_since", sa.DateTime(timezone=True), nullable=True))
    # A number moved to its account before this migration counts from its purchase: the best
    # the store knows (a move kept date_created).
    op.execute("UPDATE phone_numbers SET held_since = date_created")
    # A constant default: PostgreSQL adds the column without rewriting the table. Sessions
    # signed in before carry no count, which reads as 0: they last until the next sign-out.
    op.add_column("accounts", sa.Column("console_sign_outs", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("console_sign_outs")
    with op.batch_alter_table("phone_numbers") as batch_op:
        batch_op.drop_column("held_since")
