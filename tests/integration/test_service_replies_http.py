"""A Messaging Service's replies to STOP, START and HELP (OptOutReply, OptInReply, HelpReply)
are held to a message Body's limit when they are set, through the v1 Services API, on SQLite
and PostgreSQL.

Before, a reply too long to send (over 1,600 characters, a character outside the BMP counting
two) was taken, and every confirmation of the service's numbers then failed with 21617: the
person who texted STOP got no answer, and the account only an alert per keyword.
"""

from __future__ import annotations

import pytest

from pigeon.app import services as service_use
from pigeon.app.inbound import receive
from pigeon.domain.optout import DEFAULT_REPLIES, KeywordKind
from pigeon.ports import InboundSms
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from pigeon.store.messages import get_message
from pigeon.testing import FrozenClock
from tests.integration.http_client import SENDER, Api, assert_twilio_error, make_api

PERSON = "+14155557171"
#: Outside the BMP: two UTF-16 units, as Twilio counts it.
EMOJI = "\N{DOVE OF PEACE}"
TOO_LONG = [
    ("OptOutReply", "You are unsubscribed. " * 80),  # 1,760 characters
    ("OptInReply", "y" * 1601),
    ("HelpReply", EMOJI * 801),  # 801 emoji: 1,602 UTF-16 units
]


def _service(api: Api) -> dict[str, object]:
    return dict(api.one("GET", f"/v1/Services/{api.service_sid}").json())


@pytest.mark.parametrize(("param", "text"), TOO_LONG, ids=[p for p, _ in TOO_LONG])
def test_a_reply_too_long_to_send_is_refused_with_21617_and_changes_nothing(
    db: Database, database_url: str, param: str, text: str
) -> None:
    api = make_api(db, database_url)
    before = _service(api)
    created, updated = api.call(
        ("POST", "/v1/Services", {"data": {"FriendlyName": "new", param: text}}),
        ("POST", f"/v1/Services/{api.service_sid}", {"data": {"FriendlyName": "renamed", param: text}}),
    )
    assert_twilio_error(created, 400, 21617, param, "1600")
    assert_twilio_error(updated, 400, 21617, param, "1600")
    assert _service(api) == before
    listed = api.one("GET", "/v1/Services").json()["services"]
    assert [s["sid"] for s in listed] == [api.service_sid]


def _stop(db: Database, clock: FrozenClock, body: str = "STOP") -> str:
    """PERSON texts `body` to SENDER (in the service); the text of the automatic reply."""
    clock.advance(1)
    with db.write() as conn:
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender=PERSON, recipient=SENDER, body=body),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
        [reply] = intake.reply_sids
        row = get_message(conn, reply)
    assert row is not None
    return str(row["body"])


def test_a_reply_of_1600_characters_is_sent_and_a_blank_one_gives_back_the_default(
    db: Database, database_url: str, clock: FrozenClock
) -> None:
    api = make_api(db, database_url)
    with db.write() as conn:
        number = number_store.find_by_number(conn, SENDER)
        assert number is not None
        service_use.add_number(
            conn, api.account["sid"], api.service_sid, number["sid"], short_code=False, path="/p", now=clock.now()
        )
    longest = EMOJI * 800  # 1,600 UTF-16 units: the most a Body holds
    answer = api.one("POST", f"/v1/Services/{api.service_sid}", data={"OptOutReply": longest})
    assert answer.status_code == 200, answer.text
    assert _stop(db, clock) == longest

    answer = api.one("POST", f"/v1/Services/{api.service_sid}", data={"OptOutReply": "   "})
    assert answer.status_code == 200, answer.text
    assert _stop(db, clock) == DEFAULT_REPLIES[KeywordKind.OPT_OUT]
