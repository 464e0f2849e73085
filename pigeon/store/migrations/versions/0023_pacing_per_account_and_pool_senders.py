"""sender_pacing per account for alphanumeric senders; messages.sender_from_pool

messages.sender_from_pool: the message was sent through a Messaging Service without a From,
so its pool chose the sender, and chooses again for a scheduled message at its SendAt. A
constant default (PostgreSQL adds the column without rewriting the table): messages stored
before keep the sender they have.

sender_pacing: an alphanumeric sender ID belongs to no account, and each account that sends
as "INFO" has a queue and a pace of its own (`pigeon.domain.pacing.queue_key`). Its row,
keyed by the sender alone until now and shared by every account, becomes one row per account
that has messages waiting in a slot already reserved (``paced_at``: they keep it), starting at
its latest such slot, so that a new reservation comes after the account's own: the first may
share that last slot, once. An account with no slot reserved starts afresh, and no longer
waits behind another account's backlog. A number's row (its key starts with "+" or a digit;
an alphanumeric sender ID always has a letter) stays as it is. Downgrading puts each
sender's latest slot back under the sender alone.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-09 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_pacing = sa.table("sender_pacing", sa.column("sender", sa.String), sa.column("next_send_at", sa.DateTime))
_messages = sa.table(
    "messages",
    sa.column("account_sid", sa.String),
    sa.column("from_", sa.String),
    sa.column("status", sa.String),
    sa.column("paced_at", sa.DateTime),
)
#: What stands in a sender's queue (a `sending` message's slot is spent: its paced_at is cleared).
_WAITING = ("accepted", "queued", "sending")


def _alphanumeric(sender: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """Has a letter (ASCII letters change case; digits, "+" and the account keys' ":" do not)."""
    return sa.and_(sa.func.lower(sender) != sa.func.upper(sender), ~sender.contains(":"))


def upgrade() -> None:
    op.add_column("messages", sa.Column("sender_from_pool", sa.Boolean(), nullable=False, server_default=sa.false()))
    p, m = _pacing.c, _messages.c
    key = m.account_sid + ":" + p.sender
    per_account = (
        sa.select(key.label("sender"), sa.func.max(m.paced_at))
        .select_from(_pacing.join(_messages, m.from_ == p.sender))
        .where(_alphanumeric(p.sender), m.status.in_(_WAITING), m.paced_at.is_not(None))
        .group_by(m.account_sid, p.sender)
    )
    op.execute(_pacing.insert().from_select(["sender", "next_send_at"], per_account))
    op.execute(_pacing.delete().where(_alphanumeric(p.sender)))


def downgrade() -> None:
    p = _pacing.c
    keyed = sa.and_(p.sender.like("AC%"), p.sender.contains(":"))
    bare = sa.func.substr(p.sender, 36)  # after "AC", 32 characters and ":"
    latest = sa.select(bare.label("sender"), sa.func.max(p.next_send_at)).where(keyed).group_by(bare)
    op.execute(_pacing.delete().where(p.sender.in_(sa.select(bare).where(keyed))))
    op.execute(_pacing.insert().from_select(["sender", "next_send_at"], latest))
    op.execute(_pacing.delete().where(keyed))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("sender_from_pool")
