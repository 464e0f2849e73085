"""Where copies of a redacted message's text hide besides its row and its webhook requests:
the answers its webhooks gave (pigeon/app/redaction.py decides which messages' answers).

A webhook's answer is kept as an excerpt on each attempt (webhook_attempts.response_excerpt,
shown by the console) and on the alert about a failed or doubtful answer (alerts.response_body,
shown by the doctor). The incoming-message webhook's answer is the TwiML of the replies, their
text included; any receiver may echo a text it was sent. Such an answer is replaced with a
note saying why, rather than taken apart: an excerpt is cut at a length, and a reply's text
can be anywhere in it.

The URLs the application chose can hold it too (`pigeon.domain.redacted_urls`): where its
`<Redirect>` or an HTTP redirect sent the request, kept on the attempts (their URL, error and
the Location they were redirected to),
the delivery (its last error), the message's timeline (each request of the conversation) and
its alerts (their text, request URL, parameters: the fallback's ErrorUrl, and the answer's
Location). Those keep their scheme and host; the URLs the delivery was configured with stay
whole."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.redacted_urls import redacted_headers, redacted_text, redacted_url, redacted_value
from pigeon.domain.urls import url_for_log, without_credentials
from pigeon.store.tables import alerts, message_events, webhook_attempts, webhook_deliveries

a = webhook_attempts.c
d = webhook_deliveries.c
e = message_events.c

#: The timeline entry of a reply that names the inbound message it answers.
REPLY_TO = "reply_to"
#: The timeline entries of a message's webhooks: the URLs of every request of a conversation.
WEBHOOK_ENTRIES = ("webhook", "webhook_failed")


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
    replace_redirect_urls(conn, sids, note)


def _configured(conn: Connection, sids: Sequence[str]) -> dict[str, frozenset[str]]:
    """The URLs each message's deliveries were configured with, as the records spell them
    (whole, masked for a log, or told to the fallback without credentials)."""
    found: dict[str, set[str]] = {sid: set() for sid in sids}
    for sid, *urls in conn.execute(sa.select(d.message_sid, d.url, d.fallback_url).where(d.message_sid.in_(sids))):
        for url in filter(None, urls):
            found[sid] |= {url, url_for_log(url), without_credentials(url)}
    return {sid: frozenset(urls) for sid, urls in found.items()}


def replace_redirect_urls(conn: Connection, message_sids: Sequence[str], note: str) -> None:
    """Replace the path and query of every URL kept about the webhooks of `message_sids` that
    their deliveries were not configured with (where the application redirected them) with
    `note`, their scheme and host kept."""
    if not message_sids:
        return
    sids = list(message_sids)
    keep = _configured(conn, sids)
    attempts = sa.select(a.id, a.url, a.error, a.location, d.message_sid).join(
        webhook_deliveries, a.delivery_id == d.id
    )
    for id_, url, error, location, sid in conn.execute(attempts.where(d.message_sid.in_(sids))).all():
        changed = {
            "url": redacted_url(url, note, keep[sid]),
            "error": error and redacted_text(error, note, keep[sid]),
            "location": location and redacted_url(location, note, keep[sid]),  # where a redirect sent it
        }
        if changed != {"url": url, "error": error, "location": location}:
            conn.execute(webhook_attempts.update().where(a.id == id_).values(changed))
    failed = sa.select(d.id, d.message_sid, d.last_error).where(d.message_sid.in_(sids), d.last_error.is_not(None))
    for id_, sid, error in conn.execute(failed).all():
        if (scrubbed := redacted_text(error, note, keep[sid])) != error:
            conn.execute(webhook_deliveries.update().where(d.id == id_).values(last_error=scrubbed))
    entries = sa.select(e.id, e.message_sid, e.detail).where(e.message_sid.in_(sids), e.kind.in_(WEBHOOK_ENTRIES))
    for id_, sid, detail in conn.execute(entries).all():
        if (scrubbed := redacted_value(detail, note, keep[sid])) != detail:
            conn.execute(message_events.update().where(e.id == id_).values(detail=scrubbed))
    _replace_in_alerts(conn, sids, note, keep)


def _replace_in_alerts(conn: Connection, sids: Sequence[str], note: str, keep: dict[str, frozenset[str]]) -> None:
    al = alerts.c
    q = sa.select(al.sid, al.resource_sid, al.alert_text, al.request_url, al.request_variables, al.response_headers)
    for row in conn.execute(q.where(al.resource_sid.in_(sids))).mappings().all():
        urls = keep[row["resource_sid"]]
        scrubbed = {
            "alert_text": redacted_text(row["alert_text"], note, urls),
            "request_url": row["request_url"] and redacted_url(row["request_url"], note, urls),
            "request_variables": redacted_value(row["request_variables"], note, urls),
            "response_headers": redacted_headers(row["response_headers"], note, urls),
        }
        changed = {k: v for k, v in scrubbed.items() if v != row[k]}
        if changed:
            conn.execute(alerts.update().where(al.sid == row["sid"]).values(changed))


def answered_messages(conn: Connection, sids: Sequence[str]) -> list[str]:
    """The inbound messages that the replies among `sids` answer (from their `reply_to`
    timeline entries), in SID order."""
    if not sids:
        return []
    q = sa.select(e.detail).where(e.message_sid.in_(list(sids)), e.kind == REPLY_TO)
    parents = {d.get("inbound_message_sid") for d in conn.execute(q).scalars() if isinstance(d, dict)}
    return sorted(str(p) for p in parents if p)
