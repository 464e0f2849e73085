"""Helpers for the acceptance tests: isolated tenants on a shared server, direct store access
for states the API cannot reach yet (delivery, opt-outs, services), and error assertions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from pigeon.app.inventory_csv import import_rows, parse_row
from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.status import MessageStatus
from pigeon.store import messages as message_store
from pigeon.store.engine import Database
from pigeon.store.tables import media, message_events, messages, messaging_services, opt_outs, phone_numbers
from tests.acceptance.conftest import Server

_issued: set[str] = set()


def fresh_number() -> str:
    """A US number no other test in this process has used (+1 628 NXX XXXX)."""
    while True:
        candidate = f"+1628{random.randint(200, 999)}{random.randint(0, 9999):04d}"
        if candidate not in _issued:
            _issued.add(candidate)
            return candidate


@dataclass
class Tenant:
    """A subaccount of the server's first account, with its own SMS-capable numbers."""

    server: Server
    sid: str
    auth_token: str
    numbers: list[str]

    def client(self) -> Client:
        return self.server.client(self.sid, self.auth_token)

    def base(self) -> str:
        return f"{self.server.base_url}/2010-04-01/Accounts/{self.sid}"

    def http(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """A raw request as this tenant; `path` is relative to /2010-04-01/Accounts/{sid}."""
        return httpx.request(method, self.base() + path, auth=(self.sid, self.auth_token), timeout=10, **kw)


def stock(server: Server, *wanted: str) -> list[str]:
    """Put numbers into the server's inventory, so that an account can buy them."""
    now = datetime.now(UTC)
    rows = [parse_row({"phone_number": n}, now)[0] for n in wanted]
    with store(server) as db, db.write() as conn:
        import_rows(conn, [r for r in rows if r is not None])
    return list(wanted)


def new_tenant(server: Server, numbers: int = 2) -> Tenant:
    """A fresh subaccount, made and given its numbers through the API (bought from the
    inventory), so tests that share a server never see each other's messages."""
    sub = server.client().api.accounts.create(friendly_name="acceptance tenant")
    client = server.client(sub.sid, sub.auth_token)
    wanted = stock(server, *(fresh_number() for _ in range(numbers)))
    owned = [client.incoming_phone_numbers.create(phone_number=n).phone_number for n in wanted]
    return Tenant(server=server, sid=sub.sid, auth_token=sub.auth_token, numbers=owned)


@contextmanager
def store(server: Server) -> Iterator[Database]:
    db = Database.from_url(server.database_url)
    try:
        yield db
    finally:
        db.dispose()


def move_to(db: Database, sid: str, *path: MessageStatus, at: datetime | None = None) -> None:
    """Walk a message through `path` with the store's guarded transitions, as delivery will."""
    with db.write() as conn:
        for status in path:
            message_store.transition(conn, sid, status, at=at or datetime.now(UTC))


def deliver(db: Database, sid: str) -> None:
    move_to(db, sid, MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED)


def set_date_sent(db: Database, sid: str, when: datetime) -> None:
    with db.write() as conn:
        conn.execute(messages.update().where(messages.c.sid == sid).values(date_sent=when))


def set_media_created(db: Database, media_sid: str, when: datetime) -> None:
    with db.write() as conn:
        conn.execute(media.update().where(media.c.sid == media_sid).values(date_created=when))


def add_service(db: Database, account_sid: str, *attach: str) -> str:
    """A Messaging Service row (the Services API comes later) with `attach` numbers in its pool."""
    sid = new_sid(Prefix.SERVICE)
    now = datetime.now(UTC)
    with db.write() as conn:
        conn.execute(
            messaging_services.insert().values(
                sid=sid, account_sid=account_sid, friendly_name="acceptance", date_created=now, date_updated=now
            )
        )
        for number in attach:
            conn.execute(
                phone_numbers.update().where(phone_numbers.c.phone_number == number).values(messaging_service_sid=sid)
            )
    return sid


def add_opt_out(db: Database, account_sid: str, sender: str, recipient: str) -> None:
    with db.write() as conn:
        conn.execute(
            opt_outs.insert().values(
                account_sid=account_sid,
                sender=sender,
                recipient=recipient,
                scope="number",
                keyword="STOP",
                date_created=datetime.now(UTC),
            )
        )


def row_counts(db: Database, account_sid: str) -> tuple[int, ...]:
    """(messages, media, timeline events) stored for an account."""
    with db.read() as conn:
        return tuple(
            int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(t).where(t.c.account_sid == account_sid)
                ).scalar_one()
            )
            for t in (messages, media, message_events)
        )


def message_row(db: Database, sid: str) -> dict[str, Any] | None:
    with db.read() as conn:
        return message_store.get_message(conn, sid)


def raises_twilio(fn: Callable[[], Any], code: int, status: int) -> TwilioRestException:
    """Run `fn`, which must fail the way the SDK reports a Twilio error: code and HTTP status."""
    with pytest.raises(TwilioRestException) as info:
        fn()
    err = info.value
    assert (err.code, err.status) == (code, status), f"expected {code}/{status}, got {err.code}/{err.status}: {err.msg}"
    return err


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
