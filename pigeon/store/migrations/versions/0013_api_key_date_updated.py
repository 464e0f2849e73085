"""api_keys: date_updated, for a key renamed through the API

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 03:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing key: never changed since it was made (its date_created).
    op.add_column("api_keys", sa.Column("date_updated", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("date_updated")
