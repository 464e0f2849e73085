"""A message whose Messaging Service's pool has its sender still to choose (sent without a From:
accepted, or scheduled until its SendAt) shows as Twilio shows it (REFERENCE §a): `from` null
and `num_segments` "0", on create, fetch and list; the store keeps the sender the pool chose at
the create (the queue's and the opt-out checks') and the real segment count. A list filtered
with From= does not find it under a sender it may never go from. Once queued, or when the
request named its From, the sender shows. Both stores, through the real HTTP application.

Before, the create answered with the pool's first choice and the text's segments, though a
scheduled message gets its sender at its SendAt and may go from another number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.domain.status import MessageStatus
from pigeon.store import messages as message_store
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from tests.integration.http_client import SENDER, Api, make_api

TO = "+14155557020"
LONG = "x" * 200  # two segments


def _api(db: Database, database_url: str) -> Api:
    """The account's number in its service's pool, alone (the pool's choice is SENDER)."""
    api = make_api(db, database_url)
    with db.write() as conn:
        row = number_store.find_by_number(conn, SENDER)
        assert row is not None
        service_use.add_number(
            conn,
            api.account["sid"],
            api.service_sid,
            row["sid"],
            short_code=False,
            path="/p",
            now=datetime.now(UTC),
        )
    return api


def _create(api: Api, **form: str) -> dict[str, Any]:
    response = api.one("POST", f"{api.base}/Messages.json", data={"To": TO, "Body": LONG, **form})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _listed(api: Api, **params: str) -> dict[str, dict[str, Any]]:
    response = api.one("GET", f"{api.base}/Messages.json", params=params)
    assert response.status_code == 200, response.text
    return {m["sid"]: m for m in response.json()["messages"]}


def test_the_pool_s_sender_is_not_shown_while_it_is_still_to_choose(db: Database, database_url: str) -> None:
    api = _api(db, database_url)
    send_at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = _create(api, MessagingServiceSid=api.service_sid, ScheduleType="fixed", SendAt=send_at)
    accepted = _create(api, MessagingServiceSid=api.service_sid)
    named = _create(api, MessagingServiceSid=api.service_sid, From=SENDER)  # the request's own From
    alone = _create(api, From=SENDER)  # no service: queued

    assert (scheduled["status"], scheduled["from"], scheduled["num_segments"]) == ("scheduled", None, "0")
    assert (accepted["status"], accepted["from"], accepted["num_segments"]) == ("accepted", None, "0")
    assert (named["status"], named["from"], named["num_segments"]) == ("accepted", SENDER, "2")
    assert (alone["status"], alone["from"], alone["num_segments"]) == ("queued", SENDER, "2")
    for made in (scheduled, accepted):
        fetched = api.one("GET", f"{api.base}/Messages/{made['sid']}.json").json()
        assert (fetched["from"], fetched["num_segments"]) == (None, "0")
        with db.read() as conn:
            row = message_store.get_message(conn, made["sid"])
        assert row is not None and (row["from_"], row["num_segments"]) == (SENDER, 2)  # kept in the store

    every = _listed(api)
    assert {sid: (m["from"], m["num_segments"]) for sid, m in every.items()} == {
        scheduled["sid"]: (None, "0"),
        accepted["sid"]: (None, "0"),
        named["sid"]: (SENDER, "2"),
        alone["sid"]: (SENDER, "2"),
    }
    # From= finds the messages that go from the number, not those the pool may yet send otherwise.
    assert set(_listed(api, From=SENDER)) == {named["sid"], alone["sid"]}
    assert set(_listed(api, To=TO)) == set(every)

    # Queued: the pool's choice is made, and shows.
    with db.write() as conn:
        message_store.transition(conn, accepted["sid"], MessageStatus.QUEUED, at=datetime.now(UTC))
    fetched = api.one("GET", f"{api.base}/Messages/{accepted['sid']}.json").json()
    assert (fetched["status"], fetched["from"], fetched["num_segments"]) == ("queued", SENDER, "2")
    assert set(_listed(api, From=SENDER)) == {accepted["sid"], named["sid"], alone["sid"]}


def test_a_number_the_pool_chose_for_a_scheduled_message_then_released_lists_nothing_under_it(
    db: Database, database_url: str
) -> None:
    """The reviewer's case: the number chosen at the create leaves the account, and another
    account may buy it; the message is the pool's to send at its SendAt, not the number's."""
    api = _api(db, database_url)
    send_at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = _create(api, MessagingServiceSid=api.service_sid, ScheduleType="fixed", SendAt=send_at)
    with db.write() as conn:
        row = number_store.find_by_number(conn, SENDER)
        assert row is not None
        number_use.release(conn, api.account["sid"], row["sid"], "/p", datetime.now(UTC))
    fetched = api.one("GET", f"{api.base}/Messages/{scheduled['sid']}.json").json()
    assert (fetched["status"], fetched["from"]) == ("scheduled", None)
    assert _listed(api, From=SENDER) == {}
