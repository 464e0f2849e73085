"""carrier binds: a carrier's allowed binds are leases shared by every process (DESIGN §8)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carrier_binds",
        sa.Column("carrier", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("carrier", "slot", name=op.f("pk_carrier_binds")),
    )
    # Nullable and without a default: adding it rewrites no rows, on SQLite or PostgreSQL.
    op.add_column("messages", sa.Column("offered_to", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("offered_to")
    op.drop_table("carrier_binds")
