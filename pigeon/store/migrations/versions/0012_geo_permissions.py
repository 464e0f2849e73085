"""accounts: geo permissions (the countries an account may send to)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing account: it sends where it always could (or where its parent may).
    op.add_column("accounts", sa.Column("allowed_countries", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("allowed_countries")
