"""`GET Doctor/Blocked.json?MessagingServiceSid=` answers another account's Messaging Service
exactly as a service that does not exist (404, 20404, the same sentence but for the SID it
was given): the answer never tells that the other account's service exists."""

from __future__ import annotations

from datetime import UTC, datetime

from pigeon.app import accounts as account_use
from pigeon.app import services as service_use
from pigeon.store.engine import Database
from tests.integration.http_client import assert_twilio_error, make_api


def test_another_accounts_service_is_answered_as_no_service(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    now = datetime.now(UTC)
    with db.write() as conn:
        other = account_use.create_account(conn, friendly_name="Other", now=now)
        theirs = str(service_use.create(conn, other["sid"], {"FriendlyName": "theirs"}, now)["sid"])
    missing = "MG" + "0" * 32
    url = f"{api.base}/Doctor/Blocked.json"
    answers = api.call(
        *(("GET", url, {"params": {"To": "+14155550100", "MessagingServiceSid": sid}}) for sid in (theirs, missing))
    )
    for response in answers:
        assert_twilio_error(response, 404, 20404)
    bodies = [
        r.json() | {"message": r.json()["message"].replace(sid, "MG…")}
        for r, sid in zip(answers, (theirs, missing), strict=True)
    ]
    assert bodies[0] == bodies[1]
    assert answers[0].headers.keys() == answers[1].headers.keys()
    mine = api.one("GET", url, params={"To": "+14155550100", "MessagingServiceSid": api.service_sid})
    assert mine.status_code == 200, mine.text
