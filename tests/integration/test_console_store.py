"""The console's store reads on SQLite and PostgreSQL: overview aggregates and shared settings."""

from __future__ import annotations

from datetime import timedelta

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.status import MessageStatus
from pigeon.store import stats
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, insert_messages, list_messages, transition
from pigeon.store.settings import get_or_create, get_setting
from pigeon.testing import FrozenClock


def _account_with_messages(db: Database, clock: FrozenClock) -> tuple[str, list[str]]:
    with db.write() as conn:
        now = clock.now()
        account = account_use.create_account(conn, friendly_name="console", now=now)
        sender = number_use.provision(conn, account_sid=account["sid"], phone_number="+14155550199", now=now)
        sids = []
        for i, to in enumerate(["+14155557001", "+14155557002", "+14155557003"]):
            req = SendRequest(to=to, from_=sender["phone_number"], body=f"hello {i}")
            new = prepare_message(conn, account["sid"], req, now - timedelta(hours=i))
            insert_messages(conn, [new])
            sids.append(new.message["sid"])
        transition(conn, sids[0], MessageStatus.FAILED, at=now, error_code=30008, error_message="x")
    return account["sid"], sids


def test_status_counts_group_by_hour_and_status(db: Database, clock: FrozenClock) -> None:
    account_sid, _ = _account_with_messages(db, clock)
    now = clock.now()
    with db.read() as conn:
        rows = stats.status_counts(
            conn,
            account_sid,
            since=now - timedelta(hours=5),
            until=now + timedelta(seconds=1),
            statuses=["failed", "queued"],
        )
        days = stats.status_counts(
            conn,
            account_sid,
            since=now - timedelta(days=1),
            until=now + timedelta(seconds=1),
            statuses=["failed", "queued"],
            granularity="day",
        )
        other = stats.status_counts(
            conn, "AC" + "0" * 32, since=now - timedelta(days=1), until=now, statuses=["queued"]
        )
    hour = now.strftime("%Y-%m-%dT%H")
    earlier = [(now - timedelta(hours=h)).strftime("%Y-%m-%dT%H") for h in (1, 2)]
    assert sorted(rows) == sorted([(hour, "failed", 1), (earlier[0], "queued", 1), (earlier[1], "queued", 1)])
    assert sorted(days) == [(now.strftime("%Y-%m-%d"), "failed", 1), (now.strftime("%Y-%m-%d"), "queued", 2)]
    assert other == []


def test_queue_depth_counts_waiting_messages_per_sender(db: Database, clock: FrozenClock) -> None:
    account_sid, _ = _account_with_messages(db, clock)
    with db.read() as conn:
        depth = stats.queue_depth(conn, account_sid)
    assert len(depth) == 1
    row = depth[0]
    assert (row["sender"], row["messages"], row["segments"]) == ("+14155550199", 2, 2)
    assert row["oldest"] == clock.now() - timedelta(hours=2)


def test_created_before_bounds_the_log(db: Database, clock: FrozenClock) -> None:
    account_sid, sids = _account_with_messages(db, clock)
    f = MessageFilter(account_sid=account_sid, created_before=clock.now() - timedelta(minutes=30))
    with db.read() as conn:
        assert [r["sid"] for r in list_messages(conn, f, limit=10)] == [sids[1], sids[2]]


def test_a_setting_is_created_once_and_shared(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        assert get_setting(conn, "console.secret") is None
        first = get_or_create(conn, "console.secret", lambda: "one", now=clock.now())
    with db.write() as conn:
        second = get_or_create(conn, "console.secret", lambda: "two", now=clock.now())
    assert first == second == "one"
