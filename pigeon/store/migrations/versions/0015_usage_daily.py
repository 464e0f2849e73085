"""usage_daily: the usage ledger, filled from the messages already priced or received

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("account_sid", sa.String(34), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("segments", sa.BigInteger(), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_sid", "day", "category", "shard"),
    )
    # What the store already holds counts too: outbound messages a carrier took (priced when
    # sent), inbound messages received. Usage of messages removed before this release is not
    # known; an MMS whose media went as links counts as an MMS here (not as the SMS it was).
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "to_char(date_sent AT TIME ZONE 'UTC', 'YYYY-MM-DD')" if postgres else "substr(date_sent, 1, 10)"
    micros = (
        "round(abs(coalesce(price, '0')::numeric) * 1000000)::bigint"
        if postgres
        else "CAST(round(abs(CAST(coalesce(price, '0') AS REAL)) * 1000000) AS INTEGER)"
    )
    media = "CASE WHEN num_media > 0 THEN 'mms' ELSE 'sms' END"
    way = "CASE WHEN direction = 'inbound' THEN 'inbound' ELSE 'outbound' END"
    category = f"{media} || '-' || {way}"
    op.execute(
        f"""
        INSERT INTO usage_daily (account_sid, day, category, shard, messages, segments, price_micros)
        SELECT account_sid, {day}, {category}, 0, count(*), sum(num_segments), sum({micros})
        FROM messages
        WHERE date_sent IS NOT NULL AND (direction = 'inbound' OR price IS NOT NULL)
        GROUP BY account_sid, {day}, {category}
        """
    )


def downgrade() -> None:
    op.drop_table("usage_daily")
