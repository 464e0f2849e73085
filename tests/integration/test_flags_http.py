"""A boolean parameter is true or false (any case), read one way everywhere
(pigeon.domain.flags); anything else is refused naming it, and changes nothing. Before,
SmartEncoded=maybe sent the message as if false, while a Service refused StickySender=yes."""

from __future__ import annotations

import pytest

from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, list_messages
from tests.integration.http_client import SENDER, assert_twilio_error, make_api

SEND = {"To": "+14155557020", "From": SENDER, "Body": "x"}


@pytest.mark.parametrize(
    ("name", "value"), [("SmartEncoded", "maybe"), ("SmartEncoded", "yes"), ("ShortenUrls", "maybe")]
)
def test_a_send_with_a_flag_that_is_neither_is_refused(db: Database, database_url: str, name: str, value: str) -> None:
    api = make_api(db, database_url)
    response = api.one("POST", f"{api.base}/Messages.json", data={**SEND, name: value})
    assert response.status_code == 400, response.text
    assert name in response.json()["message"]
    with db.read() as conn:
        assert list_messages(conn, MessageFilter(account_sid=api.account["sid"]), limit=10) == []


@pytest.mark.parametrize("value", ["true", "True", "FALSE"])
def test_a_send_takes_true_and_false_in_any_case(db: Database, database_url: str, value: str) -> None:
    api = make_api(db, database_url)
    assert api.one("POST", f"{api.base}/Messages.json", data={**SEND, "SmartEncoded": value}).status_code == 201


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("{base}/Requests.json?Authenticated=maybe", "Authenticated"),
        ("{base}/AvailablePhoneNumbers/US/Local.json?SmsEnabled=yes", "SmsEnabled"),
        ("{base}/Usage/Records.json?IncludeSubaccounts=yes", "IncludeSubaccounts"),
    ],
)
def test_a_query_flag_that_is_neither_is_refused(db: Database, database_url: str, path: str, name: str) -> None:
    api = make_api(db, database_url)
    assert_twilio_error(api.one("GET", path.format(base=api.base)), 400, 20422, name)
