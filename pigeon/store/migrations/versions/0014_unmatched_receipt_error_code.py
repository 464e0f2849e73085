"""unmatched_receipts: error_code, the code a carrier's receipt_errors gave a parked receipt

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for receipts parked before: Pigeon's default table decides their code, as it did.
    op.add_column("unmatched_receipts", sa.Column("error_code", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("unmatched_receipts") as batch:
        batch.drop_column("error_code")
