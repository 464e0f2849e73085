"""request log: DELETE requests by the SID they addressed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Partial: only DELETE requests enter it, so the request log's inserts hardly notice it.
    op.create_index(
        op.f("ix_request_log_resource_sid"),
        "request_log",
        ["resource_sid"],
        unique=False,
        postgresql_where=sa.text("method = 'DELETE'"),
        sqlite_where=sa.text("method = 'DELETE'"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_request_log_resource_sid"), table_name="request_log")
