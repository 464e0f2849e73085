"""The HTTP redirects an application answered its incoming-message webhook with, as evidence.

Pigeon follows 301, 302, 303, 307 and 308 (`pigeon.domain.redirects`); each hop is a request
of its own. The doctor's test request carries them (`WebhookExchange.redirects`); a text's
`webhook`/`webhook_failed` timeline entry lists every request it made, a hop with the
Location it was sent on to (entries from before that was kept: the next request's URL).
Every hop is a row of its own beside the request it led to, as the attempts are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pigeon.domain.diagnosis.facts import Row, WebhookExchange
from pigeon.domain.diagnosis.model import Finding

#: Entries of a text's timeline that list the webhook's requests.
WEBHOOK_KINDS = frozenset({"webhook", "webhook_failed"})


def _is_hop(status: Any) -> bool:
    return isinstance(status, int) and 300 <= status < 400


def probe_hop_rows(ex: WebhookExchange, *, test: bool = True) -> list[dict[str, Any]]:
    """The redirects before one request of the doctor's test."""
    return [
        {
            "source": "redirect",
            "of": "test_request" if test else "webhook",
            "url": hop.url,
            "method": hop.method,
            "status": hop.status,
            "location": hop.location,
            "elapsed_ms": round(hop.elapsed_ms, 1),
        }
        for hop in ex.redirects
    ]


def timeline_hop_rows(events: Iterable[Row]) -> list[dict[str, Any]]:
    """The redirects among the requests of a text's webhook entries."""
    rows: list[dict[str, Any]] = []
    for event in events:
        if event.get("kind") not in WEBHOOK_KINDS:
            continue
        requests: Sequence[Row] = (event.get("detail") or {}).get("requests") or []
        for i, r in enumerate(requests):
            if not _is_hop(r.get("status")):
                continue
            location = r.get("location")
            if location is None and r.get("error_code") is None and i + 1 < len(requests):
                location = requests[i + 1].get("url")  # recorded before the Location was kept
            rows.append(
                {
                    "source": "redirect",
                    "of": "webhook",
                    "message_sid": event.get("message_sid"),
                    "at": event.get("at"),
                    "url": r.get("url"),
                    "method": r.get("method"),
                    "status": r.get("status"),
                    "location": location,
                    "error_code": r.get("error_code"),
                    "elapsed_ms": r.get("ms"),
                }
            )
    return rows


def redirected(subject: str, hops: Sequence[dict[str, Any]], final_url: str | None) -> Finding:
    """An info finding: the webhook answered, after redirects that the URL could skip."""
    path = " → ".join([str(hops[0].get("url")), *(str(h.get("location")) for h in hops)])
    advice = [
        f"Set the webhook URL to where the redirects end ({final_url or hops[-1].get('location')}): each redirect "
        "is one more request, and all of them share the 15 s a text's webhook may take."
    ]
    if any(h.get("status") == 303 for h in hops):
        advice.append(
            "A 303 is followed with a GET that carries none of the text's parameters (From, Body …): if your "
            "application needs them, answer with 307 or 308, which keep the POST and its parameters."
        )
    return Finding(
        cause="webhook_redirected",
        severity="info",
        summary=f"{subject} answered after {len(hops)} HTTP redirect(s): {path}.",
        evidence=list(hops),
        advice=advice,
    )
