"""Where copies of a redacted message's text hide besides its row and its webhook requests:
the answers its webhooks gave (pigeon/app/redaction.py decides which messages' answers).

A webhook's answer is kept as an excerpt on each attempt (webhook_attempts.response_excerpt,
shown by the console) and on the alert about a failed or doubtful answer (alerts.response_body,
shown by the doctor). The incoming-message webhook's answer is the TwiML of the replies, their
text included; any receiver may echo a text it was sent. Such an answer is replaced with a
note saying why, rather than taken apart: an excerpt is cut at a length, and a reply's text
can be anywhere in it."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import alerts, message_events, webhook_attempts, webhook_deliveries

a = webhook_attempts.c
d = webhook_deliveries.c
e = message_events.c

#: The timeline entry of a reply that names the inbound message it answers.
REPLY_TO = "reply_to"


def replace_answers(conn: Connection, message_sids: Sequence[str], note: str) -> None:
    """Replace every kept answer to the webhooks of `message_sids` (their attempts' excerpts
    and their alerts' response bodies) with `note`; an empty one is left empty."""
    if not message_sids:
        return
    sids = list(message_sids)
    deliveries = sa.select(d.id).where(d.message_sid.in_(sids))
    conn.execute(
        webhook_attempts.update()
        .where(a.delivery_id.in_(deliveries), a.response_excerpt.is_not(None), a.response_excerpt != "")
        .values(response_excerpt=note)
    )
    al = alerts.c
    conn.execute(
        alerts.update()
        .where(al.resource_sid.in_(sids), al.response_body.is_not(None), al.response_body != "")
        .values(response_body=note)
    )


def answered_messages(conn: Connection, sids: Sequence[str]) -> list[str]:
    """The inbound messages that the replies among `sids` answer (from their `reply_to`
    timeline entries), in SID order."""
    if not sids:
        return []
    q = sa.select(e.detail).where(e.message_sid.in_(list(sids)), e.kind == REPLY_TO)
    parents = {d.get("inbound_message_sid") for d in conn.execute(q).scalars() if isinstance(d, dict)}
    return sorted(str(p) for p in parents if p)
