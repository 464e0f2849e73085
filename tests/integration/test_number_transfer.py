"""Moving a number between a main account and its subaccounts (IncomingPhoneNumbers update with
AccountSid, as on Twilio), through the use case, on both stores: it moves with its settings,
leaves its Messaging Service keeping the service's opt-outs, takes its opt-outs to the new
account, and the old owner's messages still waiting to go from it fail (21606). Only a main
account's credentials move numbers, and only within its family; a refused move changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.app.inbound import receive
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms
from pigeon.store import accounts as account_store
from pigeon.store import messages as message_store
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.store.optouts import list_opt_outs, record_opt_out
from pigeon.testing import FrozenClock
from tests.integration.lock_waits import while_held

NUMBER = "+14155550161"
STOPPED, QUIT, FREE = "+14155557161", "+14155557162", "+14155557163"
PATH = "/2010-04-01/Accounts/AC/IncomingPhoneNumbers/PN.json"
APP = "https://app.example.com/sms"


class Family:
    def __init__(self, db: Database, clock: FrozenClock) -> None:
        self.db, self.clock = db, clock
        now = clock.now()
        with db.write() as conn:
            self.main = str(account_use.create_account(conn, friendly_name="main", now=now)["sid"])
            self.sub = str(account_use.create_subaccount(conn, self.main, friendly_name="a", now=now)["sid"])
            self.sibling = str(account_use.create_subaccount(conn, self.main, friendly_name="b", now=now)["sid"])
            self.stranger = str(account_use.create_account(conn, friendly_name="other", now=now)["sid"])
            self.number = number_use.provision(
                conn, account_sid=self.main, phone_number=NUMBER, now=now, settings={"sms_url": APP}
            )

    @property
    def sid(self) -> str:
        return str(self.number["sid"])

    def move(self, owner: str, to: str, *, acting: str | None = None, **extra: str) -> dict[str, Any]:
        self.clock.advance(1)
        with self.db.write() as conn:
            return number_use.update(
                conn, owner, self.sid, PATH, {"AccountSid": to, **extra}, self.clock.now(), acting_sid=acting or owner
            )

    def refused(self, owner: str, to: str, *, acting: str | None = None, **extra: str) -> tuple[int, int]:
        with pytest.raises(ApiError) as info:
            self.move(owner, to, acting=acting, **extra)
        return info.value.code, info.value.status

    def owner(self) -> str:
        with self.db.read() as conn:
            row = number_store.get_number(conn, self.sid)
        assert row is not None
        return str(row["account_sid"])

    def send(self, account: str, to: str = FREE) -> str:
        with self.db.write() as conn:
            new = prepare_message(conn, account, SendRequest(to=to, from_=NUMBER, body="hi"), self.clock.now())
            insert_messages(conn, [new])
        return str(new.message["sid"])

    def send_code(self, account: str, to: str = FREE) -> int | None:
        try:
            self.send(account, to)
        except ApiError as exc:
            return exc.code
        return None


@pytest.fixture
def family(db: Database, clock: FrozenClock) -> Family:
    return Family(db, clock)


def test_a_main_account_moves_its_number_to_a_subaccount(family: Family) -> None:
    f, now = family, family.clock.now()
    with f.db.write() as conn:
        service = str(service_use.create(conn, f.main, {"FriendlyName": "pool"}, now)["sid"])
        service_use.add_number(conn, f.main, service, f.sid, short_code=False, path=PATH, now=now)
        record_opt_out(
            conn,
            account_sid=f.main,
            sender=NUMBER,
            recipient=QUIT,
            scope="number",
            keyword="QUIT",
            inbound_message_sid=None,
            now=now,
        )
        receive(
            conn,
            InboundSms(carrier="simulator", sender=STOPPED, recipient=NUMBER, body="STOP"),
            now=now,
            base_url="https://pigeon.example.com",
        )
    waiting = f.send(f.main)

    moved = f.move(f.main, f.sub)

    assert (moved["account_sid"], moved["sid"], moved["sms_url"]) == (f.sub, f.sid, APP)
    assert moved["messaging_service_sid"] is None and f.owner() == f.sub
    # The old owner's queue from it failed; the new owner sends from it, the old one cannot.
    with f.db.read() as conn:
        msg = message_store.get_message(conn, waiting)
        events = message_store.list_events(conn, waiting)
    assert msg is not None and (msg["status"], msg["error_code"]) == ("failed", 21606)
    assert [e["kind"] for e in events][-1] == "number_transferred"
    assert f.send_code(f.main) == 21660  # its subaccount's number now
    assert f.send_code(f.sub) is None
    # Whoever said STOP to it, to the number or to its service, is still not texted from it.
    assert f.send_code(f.sub, STOPPED) == 21610
    assert f.send_code(f.sub, QUIT) == 21610
    with f.db.read() as conn:
        theirs = {
            (r["recipient"], r["sender"], r["scope"], r["keyword"]) for r in list_opt_outs(conn, account_sid=f.sub)
        }
    assert theirs == {(STOPPED, NUMBER, "number", "STOP"), (QUIT, NUMBER, "number", "QUIT")}
    # The doctor shows the subaccount the STOP's keyword and time, not the text of a message
    # that is its main account's.
    with f.db.read() as conn:
        report = diagnose.diagnose_blocked(conn, f.sub, STOPPED, NUMBER, now=f.clock.now())
    [finding] = report.findings
    [evidence] = [e for e in finding.evidence if e.get("source") == "opt_out"]
    assert (evidence["keyword"], evidence["scope"], evidence["inbound_body"]) == ("STOP", "number", None)
    assert evidence["inbound_message_sid"] is not None
    # START to the number, now the subaccount's, lifts it there.
    f.clock.advance(1)
    with f.db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=STOPPED, recipient=NUMBER, body="START"),
            now=f.clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert f.send_code(f.sub, STOPPED) is None


def test_the_new_holder_s_doctor_shows_no_texts_from_before_the_move(family: Family) -> None:
    """Texts the number could not take while the main account held it are the main account's:
    the subaccount it moves to is not shown them (a move keeps date_created, so the time it
    is held since is its own column)."""
    f = family
    with f.db.write() as conn:
        number_store.update_number(conn, f.sid, now=f.clock.now(), sms_capable=False)
        receive(
            conn,
            InboundSms(carrier="simulator", sender=STOPPED, recipient=NUMBER, body="for the main account"),
            now=f.clock.now(),
            base_url="https://pigeon.example.com",
        )

    def unroutable(account: str) -> list[str]:
        report = asyncio.run(diagnose.diagnose_number(f.db, account, NUMBER, now=f.clock.now()))
        found = [x for x in report.findings if x.cause == "unroutable_inbound"]
        return [e["from"] for x in found for e in x.evidence if e.get("source") == "unroutable_inbound"]

    assert unroutable(f.main) == [STOPPED]
    f.move(f.main, f.sub)
    assert unroutable(f.sub) == []
    f.clock.advance(1)
    with f.db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=FREE, recipient=NUMBER, body="for the subaccount"),
            now=f.clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert unroutable(f.sub) == [FREE]


def test_a_main_account_moves_numbers_among_its_subaccounts_and_back(family: Family) -> None:
    f = family
    f.move(f.main, f.sub)
    assert f.move(f.sub, f.sibling, acting=f.main)["account_sid"] == f.sibling
    assert f.move(f.sibling, f.main, acting=f.main)["account_sid"] == f.main
    assert f.owner() == f.main


def test_the_same_account_changes_nothing(family: Family) -> None:
    f = family
    waiting = f.send(f.main)
    row = f.move(f.main, f.main, FriendlyName="still mine")
    assert (row["account_sid"], row["friendly_name"]) == (f.main, "still mine")
    with f.db.read() as conn:
        msg = message_store.get_message(conn, waiting)
    assert msg is not None and msg["status"] == "queued"


def test_refused_moves_change_nothing(family: Family) -> None:
    f = family
    f.move(f.main, f.sub)
    with f.db.write() as conn:
        suspended = account_use.create_subaccount(conn, f.main, friendly_name="c", now=f.clock.now())
        account_store.update_account(conn, suspended["sid"], now=f.clock.now(), status="suspended")
    waiting = f.send(f.sub)
    refusals = {
        "subaccount to its parent": f.refused(f.sub, f.main),
        "subaccount to a sibling": f.refused(f.sub, f.sibling),
        "not an account sid": f.refused(f.sub, "PN123", acting=f.main),
        "empty": f.refused(f.sub, "", acting=f.main),
        "unknown account": f.refused(f.sub, "AC" + "0" * 32, acting=f.main),
        "another family": f.refused(f.sub, f.stranger, acting=f.main),
        "suspended account": f.refused(f.sub, str(suspended["sid"]), acting=f.main),
    }
    assert refusals == {
        "subaccount to its parent": (21474, 403),
        "subaccount to a sibling": (21474, 403),
        "not an account sid": (21470, 400),
        "empty": (21470, 400),
        "unknown account": (21471, 400),
        "another family": (21471, 400),
        "suspended account": (21472, 400),
    }
    # A refused move applies none of the request, not even its other settings.
    assert f.refused(f.sub, f.stranger, acting=f.main, SmsUrl="https://elsewhere.example.com") == (21471, 400)
    with f.db.read() as conn:
        row = number_store.get_number(conn, f.sid)
        msg = message_store.get_message(conn, waiting)
    assert row is not None and (row["account_sid"], row["sms_url"]) == (f.sub, APP)
    assert msg is not None and msg["status"] == "queued"


@pytest.mark.postgres
def test_two_moves_of_one_number_at_once_take_turns(pg: Database, clock: FrozenClock) -> None:
    """On PostgreSQL the second move waits for the first and then finds the number on its new
    account (404 on the old one), rather than moving it again from where it no longer is."""
    family = Family(pg, clock)

    def first(conn: Connection) -> None:
        number_use.update(
            conn, family.main, family.sid, PATH, {"AccountSid": family.sub}, clock.now(), acting_sid=family.main
        )

    with pytest.raises(ApiError) as second:
        while_held(pg, first, lambda: family.move(family.main, family.sibling, acting=family.main))
    assert second.value.code == 20404
    with pg.read() as conn:
        assert number_store.get_number(conn, family.sid)["account_sid"] == family.sub  # type: ignore[index]
