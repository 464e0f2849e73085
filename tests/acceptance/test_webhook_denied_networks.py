"""A status callback aimed at a cloud's metadata service (169.254.169.254, in the default
PIGEON_WEBHOOK_DENIED_NETWORKS) is never requested: the message is delivered, and the
callbacks fail at once with an alert that says why, instead of being retried."""

from __future__ import annotations

import pytest

from pigeon.store import alerts as alert_store
from tests.acceptance.conftest import Server
from tests.acceptance.support import fresh_number, store, wait_for

pytestmark = pytest.mark.acceptance

METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


def test_a_status_callback_to_the_metadata_service_is_refused(sqlite_server: Server) -> None:
    client = sqlite_server.client()
    sent = client.messages.create(
        to=fresh_number(), from_=sqlite_server.numbers[0], body="hi", status_callback=METADATA
    )
    sid = sent.sid
    wait_for("the message to be delivered", lambda: client.messages(sid).fetch().status == "delivered", timeout=20)

    def alerts() -> list[dict[str, object]]:
        with store(sqlite_server) as db, db.read() as conn:
            return alert_store.list_alerts(conn, resource_sid=sid)

    wait_for("an alert for each status callback", lambda: len(alerts()) == 3, timeout=20)
    for alert in alerts():
        assert alert["error_code"] == 11205
        text = str(alert["alert_text"])
        assert "after 1 attempt" in text and "169.254.169.254" in text and "not allowed" in text
