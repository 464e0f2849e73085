"""webhook_attempts.location: where a redirect that the incoming-message webhook followed led

An attempt answered with a redirect (301, 302, 303, 307, 308) is followed to its Location;
the attempt keeps that Location (masked as its URL is), so the console and the doctor show
each hop and where it went. Attempts from before have none.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-13 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_attempts", sa.Column("location", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts") as batch_op:
        batch_op.drop_column("location")
