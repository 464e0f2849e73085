"""A form whose name or value is not UTF-8 is refused with 20422 naming the parameter, and
changes nothing. Before, one stray %E9 anywhere (even in a parameter Pigeon ignores) made
Pigeon read the whole body as Latin-1: a UTF-8 Body "Olá, 你好 👍" was stored, sent and billed
as "OlÃ¡, ä½\xa0å¥½ ð\x9f\x91\x8d" with a 201."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, list_messages
from tests.integration.http_client import SENDER, assert_twilio_error, make_api

FORM = {"content-type": "application/x-www-form-urlencoded"}
SEND = f"To=%2B14155557020&From={quote(SENDER)}&Body={quote('Olá, 你好 👍')}"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (SEND + "&Tags=caf%E9", "'Tags'"),  # a parameter Pigeon ignores
        (SEND.replace("Body=", "Body=caf%E9") + "&Tags=x", "'Body'"),
        (SEND.encode().replace(b"Body=", b"Body=caf\xe9"), "'Body'"),  # a raw Latin-1 byte
        (SEND + "&caf%E9=1", "name"),
    ],
)
def test_a_send_with_a_field_that_is_not_utf8_is_refused(
    db: Database, database_url: str, body: str | bytes, named: str
) -> None:
    api = make_api(db, database_url)
    response = api.one("POST", f"{api.base}/Messages.json", content=body, headers=FORM)
    assert_twilio_error(response, 400, 20422, named, "UTF-8")
    with db.read() as conn:
        assert list_messages(conn, MessageFilter(account_sid=api.account["sid"]), limit=10) == []


def test_a_utf8_send_is_stored_as_sent(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    response = api.one("POST", f"{api.base}/Messages.json", content=SEND, headers=FORM)
    assert response.status_code == 201 and response.json()["body"] == "Olá, 你好 👍"


def test_a_service_update_with_a_stray_byte_changes_nothing(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    url = f"/v1/Services/{api.service_sid}"
    update, fetched = api.call(
        ("POST", url, {"content": f"FriendlyName={quote('Café Ñ')}&Foo=%E9", "headers": FORM}), ("GET", url, {})
    )
    assert_twilio_error(update, 400, 20422, "'Foo'")
    assert fetched.json()["friendly_name"] == "svc"
