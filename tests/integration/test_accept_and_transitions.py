"""Accepting messages through the group-commit writer, and guarded status changes, on both stores."""

from __future__ import annotations

import asyncio

import pytest

from pigeon.app.send import SendRequest, prepare_message
from pigeon.bootstrap import ensure_first_account
from pigeon.domain.errors import ApiError, InvalidTransition
from pigeon.domain.status import MessageStatus
from pigeon.store.accept import AcceptWriter
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, get_message, list_events, list_messages, transition
from pigeon.testing import FrozenClock


def test_group_commit_writes_every_message_once(db: Database, clock: FrozenClock) -> None:
    first = ensure_first_account(db, clock)
    assert first is not None
    account = first.account["sid"]
    sender = first.numbers[0]["phone_number"]
    writer = AcceptWriter(db.engine, max_batch=50, max_wait=0.002)
    writer.start()

    async def send_many() -> list[str]:
        news = []
        with db.read() as conn:
            for i in range(120):
                req = SendRequest(to="+14155552671", from_=sender, body=f"hello {i}")
                news.append(prepare_message(conn, account, req, clock.now()))
        await asyncio.gather(*(writer.write(n) for n in news))
        return [n.message["sid"] for n in news]

    try:
        sids = asyncio.run(send_many())
    finally:
        writer.stop()
    assert writer.rows == 120
    assert writer.batches < 120  # rows were grouped
    with db.read() as conn:
        rows = list_messages(conn, MessageFilter(account_sid=account), limit=500)
        assert sorted(r["sid"] for r in rows) == sorted(sids)
        assert all(r["status"] == "queued" for r in rows)
        events = list_events(conn, sids[0])
    assert [e["kind"] for e in events] == ["created"]


def test_a_bad_row_fails_only_its_own_request(db: Database, clock: FrozenClock) -> None:
    first = ensure_first_account(db, clock)
    assert first is not None
    account, sender = first.account["sid"], first.numbers[0]["phone_number"]
    writer = AcceptWriter(db.engine, max_batch=10, max_wait=0.01)
    writer.start()

    async def run() -> tuple[BaseException | None, BaseException | None]:
        with db.read() as conn:
            good = prepare_message(conn, account, SendRequest(to="+14155552671", from_=sender, body="ok"), clock.now())
            dup = prepare_message(conn, account, SendRequest(to="+14155552671", from_=sender, body="dup"), clock.now())
        dup.message["sid"] = good.message["sid"]  # primary key clash
        return await asyncio.gather(writer.write(good), writer.write(dup), return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        writer.stop()
    assert results[0] is None
    assert isinstance(results[1], Exception)


def test_guarded_transition_never_moves_backwards(db: Database, clock: FrozenClock) -> None:
    first = ensure_first_account(db, clock)
    assert first is not None
    account, sender = first.account["sid"], first.numbers[0]["phone_number"]
    with db.write() as conn:
        new = prepare_message(conn, account, SendRequest(to="+14155552671", from_=sender, body="x"), clock.now())
        from pigeon.store.messages import insert_messages

        insert_messages(conn, [new])
        sid = new.message["sid"]
        transition(conn, sid, MessageStatus.SENDING, at=clock.now())
        transition(conn, sid, MessageStatus.SENT, at=clock.now())
        transition(conn, sid, MessageStatus.DELIVERED, at=clock.now())
    with pytest.raises(InvalidTransition), db.write() as conn:
        transition(conn, sid, MessageStatus.SENT, at=clock.now())
    with db.read() as conn:
        assert get_message(conn, sid)["status"] == "delivered"  # type: ignore[index]
        kinds = [(e["kind"], e["status"]) for e in list_events(conn, sid)]
    assert kinds == [("created", "queued"), ("status", "sending"), ("status", "sent"), ("status", "delivered")]


def test_rejected_request_writes_nothing(db: Database, clock: FrozenClock) -> None:
    first = ensure_first_account(db, clock)
    assert first is not None
    account = first.account["sid"]
    with db.read() as conn, pytest.raises(ApiError) as err:
        prepare_message(conn, account, SendRequest(to="+14155552671", from_="+14155550000", body="x"), clock.now())
    assert err.value.code == 21606
    with db.read() as conn:
        assert list_messages(conn, MessageFilter(account_sid=account), limit=5) == []
