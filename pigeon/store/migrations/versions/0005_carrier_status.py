"""carrier status

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:51:02.685112
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "carrier_status",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("carrier", "holder", name=op.f("pk_carrier_status")),
    )


def downgrade() -> None:

    op.drop_table("carrier_status")
