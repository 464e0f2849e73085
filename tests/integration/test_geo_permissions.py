"""Geo permissions on both stores: a send outside the account's countries is refused with
21408 before anything is written; a subaccount follows its parent's list unless it has its
own; a main account without a list sends anywhere, as before."""

from __future__ import annotations

from datetime import datetime

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain import geo
from pigeon.domain.errors import ApiError
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock

US, GB, FREEPHONE = "+14155557030", "+447700900123", "+80012345678"


def _sender(db: Database, account_sid: str, number: str, now: datetime) -> str:
    with db.write() as conn:
        return str(number_use.provision(conn, account_sid=account_sid, phone_number=number, now=now)["phone_number"])


def _send(db: Database, account_sid: str, sender: str, to: str, now: datetime) -> None:
    with db.read() as conn:
        prepare_message(conn, account_sid, SendRequest(to=to, from_=sender, body="code 1234"), now)


def _refused(db: Database, account_sid: str, sender: str, to: str, now: datetime) -> str:
    with pytest.raises(ApiError) as refused:
        _send(db, account_sid, sender, to, now)
    assert (refused.value.code, refused.value.status) == (21408, 400)
    return refused.value.message


def test_a_list_refuses_other_countries_and_numbers_of_none(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        main = account_use.create_account(conn, friendly_name="Main", now=now)
    sender = _sender(db, main["sid"], "+14155550194", now)
    for to in (US, GB, FREEPHONE):  # no list: anywhere, as before
        _send(db, main["sid"], sender, to, now)

    with db.write() as conn:
        account_use.set_allowed_countries(conn, main["sid"], geo.parse_countries("us,ca"), now=now)
    _send(db, main["sid"], sender, US, now)
    assert "+447700900123 is in GB" in _refused(db, main["sid"], sender, GB, now)
    assert "non-geographic" in _refused(db, main["sid"], sender, FREEPHONE, now)


def test_a_subaccount_follows_its_parent_unless_it_has_its_own(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        main = account_use.create_account(conn, friendly_name="Main", now=now)
        sub = account_use.create_subaccount(conn, main["sid"], friendly_name="Customer", now=now)
        account_use.set_allowed_countries(conn, main["sid"], "US", now=now)
    sender = _sender(db, sub["sid"], "+14155550195", now)
    _send(db, sub["sid"], sender, US, now)
    _refused(db, sub["sid"], sender, GB, now)

    with db.write() as conn:
        account_use.set_allowed_countries(conn, sub["sid"], geo.ANY, now=now)
    _send(db, sub["sid"], sender, GB, now)

    with db.write() as conn:
        account_use.set_allowed_countries(conn, sub["sid"], "GB", now=now)
        assert account_use.sendable_countries(conn, {**sub, "allowed_countries": "GB"}) == frozenset({"GB"})
    _send(db, sub["sid"], sender, GB, now)
    _refused(db, sub["sid"], sender, US, now)  # its own list replaces its parent's

    with db.write() as conn:
        account_use.set_allowed_countries(conn, sub["sid"], None, now=now)  # back to its parent's
        account_use.set_allowed_countries(conn, main["sid"], None, now=now)
    _send(db, sub["sid"], sender, GB, now)


def test_an_unknown_account_cannot_be_given_a_list(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn, pytest.raises(ApiError) as missing:
        account_use.set_allowed_countries(conn, "AC" + "0" * 32, "US", now=clock.now())
    assert missing.value.code == 20404
