"""webhook outbox: deliveries queued behind an unfinished one are "waiting", not "pending"

The claim used to skip a pending delivery while an earlier pending one of the same message
and URL existed (a NOT EXISTS per candidate, O(pending rows) on PostgreSQL). Now only the first
unfinished delivery of a message and URL is pending and the ones behind it are waiting, so
upgrading in place marks those waiting; the first of each stays pending and goes out first, as
before. Downgrading makes them pending again, which the old claim keeps in order by itself.

The status column is a plain VARCHAR(12) without a CHECK constraint: no schema change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.BigInteger),
    sa.column("message_sid", sa.String),
    sa.column("url", sa.Text),
    sa.column("sequence", sa.Integer),
    sa.column("status", sa.String),
)


def upgrade() -> None:
    d = _deliveries.c
    earlier = _deliveries.alias("earlier")
    op.execute(
        _deliveries.update()
        .where(
            d.status == "pending",
            d.message_sid.is_not(None),
            sa.exists().where(
                earlier.c.message_sid == d.message_sid,
                earlier.c.url == d.url,
                # "waiting" too: whether or not the database sees this statement's own changes
                # while it runs, a row behind an earlier unfinished one is marked.
                earlier.c.status.in_(["pending", "waiting"]),
                earlier.c.sequence < d.sequence,
            ),
        )
        .values(status="waiting")
    )


def downgrade() -> None:
    d = _deliveries.c
    op.execute(_deliveries.update().where(d.status == "waiting").values(status="pending"))
