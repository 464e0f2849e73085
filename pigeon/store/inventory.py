"""The inventory of numbers free to buy (available_numbers).

A number is in the inventory or on an account, never both: buying deletes its inventory row
in the same transaction that puts it on the account (the number keeps its location and address
requirements), and releasing a number puts it back as it was.
Searches also leave out any number an account holds, in case an operator provisioned one
straight onto an account while it was still in the inventory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import available_numbers, phone_numbers

Row = dict[str, Any]

COLUMNS = frozenset(c.name for c in available_numbers.columns)

_not_owned = ~sa.exists().where(phone_numbers.c.phone_number == available_numbers.c.phone_number)


@dataclass(frozen=True)
class InventoryQuery:
    """What a search asks for; None means "any"."""

    iso_country: str
    number_type: str
    prefix: str | None = None  # the E.164 number starts with this (area codes)
    digits_like: str | None = None  # SQL LIKE over the digits after "+" (Contains)
    sms: bool | None = None
    mms: bool | None = None
    voice: bool | None = None
    fax: bool | None = None
    exclude_address: Sequence[str] = ()
    region: str | None = None
    postal_code: str | None = None
    locality: str | None = None
    rate_center: str | None = None
    lata: str | None = None


def _where(q: InventoryQuery) -> list[sa.ColumnElement[bool]]:
    t = available_numbers.c
    conds: list[sa.ColumnElement[bool]] = [t.iso_country == q.iso_country, t.number_type == q.number_type, _not_owned]
    if q.prefix:
        conds.append(t.phone_number.like(q.prefix + "%"))
    if q.digits_like:
        conds.append(sa.func.substr(t.phone_number, 2).like(q.digits_like))
    for flag, column in (
        (q.sms, t.sms_capable),
        (q.mms, t.mms_capable),
        (q.voice, t.voice_capable),
        (q.fax, t.fax_capable),
    ):
        if flag is not None:
            conds.append(column.is_(flag))
    if q.exclude_address:
        conds.append(t.address_requirements.not_in(list(q.exclude_address)))
    for value, column in (
        (q.region, t.region),
        (q.postal_code, t.postal_code),
        (q.locality, t.locality),
        (q.rate_center, t.rate_center),
        (q.lata, t.lata),
    ):
        if value:
            conds.append(sa.func.lower(column) == value.lower())
    return conds


def search(conn: Connection, q: InventoryQuery, *, offset: int = 0, limit: int | None = None) -> list[Row]:
    """Free numbers that match, in number order."""
    stmt = sa.select(available_numbers).where(*_where(q)).order_by(available_numbers.c.phone_number)
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def get(conn: Connection, phone_number: str) -> Row | None:
    row = conn.execute(sa.select(available_numbers).where(available_numbers.c.phone_number == phone_number))
    found = row.mappings().first()
    return dict(found) if found else None


_PLACE = ("locality", "region", "postal_code", "rate_center", "lata", "latitude", "longitude")


def place_of(conn: Connection, phone_number: str) -> Row | None:
    """Where a number is (its locality, region, postal code, rate center, LATA and coordinates):
    from its inventory row while it is for sale, else from the account's number that kept them
    when it was bought. None when the store knows no such number."""
    for table in (available_numbers, phone_numbers):
        columns = [table.c[name] for name in _PLACE]
        found = conn.execute(sa.select(*columns).where(table.c.phone_number == phone_number)).mappings().first()
        if found is not None:
            return dict(found)
    return None


def take(conn: Connection, phone_number: str) -> Row | None:
    """Remove a number from the inventory for a buyer; None if it is not there (or was just
    taken by a concurrent buyer: the DELETE decides, so one number goes to one buyer)."""
    row = get(conn, phone_number)
    if row is None:
        return None
    deleted = conn.execute(available_numbers.delete().where(available_numbers.c.phone_number == phone_number))
    return row if deleted.rowcount == 1 else None


def put(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Insert or replace one inventory row. True when the number was new to the inventory."""
    unknown = set(row) - COLUMNS
    if unknown:
        raise ValueError(f"not inventory columns: {sorted(unknown)}")
    number = row["phone_number"]
    updated = conn.execute(
        available_numbers.update().where(available_numbers.c.phone_number == number).values(**row)
    ).rowcount
    if updated:
        return False
    conn.execute(available_numbers.insert().values(**row))
    return True


def owned(conn: Connection, numbers: Sequence[str]) -> set[str]:
    """Which of `numbers` an account holds."""
    if not numbers:
        return set()
    q = sa.select(phone_numbers.c.phone_number).where(phone_numbers.c.phone_number.in_(list(numbers)))
    return {str(n) for n in conn.execute(q).scalars()}


def remove(conn: Connection, phone_number: str) -> bool:
    return bool(
        conn.execute(available_numbers.delete().where(available_numbers.c.phone_number == phone_number)).rowcount
    )


def countries(conn: Connection) -> list[tuple[str, str]]:
    """(iso_country, number_type) pairs that have free numbers, sorted."""
    t = available_numbers.c
    q = sa.select(t.iso_country, t.number_type).where(_not_owned).distinct().order_by(t.iso_country, t.number_type)
    return [(str(c), str(k)) for c, k in conn.execute(q)]


def stocks_country(conn: Connection, iso_country: str) -> bool:
    """Whether the inventory has a free number in the country."""
    t = available_numbers.c
    q = sa.select(t.phone_number).where(t.iso_country == iso_country, _not_owned).limit(1)
    return conn.execute(q).first() is not None


def count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(available_numbers)).scalar_one())


def list_all(
    conn: Connection, *, iso_country: str | None = None, number_type: str | None = None, limit: int | None = None
) -> list[Row]:
    q = sa.select(available_numbers).order_by(available_numbers.c.iso_country, available_numbers.c.phone_number)
    if iso_country:
        q = q.where(available_numbers.c.iso_country == iso_country)
    if number_type:
        q = q.where(available_numbers.c.number_type == number_type)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]
