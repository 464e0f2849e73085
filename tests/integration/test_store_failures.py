"""A refused statement's error names its SQL but never its values (they can be secrets)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pigeon.store.engine import Database
from pigeon.store.prepared import insert_many
from pigeon.store.tables import accounts
from pigeon.testing import FrozenClock

SECRET = "0123456789abcdef-not-for-logs"


def _account(sid: str) -> dict[str, object]:
    now = FrozenClock().now()
    return {
        "sid": sid,
        "owner_account_sid": sid,
        "friendly_name": "failures",
        "auth_token": SECRET,
        "status": "active",
        "type": "Full",
        "date_created": now,
        "date_updated": now,
    }


def test_a_refused_statement_names_its_sql_but_not_its_values(db: Database) -> None:
    sid = "AC" + "1" * 32
    with db.write() as conn:
        insert_many(conn, accounts, [_account(sid)])
    for insert in (
        lambda conn: conn.execute(accounts.insert().values(**_account(sid))),  # through SQLAlchemy
        lambda conn: insert_many(conn, accounts, [_account(sid)]),  # on the driver's cursor
    ):
        with pytest.raises(sa.exc.IntegrityError) as refused:
            with db.write() as conn:
                insert(conn)
        text = str(refused.value)
        assert "INSERT INTO accounts" in text
        assert SECRET not in text  # (PostgreSQL's own words name the duplicate key: the SID)
