"""Accounts that are suspended or closed, through the real HTTP application on both stores:
what closing does to the account's numbers, who may lift a suspension, and what may still be
read of the account's history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pigeon import bootstrap
from pigeon.app import account_status
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.config import load_settings
from pigeon.domain.errors import ApiError
from pigeon.store import accounts as account_store
from pigeon.store import inventory as inventory_store
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from pigeon.store.messages import get_message, insert_messages

V = "/2010-04-01"
SUB_NUMBER = "+14155550131"
MAIN_NUMBER = "+14155550132"
SHORT_CODE = "88731"
Row = dict[str, Any]
#: (credentials' account row, method, path, httpx keyword arguments)
Call = tuple[Row, str, str, dict[str, Any]]


def _now() -> datetime:
    return datetime.now(UTC)


def _family(db: Database) -> tuple[Row, Row, Row]:
    """A main account with two subaccounts; the first holds SUB_NUMBER."""
    with db.write() as conn:
        main = account_use.create_account(conn, friendly_name="Main", now=_now())
        sub = account_use.create_subaccount(conn, main["sid"], friendly_name="Sub", now=_now())
        other = account_use.create_subaccount(conn, main["sid"], friendly_name="Other", now=_now())
        number_use.provision(conn, account_sid=sub["sid"], phone_number=SUB_NUMBER, now=_now())
    return main, sub, other


def _queue(db: Database, account_sid: str, from_: str) -> str:
    """A message waiting to go from `from_`; its SID."""
    with db.write() as conn:
        message = prepare_message(conn, account_sid, SendRequest(to="+14155557040", from_=from_, body="hi"), _now())
        insert_messages(conn, [message])
    return str(message.message["sid"])


def _call(db: Database, database_url: str, calls: Sequence[Call | Callable[[], None]]) -> list[httpx.Response]:
    """Each call in turn against the in-process API (a callable is run between them)."""
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)

    async def run() -> list[httpx.Response]:
        answers = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for call in calls:
                    if callable(call):
                        call()
                        continue
                    who, method, path, kw = call
                    answers.append(await client.request(method, path, auth=(who["sid"], who["auth_token"]), **kw))
        return answers

    return asyncio.run(run())


def _code(answer: httpx.Response) -> tuple[int, int | None]:
    return answer.status_code, answer.json().get("code") if answer.status_code >= 400 else None


def _status(db: Database, sid: str) -> tuple[str, str | None]:
    with db.read() as conn:
        row = account_store.get_account(conn, sid)
    assert row is not None
    return row["status"], row["suspended_by"]


# -- closing releases the numbers ----------------------------------------------------------


def test_a_subaccount_closed_by_its_parent_gives_its_numbers_back(db: Database, database_url: str) -> None:
    """Before, the closed subaccount kept its number for ever: its parent could neither list,
    move nor release it (20005), and nobody could buy it (21422)."""
    main, sub, other = _family(db)
    waiting = _queue(db, sub["sid"], SUB_NUMBER)
    closed, listed, bought = _call(
        db,
        database_url,
        [
            (main, "POST", f"{V}/Accounts/{sub['sid']}.json", {"data": {"Status": "closed"}}),
            (main, "GET", f"{V}/Accounts/{sub['sid']}/IncomingPhoneNumbers.json", {}),
            (
                main,
                "POST",
                f"{V}/Accounts/{other['sid']}/IncomingPhoneNumbers.json",
                {"data": {"PhoneNumber": SUB_NUMBER}},
            ),
        ],
    )
    assert closed.json()["status"] == "closed"
    assert listed.status_code == 200 and listed.json()["incoming_phone_numbers"] == []
    assert bought.status_code == 201 and bought.json()["account_sid"] == other["sid"]
    with db.read() as conn:
        message = get_message(conn, waiting)
    assert message is not None and (message["status"], message["error_code"]) == ("failed", 21606)


def test_an_operator_closing_a_main_account_releases_its_and_its_subaccounts_numbers(db: Database) -> None:
    main, sub, other = _family(db)
    with db.write() as conn:
        number_use.provision(conn, account_sid=main["sid"], phone_number=MAIN_NUMBER, now=_now())
        short = number_use.provision(
            conn, account_sid=other["sid"], phone_number=SHORT_CODE, now=_now(), iso_country="US"
        )
    waiting = _queue(db, main["sid"], MAIN_NUMBER)
    with db.write() as conn:
        changed = account_status.set_status(conn, main["sid"], "closed", now=_now(), with_subaccounts=False)
    assert [r["sid"] for r in changed] == [main["sid"]]
    # Its subaccounts keep their own status, but are closed with it for good: their numbers go too.
    assert _status(db, sub["sid"]) == ("active", None)
    with db.read() as conn:
        assert number_store.list_numbers(conn) == []
        for number in (SUB_NUMBER, MAIN_NUMBER):
            assert inventory_store.get(conn, number) is not None, number
        assert inventory_store.get(conn, short["phone_number"]) is None  # short codes are not for sale
        message = get_message(conn, waiting)
    assert message is not None and (message["status"], message["error_code"]) == ("failed", 21606)


def test_an_operator_closing_a_subaccount_releases_only_its_numbers(db: Database) -> None:
    main, sub, _ = _family(db)
    with db.write() as conn:
        number_use.provision(conn, account_sid=main["sid"], phone_number=MAIN_NUMBER, now=_now())
        account_status.set_status(conn, sub["sid"], "closed", now=_now(), with_subaccounts=True)
    with db.read() as conn:
        assert [r["phone_number"] for r in number_store.list_numbers(conn)] == [MAIN_NUMBER]


# -- an operator's suspension --------------------------------------------------------------


def test_a_parent_cannot_lift_an_operators_suspension(db: Database, database_url: str) -> None:
    """Before, the parent's Status=active undid it, and the subaccount sent again."""
    main, sub, _ = _family(db)
    with db.write() as conn:
        account_status.set_status(conn, sub["sid"], "suspended", now=_now(), with_subaccounts=False)

    def lift() -> None:
        with db.write() as conn:
            account_status.set_status(conn, sub["sid"], "active", now=_now(), with_subaccounts=False)

    account = f"{V}/Accounts/{sub['sid']}.json"
    *refused, lifted, suspended, reactivated = _call(
        db,
        database_url,
        [
            *[(main, "POST", account, {"data": {"Status": s}}) for s in ("active", "suspended", "closed")],
            (main, "POST", account, {"data": {"Status": "active", "FriendlyName": "back"}}),
            lift,
            (main, "POST", account, {"data": {"Status": "active"}}),
            (main, "POST", account, {"data": {"Status": "suspended"}}),
            (main, "POST", account, {"data": {"Status": "active"}}),
        ],
    )
    assert [_code(r) for r in refused] == [(400, 21478)] * 4
    assert "operator" in refused[0].json()["message"]
    assert lifted.json()["status"] == "active"
    # A parent's own suspension is the parent's to lift.
    assert suspended.json()["status"] == "suspended" and _status(db, sub["sid"]) == ("active", None)
    assert reactivated.json()["status"] == "active" and reactivated.json()["friendly_name"] == "Sub"


def test_an_operators_suspension_of_the_subaccounts_outlasts_the_main_accounts(db: Database, database_url: str) -> None:
    main, sub, _ = _family(db)
    with db.write() as conn:
        account_status.set_status(conn, main["sid"], "suspended", now=_now(), with_subaccounts=True)
        account_status.set_status(conn, main["sid"], "active", now=_now(), with_subaccounts=False)
    [refused] = _call(
        db, database_url, [(main, "POST", f"{V}/Accounts/{sub['sid']}.json", {"data": {"Status": "active"}})]
    )
    assert _code(refused) == (400, 21478)
    assert _status(db, sub["sid"]) == ("suspended", "operator")
    with db.write() as conn:
        account_status.set_status(conn, main["sid"], "active", now=_now(), with_subaccounts=True)
    assert _status(db, sub["sid"]) == ("active", None)


# -- history stays readable ----------------------------------------------------------------

READS = (
    "Messages.json",
    "Messages/{sm}.json",
    "Usage/Records.json",
    "Messages/Export.json",
    "IncomingPhoneNumbers.json",
)


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_a_parent_reads_the_history_of_a_subaccount_that_is_not_active(
    db: Database, database_url: str, status: str
) -> None:
    """Before, every read answered 403 20005 "cannot send or change resources"."""
    main, sub, _ = _family(db)
    sent = _queue(db, sub["sid"], SUB_NUMBER)
    base = f"{V}/Accounts/{sub['sid']}"
    stop, *reads, send, rename = _call(
        db,
        database_url,
        [
            (main, "POST", f"{base}.json", {"data": {"Status": status}}),
            *[(main, "GET", f"{base}/{path.format(sm=sent)}", {}) for path in READS],
            (main, "POST", f"{base}/Messages.json", {"data": {"To": "+14155557041", "From": SUB_NUMBER, "Body": "x"}}),
            (main, "POST", f"{base}/Messages/{sent}.json", {"data": {"Body": ""}}),
        ],
    )
    assert stop.json()["status"] == status
    assert [r.status_code for r in reads] == [200] * len(READS)
    assert [m["sid"] for m in reads[0].json()["messages"]] == [sent]
    assert reads[1].json()["sid"] == sent
    assert [_code(send), _code(rename)] == [(403, 20005)] * 2


def test_a_suspended_accounts_own_credentials_read_but_change_nothing(db: Database, database_url: str) -> None:
    _, sub, _ = _family(db)
    sent = _queue(db, sub["sid"], SUB_NUMBER)
    base = f"{V}/Accounts/{sub['sid']}"
    with db.write() as conn:
        account_status.set_status(conn, sub["sid"], "suspended", now=_now(), with_subaccounts=False)
    listed, send, keys, alerts, listed_after = _call(
        db,
        database_url,
        [
            (sub, "GET", f"{base}/Messages.json", {}),
            (sub, "POST", f"{base}/Messages.json", {"data": {"To": "+14155557041", "From": SUB_NUMBER, "Body": "x"}}),
            (sub, "POST", f"{base}/Keys.json", {"data": {"FriendlyName": "k"}}),
            (sub, "GET", "/v1/Alerts", {}),
            lambda: _close(db, sub["sid"]),
            (sub, "GET", f"{base}/Messages.json", {}),
        ],
    )
    assert listed.status_code == 200 and [m["sid"] for m in listed.json()["messages"]] == [sent]
    assert [_code(send), _code(keys)] == [(403, 20005)] * 2
    assert alerts.status_code == 200
    # A closed account's credentials end with it: its history is its parent's to read.
    assert _code(listed_after) == (401, 20003)


def _close(db: Database, sid: str) -> None:
    with db.write() as conn:
        account_status.set_status(conn, sid, "closed", now=_now(), with_subaccounts=False)


# -- smaller refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["bogus", "Suspended"])
def test_listing_accounts_by_a_status_no_account_has_is_refused(db: Database, database_url: str, value: str) -> None:
    """Before, 200 with an empty list, as if no account had that status."""
    main, _, _ = _family(db)
    refused, every, active = _call(
        db,
        database_url,
        [
            (main, "GET", f"{V}/Accounts.json", {"params": {"Status": value}}),
            (main, "GET", f"{V}/Accounts.json", {"params": {"Status": ""}}),
            (main, "GET", f"{V}/Accounts.json", {"params": {"Status": "active"}}),
        ],
    )
    assert _code(refused) == (400, 21475)
    assert len(every.json()["accounts"]) == len(active.json()["accounts"]) == 3


def test_no_api_key_is_made_for_a_closed_account(db: Database) -> None:
    """Before, a key was made and printed that could never authenticate."""
    main, sub, other = _family(db)
    _close(db, sub["sid"])
    with db.write() as conn, pytest.raises(ApiError) as closed:
        account_use.create_key(conn, account_sid=sub["sid"], friendly_name="app", now=_now())
    assert closed.value.code == 21479
    _close(db, main["sid"])  # `other` is closed with its main account
    with db.write() as conn, pytest.raises(ApiError) as held:
        account_use.create_key(conn, account_sid=other["sid"], friendly_name="app", now=_now())
    assert held.value.code == 21479 and main["sid"] in str(held.value)
    with db.read() as conn:
        assert account_use.list_keys(conn, None) == []
