"""Usage Triggers (table usage_triggers): an account's thresholds, and the guarded write that
marks one fired for a period (pigeon.domain.usage_triggers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import accounts, usage_triggers

Row = dict[str, Any]

t = usage_triggers.c

#: Filters of the list, by the API's names.
FILTERS = {"Recurring": t.recurring, "TriggerBy": t.trigger_by, "UsageCategory": t.usage_category}


def insert_trigger(conn: Connection, row: Row) -> None:
    conn.execute(usage_triggers.insert().values(**row))


def get_trigger(conn: Connection, account_sid: str, sid: str) -> Row | None:
    """The account's trigger `sid` (None for another account's)."""
    found = conn.execute(sa.select(usage_triggers).where(t.sid == sid, t.account_sid == account_sid)).mappings()
    row = found.first()
    return dict(row) if row else None


def list_triggers(conn: Connection, account_sid: str, *, filters: dict[str, str], offset: int, limit: int) -> list[Row]:
    """The account's triggers, oldest first, filtered by FILTERS' names."""
    q = sa.select(usage_triggers).where(t.account_sid == account_sid)
    for name, value in filters.items():
        q = q.where(FILTERS[name] == value)
    q = q.order_by(t.date_created, t.sid).offset(offset).limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def count_triggers(conn: Connection, account_sid: str) -> int:
    return int(conn.execute(sa.select(sa.func.count()).where(t.account_sid == account_sid)).scalar_one())


def update_trigger(conn: Connection, account_sid: str, sid: str, values: Row) -> bool:
    result = conn.execute(usage_triggers.update().where(t.sid == sid, t.account_sid == account_sid).values(**values))
    return bool(result.rowcount)


def delete_trigger(conn: Connection, account_sid: str, sid: str) -> bool:
    result = conn.execute(usage_triggers.delete().where(t.sid == sid, t.account_sid == account_sid))
    return bool(result.rowcount)


def triggers_of_active_accounts(conn: Connection) -> list[Row]:
    """Every trigger of an account that is active, under a main account that is active (a
    closed or suspended account's stay quiet, and so do its subaccounts')."""
    main = accounts.alias("main")
    q = (
        sa.select(usage_triggers)
        .join(accounts, accounts.c.sid == t.account_sid)
        .join(main, main.c.sid == accounts.c.owner_account_sid)
        .where(accounts.c.status == "active", main.c.status == "active")
        .order_by(t.sid)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def mark_fired(conn: Connection, sid: str, *, period: str, now: datetime) -> bool:
    """Mark the trigger fired for `period`, unless it already is, or is for a later period:
    False when another process fired it first (only the one that marks it calls its URL).
    Only forward: a process that found the trigger due just before midnight and marks it after
    another fired the new day must not undo that mark (the new day would fire twice). A
    trigger's periods are keys of one format (its Recurring never changes), which sort as
    the periods do."""
    result = conn.execute(
        usage_triggers.update()
        .where(t.sid == sid, sa.or_(t.fired_period.is_(None), t.fired_period < period))
        .values(fired_period=period, date_fired=now, date_updated=now)
    )
    return bool(result.rowcount)
