"""The usage ledger (table usage_daily): counts added in the transactions that price or receive
messages, sums read back by account, day range and category (pigeon.domain.usage)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from pigeon.store.tables import usage_daily

Row = dict[str, Any]
#: (account_sid, day "YYYY-MM-DD", category) -> (messages, segments, price_micros)
Totals = Mapping[tuple[str, str, str], tuple[int, int, int]]

#: Rows an account's counts of one day and category are spread over (see the table's comment).
SHARDS = 8

u = usage_daily.c


def add_usage(conn: Connection, totals: Totals) -> None:
    """Add to the ledger: each key's row of a shard picked at random is created or added to."""
    if not totals:
        return
    shard = random.randrange(SHARDS)
    rows = [
        {
            "account_sid": account_sid,
            "day": day,
            "category": category,
            "shard": shard,
            "messages": messages,
            "segments": segments,
            "price_micros": micros,
        }
        # In key order: two transactions adding to the same rows then lock them in the same
        # order, where batches listed as they came deadlocked on PostgreSQL.
        for (account_sid, day, category), (messages, segments, micros) in sorted(totals.items())
    ]
    conn.execute(_UPSERT[conn.dialect.name], rows)


def take_usage(conn: Connection, totals: Totals) -> None:
    """Take counts added before back out of the ledger (`totals` positive): each key's from a
    shard whose row holds at least as much, so that no row goes below zero; if none does alone
    (what was added is spread over shards), from one at random, as `add_usage` adds: the sums,
    all that is read, stay right either way."""
    for key, (messages, segments, micros) in sorted(totals.items()):
        account_sid, day, category = key
        covering = conn.execute(
            sa.select(u.shard)
            .where(
                u.account_sid == account_sid,
                u.day == day,
                u.category == category,
                u.messages >= messages,
                u.segments >= segments,
                u.price_micros >= micros,
            )
            .order_by(u.shard)
            .limit(1)
        ).scalar()
        shard = random.randrange(SHARDS) if covering is None else int(covering)
        conn.execute(
            _UPSERT[conn.dialect.name],
            [
                {
                    "account_sid": account_sid,
                    "day": day,
                    "category": category,
                    "shard": shard,
                    "messages": -messages,
                    "segments": -segments,
                    "price_micros": -micros,
                }
            ],
        )


def _upsert(insert: Any) -> Any:
    statement = insert(usage_daily)
    return statement.on_conflict_do_update(
        index_elements=[u.account_sid, u.day, u.category, u.shard],
        set_={
            "messages": u.messages + statement.excluded.messages,
            "segments": u.segments + statement.excluded.segments,
            "price_micros": u.price_micros + statement.excluded.price_micros,
        },
    )


# Built once: the dispatcher adds to the ledger with every batch it records, and building an
# upsert with its rows as VALUES compiled it anew each time (a tenth of the record's CPU).
_UPSERT = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def _sums(*keys: Any) -> sa.Select[Any]:
    """Sums of the counts, grouped and ordered by `keys` (columns of usage_daily)."""
    return (
        sa.select(
            *keys,
            sa.func.sum(u.messages).label("messages"),
            sa.func.sum(u.segments).label("segments"),
            sa.func.sum(u.price_micros).label("price_micros"),
        )
        .group_by(*keys)
        .order_by(*keys)
    )


def _rows(conn: Connection, q: sa.Select[Any]) -> list[Row]:
    return [
        {**r, "messages": int(r["messages"]), "segments": int(r["segments"]), "price_micros": int(r["price_micros"])}
        for r in conn.execute(q).mappings()
    ]


def usage_by_day(
    conn: Connection, account_sids: Sequence[str], *, first: str, last: str, categories: Sequence[str]
) -> list[Row]:
    """Sums by day and category over the accounts, for days `first`..`last` (YYYY-MM-DD)."""
    q = _sums(u.day, u.category).where(
        u.account_sid.in_(list(account_sids)), u.day.between(first, last), u.category.in_(list(categories))
    )
    return _rows(conn, q)


def first_day(conn: Connection, account_sids: Sequence[str]) -> str | None:
    """The first day with any usage of these accounts."""
    value = conn.execute(sa.select(sa.func.min(u.day)).where(u.account_sid.in_(list(account_sids)))).scalar()
    return None if value is None else str(value)


def totals_by_account(conn: Connection, *, first: str, last: str, account_sid: str | None = None) -> list[Row]:
    """Each account's sums by category over days `first`..`last` (one account's, if given),
    for the operator."""
    q = _sums(u.account_sid, u.category).where(u.day.between(first, last))
    return _rows(conn, q.where(u.account_sid == account_sid) if account_sid is not None else q)


def totals_by_category(
    conn: Connection, account_sids: Sequence[str], *, first: str | None, last: str
) -> dict[str, tuple[int, int, int]]:
    """(messages, segments, price_micros) by ledger category over the accounts, for days
    `first`..`last` (YYYY-MM-DD; None: from the first)."""
    q = _sums(u.category).where(u.account_sid.in_(list(account_sids)), u.day <= last)
    if first is not None:
        q = q.where(u.day >= first)
    return {r["category"]: (r["messages"], r["segments"], r["price_micros"]) for r in _rows(conn, q)}
