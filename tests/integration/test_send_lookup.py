"""A send's one lookup of its number, opt-out and earlier duplicate (store.send_lookup), and
the send path that uses it, on both stores: the same answers the three separate lookups gave."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import send_guard
from pigeon.app import services as service_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.app.send_request import content_hash
from pigeon.domain.errors import ApiError
from pigeon.domain.idempotency import DUPLICATE_WARNING
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.store.optouts import record_opt_out
from pigeon.store.send_lookup import SenderLookup, lookup_sender
from pigeon.store.settings import content_key
from pigeon.testing import FrozenClock

TO = "+14155557060"
LONE, POOLED = "+14155550161", "+14155550162"


def _tenant(db: Database, clock: FrozenClock) -> tuple[str, str, str]:
    """(an account, a second account, the Messaging Service that holds POOLED)."""
    now = clock.now()
    with db.write() as conn:
        mine = account_use.create_account(conn, friendly_name="lookup", now=now)["sid"]
        theirs = account_use.create_account(conn, friendly_name="other", now=now)["sid"]
        number_use.provision(conn, account_sid=mine, phone_number=LONE, now=now)
        pooled = number_use.provision(conn, account_sid=mine, phone_number=POOLED, now=now)
        service = service_use.create(conn, mine, {"FriendlyName": "pool"}, now)["sid"]
        service_use.add_number(
            conn, mine, service, pooled["sid"], short_code=False, path=f"/v1/Services/{service}", now=now
        )
    return mine, theirs, service


def _opt_out(db: Database, clock: FrozenClock, account: str, sender: str, scope: str = "number") -> None:
    with db.write() as conn:
        record_opt_out(
            conn,
            account_sid=account,
            sender=sender,
            recipient=TO,
            scope=scope,
            keyword="STOP",
            inbound_message_sid=None,
            now=clock.now(),
        )


def _look(
    db: Database,
    clock: FrozenClock,
    account: str,
    sender: str,
    *,
    service_sid: str | None = None,
    content_hash: str | None = None,
    since: datetime | None = None,
) -> SenderLookup:
    with db.read() as conn:
        return lookup_sender(
            conn,
            account_sid=account,
            sender=sender,
            recipient=TO,
            service_sid=service_sid,
            content_hash=content_hash,
            since=since or clock.now(),
        )


def test_the_number_and_its_opt_outs(db: Database, clock: FrozenClock) -> None:
    mine, theirs, service = _tenant(db, clock)
    found = _look(db, clock, mine, LONE)
    assert found.number is not None and found.number["phone_number"] == LONE
    assert (found.opted_out, found.duplicate) == (False, None)
    missing = _look(db, clock, mine, "+14155550169")
    assert (missing.number, missing.opted_out) == (None, False)

    _opt_out(db, clock, theirs, LONE)  # another account's opt-out blocks nothing here
    assert _look(db, clock, mine, LONE).opted_out is False
    _opt_out(db, clock, mine, LONE)
    assert _look(db, clock, mine, LONE).opted_out is True

    # A service-wide opt-out blocks the service's numbers, and a number named with the service.
    assert _look(db, clock, mine, POOLED).opted_out is False
    _opt_out(db, clock, mine, service, scope="service")
    assert _look(db, clock, mine, POOLED).opted_out is True
    assert _look(db, clock, mine, "+14155550169", service_sid=service).opted_out is False
    with db.write() as conn:
        number_use.provision(conn, account_sid=mine, phone_number="+14155550163", now=clock.now())
    assert _look(db, clock, mine, "+14155550163").opted_out is False
    assert _look(db, clock, mine, "+14155550163", service_sid=service).opted_out is True
    # Naming another service does not slip a pooled number past its own service's opt-out.
    with db.write() as conn:
        other = service_use.create(conn, mine, {"FriendlyName": "another"}, clock.now())["sid"]
    assert _look(db, clock, mine, POOLED, service_sid=other).opted_out is True


def test_the_newest_message_with_the_same_content(db: Database, clock: FrozenClock) -> None:
    mine, _, _ = _tenant(db, clock)
    start = clock.now()
    sids = []
    for _ in range(2):
        with db.write() as conn:
            new = prepare_message(conn, mine, SendRequest(to=TO, from_=LONE, body="code 1"), clock.now())
            insert_messages(conn, [new])
        sids.append(new.message["sid"])
        clock.advance(2)
    with db.read() as conn:
        key = content_key(conn)
    same = content_hash(LONE, TO, "code 1", key=key)
    found = _look(db, clock, mine, LONE, content_hash=same, since=start)
    assert found.duplicate is not None and found.duplicate["sid"] == sids[1]
    assert found.duplicate["date_created"] == start + timedelta(seconds=2)
    assert _look(db, clock, mine, LONE, content_hash=same, since=clock.now()).duplicate is None
    other = content_hash(LONE, TO, "code 2", key=key)
    assert _look(db, clock, mine, LONE, content_hash=other, since=start).duplicate is None
    assert _look(db, clock, mine, LONE, since=start).duplicate is None  # not asked


def test_the_send_path_warns_of_a_duplicate_from_its_own_lookup(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, _, service = _tenant(db, clock)
    window = timedelta(seconds=10)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the guard looked again")

    monkeypatch.setattr(send_guard, "find_recent_duplicate", refuse)

    def send(req: SendRequest) -> list[dict[str, object]]:
        now = clock.now()
        with db.write() as conn:
            new = prepare_message(conn, mine, req, now, duplicates_since=now - window)
            send_guard.guard(conn, new, key=None, request_hash=None, now=now, path="/p", window=window)
            insert_messages(conn, [new])
        return new.alerts

    for req in (
        SendRequest(to=TO, from_=LONE, body="hi"),  # a number: the combined lookup
        SendRequest(to=TO, messaging_service_sid=service, body="hi"),  # the pool: looked up apart
    ):
        assert send(req) == []
        clock.advance(1)
        [alert] = send(req)
        assert alert["error_code"] == DUPLICATE_WARNING

    _opt_out(db, clock, mine, service, scope="service")
    with pytest.raises(ApiError) as refused:
        send(SendRequest(to=TO, from_=POOLED, body="after STOP"))
    assert refused.value.code == 21610
