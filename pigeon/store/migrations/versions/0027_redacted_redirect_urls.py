"""redacted messages: the URLs their webhooks were redirected to lose their path and query

Data only. Redaction now also replaces the path and query of the URLs an application
redirected a message's webhooks to (a TwiML <Redirect>, an HTTP redirect's Location, the
fallback's ErrorUrl), which may carry the text, keeping their scheme and host: in the
attempts (URL, error), the deliveries (last error), the webhook entries of the timeline and
the alerts (text, request URL, parameters, the answer's headers). This does the same for the
messages redacted before (a "redacted" entry in their timeline) and the inbound messages their
replies answer, once, as 0025 did for the answers. The URLs a delivery was configured with
stay whole. Nothing comes back on a downgrade.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pigeon.domain.redacted_urls import redacted_headers, redacted_text, redacted_url, redacted_value
from pigeon.domain.urls import url_for_log, without_credentials

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# The tables as this revision knows them, not as the release's metadata may later have them.
_events = sa.table(
    "message_events",
    sa.column("id", sa.BigInteger),
    sa.column("message_sid", sa.String),
    sa.column("kind", sa.String),
    sa.column("detail", sa.JSON),
)
_deliveries = sa.table(
    "webhook_deliveries",
    sa.column("id", sa.BigInteger),
    sa.column("message_sid", sa.String),
    sa.column("url", sa.Text),
    sa.column("fallback_url", sa.Text),
    sa.column("last_error", sa.Text),
)
_attempts = sa.table(
    "webhook_attempts",
    sa.column("id", sa.BigInteger),
    sa.column("delivery_id", sa.BigInteger),
    sa.column("url", sa.Text),
    sa.column("error", sa.Text),
)
_alerts = sa.table(
    "alerts",
    sa.column("sid", sa.String),
    sa.column("resource_sid", sa.String),
    sa.column("alert_text", sa.Text),
    sa.column("request_url", sa.Text),
    sa.column("request_variables", sa.JSON),
    sa.column("response_headers", sa.JSON),
)

NOTE = "[removed when a message it held was redacted]"
_CHUNK = 500


def _redacted_and_answered(conn: sa.Connection) -> list[str]:
    redacted = sa.select(_events.c.message_sid).where(_events.c.kind == "redacted")
    answered = sa.select(_events.c.detail).where(_events.c.kind == "reply_to", _events.c.message_sid.in_(redacted))
    parents = {
        str(detail["inbound_message_sid"])
        for detail in conn.execute(answered).scalars()
        if isinstance(detail, dict) and detail.get("inbound_message_sid")
    }
    return sorted(set(conn.execute(redacted).scalars()) | parents)


Keep = dict[str, set[str]]
d, a, e, al = _deliveries.c, _attempts.c, _events.c, _alerts.c


def _configured(conn: sa.Connection, sids: Sequence[str]) -> Keep:
    """Each message's configured webhook URLs, as the records spell them: they stay whole."""
    keep: Keep = {sid: set() for sid in sids}
    for sid, *urls in conn.execute(sa.select(d.message_sid, d.url, d.fallback_url).where(d.message_sid.in_(sids))):
        for url in filter(None, urls):
            keep[sid] |= {url, url_for_log(url), without_credentials(url)}
    return keep


def _deliveries_and_attempts(conn: sa.Connection, sids: Sequence[str], keep: Keep) -> None:
    failed = sa.select(d.id, d.message_sid, d.last_error).where(d.message_sid.in_(sids), d.last_error.is_not(None))
    for id_, sid, error in conn.execute(failed).all():
        if (scrubbed := redacted_text(error, NOTE, keep[sid])) != error:
            conn.execute(_deliveries.update().where(d.id == id_).values(last_error=scrubbed))
    attempts = sa.select(a.id, a.url, a.error, d.message_sid).select_from(
        _attempts.join(_deliveries, a.delivery_id == d.id)
    )
    for id_, url, error, sid in conn.execute(attempts.where(d.message_sid.in_(sids))).all():
        changed = {"url": redacted_url(url, NOTE, keep[sid]), "error": error and redacted_text(error, NOTE, keep[sid])}
        if changed != {"url": url, "error": error}:
            conn.execute(_attempts.update().where(a.id == id_).values(changed))


def _timelines(conn: sa.Connection, sids: Sequence[str], keep: Keep) -> None:
    kinds = ("webhook", "webhook_failed")
    for id_, sid, detail in conn.execute(
        sa.select(e.id, e.message_sid, e.detail).where(e.message_sid.in_(sids), e.kind.in_(kinds))
    ).all():
        if (scrubbed := redacted_value(detail, NOTE, keep[sid])) != detail:
            conn.execute(_events.update().where(e.id == id_).values(detail=scrubbed))


def _alerts_of(conn: sa.Connection, sids: Sequence[str], keep: Keep) -> None:
    q = sa.select(al.sid, al.resource_sid, al.alert_text, al.request_url, al.request_variables, al.response_headers)
    for row in conn.execute(q.where(al.resource_sid.in_(sids))).mappings().all():
        urls = keep[row["resource_sid"]]
        scrubbed = {
            "alert_text": redacted_text(row["alert_text"], NOTE, urls),
            "request_url": row["request_url"] and redacted_url(row["request_url"], NOTE, urls),
            "request_variables": redacted_value(row["request_variables"], NOTE, urls),
            "response_headers": redacted_headers(row["response_headers"], NOTE, urls),
        }
        changed = {k: v for k, v in scrubbed.items() if v != row[k]}
        if changed:
            conn.execute(_alerts.update().where(al.sid == row["sid"]).values(changed))


def upgrade() -> None:
    conn = op.get_bind()
    sids = _redacted_and_answered(conn)
    for start in range(0, len(sids), _CHUNK):
        chunk = sids[start : start + _CHUNK]
        keep = _configured(conn, chunk)
        _deliveries_and_attempts(conn, chunk, keep)
        _timelines(conn, chunk, keep)
        _alerts_of(conn, chunk, keep)


def downgrade() -> None:
    pass  # what was removed stays removed
