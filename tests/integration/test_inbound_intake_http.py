"""Texts in through the simulator's endpoint (POST /simulator/inbound, the intake a carrier's
messages take), on both stores: the OptOutType the webhook gets, the timelines of a keyword
and of a text no application is told of, and a long text's segments."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.config import load_settings
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.messages import get_message, list_events
from pigeon.store.optouts import list_opt_outs
from pigeon.store.usage import totals_by_category

HANDSET = "+14155557201"
LONG_CODE, IN_SERVICE, BARE, SHORT_CODE = "+14155550201", "+14155550202", "+14155550203", "12345"
APP = "https://app.example.com/sms"


@dataclass
class Setup:
    db: Database
    database_url: str
    account: dict[str, Any]

    def text(self, to: str, body: str) -> dict[str, Any]:
        """Text `body` from the handset to `to`; the endpoint's answer."""
        app = bootstrap.build_api(load_settings(environ={}, database_url=self.database_url), self.db)

        async def run() -> httpx.Response:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                auth = (self.account["sid"], self.account["auth_token"])
                async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
                    return await client.post("/simulator/inbound", data={"From": HANDSET, "To": to, "Body": body})

        response = asyncio.run(run())
        assert response.status_code == 201, response.text
        return dict(response.json())

    def webhook(self, message_sid: str) -> dict[str, str]:
        """The parameters of the webhook queued for an inbound message."""
        with self.db.read() as conn:
            [delivery] = outbox.list_deliveries(conn, message_sid=message_sid)
        return dict(delivery["params"])

    def events(self, message_sid: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return list_events(conn, message_sid)

    def opted_out(self) -> set[str]:
        with self.db.read() as conn:
            return {r["sender"] for r in list_opt_outs(conn, account_sid=self.account["sid"], recipient=HANDSET)}


@pytest.fixture
def setup(db: Database, database_url: str) -> Iterator[Setup]:
    now = datetime.now(UTC)
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="intake", now=now)
        sid = account["sid"]
        for number in (LONG_CODE, IN_SERVICE):
            number_use.provision(conn, account_sid=sid, phone_number=number, now=now, settings={"sms_url": APP})
        number_use.provision(conn, account_sid=sid, phone_number=BARE, now=now)
        number_use.provision(
            conn, account_sid=sid, phone_number=SHORT_CODE, now=now, iso_country="US", settings={"sms_url": APP}
        )
        service = service_use.create(conn, sid, {"FriendlyName": "pool", "InboundRequestUrl": APP}, now)
        [pn] = number_use.list_for_account(conn, sid, phone_number=IN_SERVICE, friendly_name=None, offset=0, limit=1)
        service_use.add_number(conn, sid, service["sid"], pn["sid"], short_code=False, path="/p", now=now)
    yield Setup(db, database_url, account)


@pytest.mark.parametrize(
    ("to", "opt_out_type", "recorded"),
    [
        # Left to the application (as on Twilio): nothing recorded, so nothing to tell it.
        (SHORT_CODE, None, False),
        # Recorded, but Twilio sends OptOutType only for a Messaging Service's senders.
        (LONG_CODE, None, True),
        (IN_SERVICE, "STOP", True),
    ],
    ids=["standalone short code", "standalone long code", "number of a service"],
)
def test_the_webhook_says_optouttype_only_for_a_stop_pigeon_handled_in_a_service(
    setup: Setup, to: str, opt_out_type: str | None, recorded: bool
) -> None:
    intake = setup.text(to, "STOP")

    params = setup.webhook(intake["message_sid"])
    assert params.get("OptOutType") == opt_out_type  # before: STOP for all three
    assert bool(setup.opted_out()) is recorded
    assert bool(intake["reply_sids"]) is recorded


def test_the_automatic_reply_and_the_keyword_name_each_other(setup: Setup) -> None:
    intake = setup.text(LONG_CODE, "STOP")

    inbound, [reply] = intake["message_sid"], intake["reply_sids"]
    [keyword] = [e for e in setup.events(inbound) if e["kind"] == "keyword"]
    assert keyword["detail"]["reply_sid"] == reply
    [link] = [e for e in setup.events(reply) if e["kind"] == "reply_to"]
    assert link["detail"] == {"inbound_message_sid": inbound, "keyword": "STOP"}


def test_a_text_no_application_is_told_of_says_so_in_its_timeline(setup: Setup) -> None:
    intake = setup.text(BARE, "hello")

    assert intake["webhook_queued"] is False
    entries = [(e["kind"], e["detail"]) for e in setup.events(intake["message_sid"])]
    assert entries[-1] == ("no_webhook", {"source": "number"})
    with setup.db.read() as conn:
        report = diagnose.diagnose_message(conn, setup.account["sid"], intake["message_sid"], now=datetime.now(UTC))
    [finding] = report.findings
    assert finding.cause == "no_webhook" and "has no SmsUrl" in finding.summary


def test_a_long_text_is_counted_in_segments(setup: Setup) -> None:
    intake = setup.text(LONG_CODE, "x" * 400)  # 153 characters a segment: 3

    with setup.db.read() as conn:
        message = get_message(conn, intake["message_sid"])
        usage = totals_by_category(conn, [setup.account["sid"]], first=None, last="9999-12-31")
    assert message is not None and message["num_segments"] == 3  # before: 1
    assert usage["sms-inbound"][:2] == (1, 3)  # one message, three segments
    assert setup.webhook(intake["message_sid"])["NumSegments"] == "3"
    [received] = [e for e in setup.events(intake["message_sid"]) if e["kind"] == "received"]
    assert received["detail"]["num_segments"] == 3
