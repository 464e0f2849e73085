"""A message's text, removed from the copies Pigeon keeps of it outside the message's row.

Redacting a message (POST Body="") empties its body; the text also sits in requests kept for
the debugger: the incoming-message webhook's `Body` (its outbox row, and the alert when it
failed) and an Event Streams event's `data.body`. Those are emptied too, in the same
transaction, so that a redacted text is nowhere in the store. A delivery still to go out
then carries the empty text, as the message now has. Status callbacks carry no text.

The answers to webhooks can hold it too, and are replaced with a note
(`pigeon.store.redaction`): those to the message's own webhooks (an inbound message's webhook
answer is its replies' TwiML, a status callback's receiver may echo the text), and, for a
reply, those to the webhook of the inbound message it answers, whose TwiML holds the reply's
text. So are the URLs the application redirected those webhooks to, but for their scheme and
host: they may carry the text too. So is the fingerprint of the request that made the message under an Idempotency-Key:
it covers the Body."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.events import EVENT_PARAM, event_text
from pigeon.store import alerts as alert_store
from pigeon.store import idempotency as idempotency_store
from pigeon.store import redaction as redaction_store
from pigeon.store import webhooks as outbox

Pair = tuple[str, str]


def _event_without_body(text: str) -> str:
    event = json.loads(text)
    data = event.get("data")
    if not isinstance(data, dict) or not data.get("body"):
        return text
    data["body"] = ""
    return event_text(event)


def params_without_body(params: Sequence[Sequence[str]]) -> list[Pair]:
    """Webhook parameters with the message's text emptied: `Body`, and `data.body` inside an
    Event Streams event."""
    out: list[Pair] = []
    for name, value in params:
        if name == "Body":
            value = ""
        elif name == EVENT_PARAM:
            value = _event_without_body(value)
        out.append((name, value))
    return out


def _variables_without_body(variables: Any) -> Any:
    if isinstance(variables, list):
        return [list(p) for p in params_without_body(variables)]
    if isinstance(variables, dict) and variables.get("Body"):
        return {**variables, "Body": ""}
    return variables


def forget_text(conn: Connection, message: Mapping[str, Any]) -> None:
    """Empty the message's text (a messages row) wherever the store keeps a copy of it."""
    message_sid = str(message["sid"])
    for delivery in outbox.list_deliveries(conn, message_sid=message_sid):
        scrubbed = params_without_body(delivery["params"])
        if scrubbed != delivery["params"]:
            outbox.set_params(conn, delivery["id"], scrubbed)
    for alert in alert_store.list_alerts(conn, resource_sid=message_sid, limit=1000):
        variables = _variables_without_body(alert["request_variables"])
        if variables != alert["request_variables"]:
            alert_store.set_request_variables(conn, alert["sid"], variables)
    answered = redaction_store.answered_messages(conn, [message_sid])
    note = f"[removed when message {message_sid} was redacted]"
    redaction_store.replace_answers(conn, [message_sid, *answered], note)
    idempotency_store.forget_request(conn, message["account_sid"], message_sid, message["date_created"])
