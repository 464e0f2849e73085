"""Accounts closed before this release give their numbers back

Data only. Closing an account now releases its numbers in the same transaction
(`pigeon.app.account_status`); before, it changed the status alone, and the numbers of an
account closed then (or of a subaccount whose main account was closed) stayed on it for ever,
out of reach of its parent and of every buyer, and their texts reached no one. This releases
them as the release does (`pigeon.app.numbers.release_all`), for what matters to an account
that can never act again:

* the messages it still had waiting to go from each number (accepted, queued, scheduled; not
  a scheduled one whose Messaging Service's pool chose the number, which gets its sender at
  its SendAt) fail with 21606, each with a ``number_released`` timeline entry, as
  `pigeon.app.sender_exit` fails them. Nothing went to a carrier: no price, no usage;
* the number row goes; a long code or toll-free number goes back into the inventory as it was
  stocked (its place and address requirements), free to buy; a short code is not restocked
  (short codes are not for sale there), the operator provisions it again.

Left out, on purpose, as they change nothing for a closed account: alerts, status callbacks
and Event Streams events of those messages (a closed account's end unsent, its token signing
nothing), choosing another sender of a pool (every sender of its pools leaves with it; the
dispatcher fails its messages with 30002 anyway), and the copies of its services' opt-outs
that a number keeps on its account (the account never sends again).

Nothing comes back on a downgrade: the release before reads an account without numbers well.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-16 09:00:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from pigeon.domain import numbers
from pigeon.domain.inventory import NUMBER_TYPES, friendly_name

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

# The tables as this revision knows them, not as the release's metadata may later have them.
_accounts = sa.table("accounts", sa.column("sid"), sa.column("owner_account_sid"), sa.column("status"))
#: What the inventory keeps of a number, on the number's row and on the inventory's alike.
_STOCKED = (
    "phone_number",
    "iso_country",
    "number_type",
    "locality",
    "region",
    "postal_code",
    "rate_center",
    "lata",
    "latitude",
    "longitude",
    "address_requirements",
)
_CAPABLE = ("sms_capable", "mms_capable", "voice_capable", "fax_capable")


def _stocked() -> list[sa.ColumnClause[Any]]:
    return [*map(sa.column, _STOCKED), *(sa.column(c, sa.Boolean) for c in _CAPABLE)]


_numbers = sa.table("phone_numbers", sa.column("sid"), sa.column("account_sid"), *_stocked())
_inventory = sa.table(
    "available_numbers",
    *_stocked(),
    sa.column("friendly_name", sa.String),
    sa.column("date_added", sa.DateTime(timezone=True)),
)
_messages = sa.table(
    "messages",
    *map(sa.column, ("sid", "account_sid", "from_", "status", "messaging_service_sid", "error_code")),
    sa.column("sender_from_pool", sa.Boolean),
    *map(sa.column, ("error_message", "claimed_by", "claimed_until", "offered_to", "fail_code")),
    sa.column("date_updated", sa.DateTime(timezone=True)),
)
_events = sa.table(
    "message_events",
    *map(sa.column, ("message_sid", "account_sid", "kind", "status", "error_code")),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("detail", sa.JSON),
)
a, n, m = _accounts.c, _numbers.c, _messages.c
main = _accounts.alias("main")

#: The error of a message whose From is not a number of its account (pigeon.app.sender_exit).
NOT_THE_ACCOUNTS = 21606
WAITING = ("accepted", "queued", "scheduled")
REASON = "its account was closed before closing released numbers: released by the upgrade to revision 0032"


def _now(conn: sa.Connection) -> datetime:
    """Now in UTC as the store keeps it: naive text on SQLite, aware on PostgreSQL."""
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now


def _fail_waiting(conn: sa.Connection, number: sa.RowMapping, now: datetime) -> None:
    waiting = sa.select(m.sid).where(
        m.account_sid == number["account_sid"],
        m.from_ == number["phone_number"],
        m.status.in_(WAITING),
        ~sa.and_(m.status == "scheduled", m.sender_from_pool.is_(True), m.messaging_service_sid.is_not(None)),
    )
    sids = list(conn.execute(waiting).scalars())
    if not sids:
        return
    conn.execute(
        _messages.update()
        .where(m.sid.in_(sids), m.status.in_(WAITING))
        .values(
            status="failed",
            error_code=NOT_THE_ACCOUNTS,
            error_message=None,
            date_updated=now,
            claimed_by=None,
            claimed_until=None,
            offered_to=None,
            fail_code=None,
        )
    )
    detail = {"sender": number["phone_number"], "reason": REASON}
    conn.execute(
        _events.insert(),
        [
            {
                "message_sid": sid,
                "account_sid": number["account_sid"],
                "at": now,
                "kind": "number_released",
                "status": "failed",
                "error_code": NOT_THE_ACCOUNTS,
                "detail": detail,
            }
            for sid in sids
        ],
    )


def _restock(conn: sa.Connection, number: sa.RowMapping, now: datetime) -> None:
    """As `pigeon.app.numbers._restock`: back into the inventory as it was stocked."""
    country = number["iso_country"] or numbers.region_of(number["phone_number"])
    if number["number_type"] == "short_code" or country is None:
        return
    row: dict[str, Any] = {column: number[column] for column in (*_STOCKED, *_CAPABLE)}
    row |= {
        "iso_country": country,
        "number_type": number["number_type"] if number["number_type"] in NUMBER_TYPES else "local",
        "friendly_name": friendly_name(number["phone_number"]),
        "address_requirements": number["address_requirements"] or "none",
        "date_added": now,
    }
    inventory = _inventory.c
    if not conn.execute(
        _inventory.update().where(inventory.phone_number == row["phone_number"]).values(**row)
    ).rowcount:
        conn.execute(_inventory.insert().values(**row))


def upgrade() -> None:
    conn = op.get_bind()
    now = _now(conn)
    held = (
        sa.select(n.sid, n.account_sid, *(n[c] for c in (*_STOCKED, *_CAPABLE)))
        .join(_accounts, a.sid == n.account_sid)
        .join(main, main.c.sid == a.owner_account_sid)
        .where(sa.or_(a.status == "closed", main.c.status == "closed"))
        .order_by(n.sid)
    )
    for number in conn.execute(held).mappings().all():
        _fail_waiting(conn, number, now)
        conn.execute(_numbers.delete().where(n.sid == number["sid"]))
        _restock(conn, number, now)


def downgrade() -> None:
    pass  # the numbers stay released: the release before reads an account without numbers well
