"""api_keys.console_sign_outs (signing out of a console session made with an API key ends that
key's sessions, not the account's)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table. Key sessions
    # signed in before carry no count of their key, which reads as 0.
    op.add_column("api_keys", sa.Column("console_sign_outs", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("console_sign_outs")
