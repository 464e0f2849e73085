"""One request of an incoming message's conversation with its application: signed, its HTTP
redirects followed (`pigeon.app.webhook_requests`), its answer read as TwiML.

An application may answer with an HTTP redirect (http→https, a moved route, a trailing slash);
Twilio follows those, so a redirect is not a failure here either. Status callbacks follow them
the same way; Event Streams deliveries do not: REFERENCE.md §i, which describes them, says
nothing of redirects, so a 3xx there stays a failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pigeon.app.webhook_requests import Followed, Redirected, Request, follow
from pigeon.domain.errors import WebhookError
from pigeon.domain.twiml import Twiml, TwimlError, interpret
from pigeon.domain.urls import url_for_log
from pigeon.ports import WebhookSender

__all__ = ["Exchange", "Redirected", "Request", "fetch"]

log = logging.getLogger(__name__)


@dataclass
class Exchange(Followed):
    """A request to the application and what came of it (`Followed`), its answer read as TwiML."""

    twiml: Twiml | None = None
    #: What Twilio logs as a warning: the answer was used all the same (14109: more replies
    #: than one message may have, the first ten sent).
    warning: WebhookError | None = None


def _read(ex: Exchange) -> None:
    """What the final answer says: TwiML from a 2xx, else the failure."""
    if ex.response is None:
        return
    if not 200 <= ex.response.status < 300:
        ex.error = WebhookError(
            11200, f"the application answered HTTP {ex.response.status}", retryable=False, status=ex.response.status
        )
        return
    try:
        ex.twiml = interpret(ex.response.status, ex.response.headers.get("content-type"), ex.response.body)
    except TwimlError as exc:
        ex.error = WebhookError(exc.code, exc.detail, retryable=False, status=ex.response.status)
    except Exception as exc:  # an answer we failed to read must not bring the delivery back for ever
        log.exception("could not read the application's answer from %s", url_for_log(ex.url))
        ex.error = WebhookError(
            12100, f"the answer could not be read: {exc}", retryable=False, status=ex.response.status
        )


async def fetch(
    sender: WebhookSender,
    token: str,
    delivery: Mapping[str, Any],
    url: str,
    method: str,
    params: Sequence[tuple[str, str]],
    timeout: float,
) -> Exchange:
    """Request `url`, following the redirects it answers with, all within `timeout` seconds."""
    done = await follow(sender, token, delivery, url, method, params, timeout)
    ex = Exchange(
        url=done.url,
        method=done.method,
        params=done.params,
        response=done.response,
        error=done.error,
        elapsed_ms=done.elapsed_ms,
        redirected=done.redirected,
    )
    if ex.error is None:
        _read(ex)
    return ex
