"""The console shows the HTTP redirects an application answered its webhook with: on a
message's page (its attempts), in the number page's webhook test, and in the doctor's pages.
On both stores, with an application on 127.0.0.1 and the real webhook sender."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.config import load_settings
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock
from tests.integration.test_console_http import csrf, sign_in
from tests.integration.test_inbound_redirects import NUMBER, TWIML, Answer, Receiver, converse


def app_route(path: str) -> Answer:
    """/sms moved to /sms/ (a trailing-slash redirect); /sms/ answers TwiML."""
    if path == "/sms":
        return 308, {"Location": "/sms/"}, b""
    return 200, {}, TWIML


@pytest.fixture
def app() -> Iterator[Receiver]:
    receiver = Receiver(app_route)
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def test_the_message_page_the_webhook_test_and_the_doctor_show_each_redirect(
    db: Database, database_url: str, clock: FrozenClock, app: Receiver
) -> None:
    with db.write() as conn:
        account: dict[str, Any] = dict(account_use.create_account(conn, friendly_name="hops", now=clock.now()))
    outcome = converse(db, clock, account, sms_url=app.base + "/sms")
    with db.read() as conn:
        found = number_store.find_by_number(conn, NUMBER)
    assert found is not None
    client_app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    with TestClient(client_app, base_url="http://127.0.0.1:8080") as client:
        assert sign_in(client, str(account["sid"]), str(account["auth_token"])) == 303

        # The message's page: the attempt that was redirected says where to.
        page = client.get(f"/console/messages/{outcome.inbound_sid}").text
        assert re.search(
            r"308 <span class=\"redirect\">→ redirected to <code>" + re.escape(app.base) + "/sms/</code>", page
        )
        # ... and the doctor's verdict on it names the hop.
        assert "webhook redirected" in page

        # The number page's webhook test: a row for the hop, then the answer.
        tested = client.post(f"/console/numbers/{found['sid']}/test", data={"csrf_token": csrf(client)}).text
        assert f"POST {app.base}/sms</code>" in tested
        assert f"→ redirected to <code>{app.base}/sms/</code>" in tested

        # The doctor's number flow in the console: the hop is evidence, with its Location.
        form = {"number": NUMBER, "test": "1", "csrf_token": csrf(client, "/console/doctor?flow=number")}
        report = client.post("/console/doctor/number", data=form).text
        assert "webhook redirected" in report and "<dt>location</dt>" in report
        assert f"{app.base}/sms/" in report
