"""A carrier id given again: the newest message takes it, and the message it was taken from is
reported while it still waited for its receipt (`add_carrier_refs`). On both stores."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from pigeon.store import dispatch as store
from pigeon.store.engine import Database
from pigeon.store.tables import carrier_refs

AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _refs(message_sid: str, *ids: str, account: str = "AC1", carrier: str = "acme") -> list[dict[str, object]]:
    return store.carrier_ref_rows(carrier=carrier, ids=ids, message_sid=message_sid, account_sid=account, at=AT)


def test_an_id_taken_from_a_message_still_waiting_is_reported(db: Database) -> None:
    with db.write() as conn:
        assert store.add_carrier_refs(conn, [*_refs("SM1", "7", "8"), *_refs("SM2", "9", carrier="other")]) == []
        conn.execute(  # SM1's part 2 has had its receipt: taking its id loses nothing
            carrier_refs.update()
            .where(carrier_refs.c.carrier_message_id == "8")
            .values(receipt_at=AT, receipt_stat="DELIVRD")
        )
        taken = store.add_carrier_refs(
            conn,
            [
                *_refs("SM3", "7", "8"),
                *_refs("SM4", "9", account="AC2"),
                *_refs("SM4", "9", account="AC2", carrier="other"),
            ],
        )
        holders = dict(conn.execute(sa.select(carrier_refs.c.carrier_message_id, carrier_refs.c.message_sid)).all())
    assert sorted(taken, key=lambda t: str(t["message_sid"])) == [
        {
            "carrier": "acme",
            "carrier_message_id": "7",
            "message_sid": "SM1",
            "account_sid": "AC1",
            "part_index": 0,
            "taken_by": "SM3",
            "taken_by_account": "AC1",
        },
        {
            "carrier": "other",
            "carrier_message_id": "9",
            "message_sid": "SM2",
            "account_sid": "AC1",
            "part_index": 0,
            "taken_by": "SM4",
            "taken_by_account": "AC2",
        },
    ]
    assert holders == {"7": "SM3", "8": "SM3", "9": "SM4"}


def test_the_same_id_twice_in_one_batch_reports_the_first_message(db: Database) -> None:
    with db.write() as conn:
        taken = store.add_carrier_refs(conn, [*_refs("SM1", "7"), *_refs("SM2", "7"), *_refs("SM2", "")])
    assert [(t["message_sid"], t["taken_by"]) for t in taken] == [("SM1", "SM2")]


def test_a_message_given_its_own_id_again_is_not_reported(db: Database) -> None:
    with db.write() as conn:
        store.add_carrier_refs(conn, _refs("SM1", "7"))
        assert store.add_carrier_refs(conn, _refs("SM1", "7")) == []
