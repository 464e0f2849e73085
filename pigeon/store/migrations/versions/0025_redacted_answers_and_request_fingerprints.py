"""redacted messages: their webhooks' answers and their requests' fingerprints go too

Data only. Redaction now also replaces the answers kept of a message's webhooks (attempts'
response excerpts, alerts' response bodies) and, for a reply, of the webhook of the inbound
message it answers, whose TwiML holds the reply's text; and the fingerprint of the
Idempotency-Key request that made it, which covers the Body (it was a plain SHA-256, from
which a short code was found again by trying every candidate). This does the same for the
messages redacted before (a "redacted" entry in their timeline), once: a scan of the
timelines, as the upgrade that keyed content hashes made. Nothing comes back on a downgrade.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-11 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# The tables as this revision knows them, not as the release's metadata may later have them.
_events = sa.table(
    "message_events", sa.column("message_sid", sa.String), sa.column("kind", sa.String), sa.column("detail", sa.JSON)
)
_keys = sa.table("idempotency_keys", sa.column("message_sid", sa.String), sa.column("request_hash", sa.String))
_deliveries = sa.table("webhook_deliveries", sa.column("id", sa.BigInteger), sa.column("message_sid", sa.String))
_attempts = sa.table(
    "webhook_attempts", sa.column("delivery_id", sa.BigInteger), sa.column("response_excerpt", sa.Text)
)
_alerts = sa.table("alerts", sa.column("resource_sid", sa.String), sa.column("response_body", sa.Text))

NOTE = "[removed when a message it held was redacted]"
_CHUNK = 500


def upgrade() -> None:
    conn = op.get_bind()
    redacted = sa.select(_events.c.message_sid).where(_events.c.kind == "redacted")
    conn.execute(_keys.update().where(_keys.c.message_sid.in_(redacted)).values(request_hash="redacted"))
    answered = sa.select(_events.c.detail).where(_events.c.kind == "reply_to", _events.c.message_sid.in_(redacted))
    parents = {
        str(detail["inbound_message_sid"])
        for detail in conn.execute(answered).scalars()
        if isinstance(detail, dict) and detail.get("inbound_message_sid")
    }
    sids = sorted(set(conn.execute(redacted).scalars()) | parents)
    for start in range(0, len(sids), _CHUNK):
        chunk = sids[start : start + _CHUNK]
        deliveries = sa.select(_deliveries.c.id).where(_deliveries.c.message_sid.in_(chunk))
        excerpt = _attempts.c.response_excerpt
        conn.execute(
            _attempts.update()
            .where(_attempts.c.delivery_id.in_(deliveries), excerpt.is_not(None), excerpt != "")
            .values(response_excerpt=NOTE)
        )
        body = _alerts.c.response_body
        conn.execute(
            _alerts.update()
            .where(_alerts.c.resource_sid.in_(chunk), body.is_not(None), body != "")
            .values(response_body=NOTE)
        )


def downgrade() -> None:
    pass  # what was removed stays removed
