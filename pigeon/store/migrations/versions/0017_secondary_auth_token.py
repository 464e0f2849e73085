"""accounts.secondary_auth_token: a second auth token, for changing credentials without downtime

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("secondary_auth_token", sa.String(64), nullable=True))
    op.add_column("accounts", sa.Column("secondary_auth_token_created", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("secondary_auth_token_created")
        batch_op.drop_column("secondary_auth_token")
