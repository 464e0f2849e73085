"""One request of an incoming message's conversation with its application: signed, its HTTP
redirects followed, its answer read as TwiML.

An application may answer with an HTTP redirect (http→https, a moved route, a trailing slash);
Twilio follows those, so a redirect is not a failure here either (`pigeon.domain.redirects`
says which and where to). Each hop is a request of its own, signed for its own URL, so that
the application checking X-Twilio-Signature at the URL it was reached at accepts it; the
webhook sender's protections hold for each (the denied networks are checked at every
connection). The redirects share the request's time limit. Past `MAX_HTTP_REDIRECTS`, 11215;
a redirect that cannot be followed, 11216.

Status callbacks and Event Streams deliveries do not follow redirects: REFERENCE.md says
nothing of Twilio following them there, so they keep reporting a 3xx as a failed attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pigeon.app.callback_delivery import build_request
from pigeon.domain.errors import WebhookError
from pigeon.domain.redirects import (
    INVALID_REDIRECT,
    MAX_HTTP_REDIRECTS,
    TOO_MANY_REDIRECTS,
    InvalidRedirect,
    is_redirect,
    location_of,
    next_hop,
)
from pigeon.domain.twiml import Twiml, TwimlError, interpret
from pigeon.domain.urls import url_for_log
from pigeon.ports import WebhookResponse, WebhookSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Redirected:
    """A request the application answered with a redirect, which was followed to `location`
    (its Location read against `url`)."""

    url: str
    method: str
    response: WebhookResponse
    location: str


@dataclass(frozen=True)
class Request:
    """One HTTP request of an exchange, as the attempts and the timeline record it."""

    url: str
    method: str
    response: WebhookResponse | None
    error: WebhookError | None
    elapsed_ms: float
    #: Where a redirect answer sent it: the URL followed, or, for one not followed (11215,
    #: 11216), its Location header as given.
    location: str | None = None


@dataclass
class Exchange:
    """A request to the application and what came of it. After redirects, `url`, `method` and
    `params` are those of the last request, which the answer (or the failure) is from; the
    requests before it are in `redirected`."""

    url: str
    method: str
    params: list[tuple[str, str]]
    response: WebhookResponse | None = None
    error: WebhookError | None = None
    twiml: Twiml | None = None
    elapsed_ms: float = 0.0
    #: What Twilio logs as a warning: the answer was used all the same (14109: more replies
    #: than one message may have, the first ten sent).
    warning: WebhookError | None = None
    redirected: list[Redirected] = field(default_factory=list)

    def requests(self) -> Iterator[Request]:
        for hop in self.redirected:
            yield Request(hop.url, hop.method, hop.response, None, hop.response.elapsed_ms, hop.location)
        resp = self.response
        location = location_of(resp.headers) if resp is not None and is_redirect(resp.status) else None
        yield Request(self.url, self.method, resp, self.error, self.elapsed_ms, location)


async def _request(
    sender: WebhookSender,
    token: str,
    delivery: Mapping[str, Any],
    url: str,
    method: str,
    params: Sequence[tuple[str, str]],
    timeout: float,
) -> Exchange:
    ex = Exchange(url=url, method=method, params=list(params))
    req = build_request({**delivery, "url": url, "method": method, "params": list(params)}, token, timeout=timeout)
    started = time.perf_counter()
    try:
        ex.response = await sender.send(req)
    except WebhookError as exc:
        ex.error = exc
        ex.elapsed_ms = (time.perf_counter() - started) * 1000
        return ex
    ex.elapsed_ms = ex.response.elapsed_ms
    return ex


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
    started = time.perf_counter()
    redirected: list[Redirected] = []
    while True:
        left = max(0.0, timeout - (time.perf_counter() - started))
        ex = await _request(sender, token, delivery, url, method, params, left)
        ex.redirected = redirected
        if ex.response is None or not is_redirect(ex.response.status):
            _read(ex)
            return ex
        status = ex.response.status
        if len(redirected) == MAX_HTTP_REDIRECTS:
            detail = f"more than {MAX_HTTP_REDIRECTS} HTTP redirects in a row, the last to {url_for_log(url)}"
            ex.error = WebhookError(TOO_MANY_REDIRECTS, detail, retryable=False, status=status)
            return ex
        try:
            hop = next_hop(status, ex.response.headers, url, method)
        except InvalidRedirect as exc:
            ex.error = WebhookError(INVALID_REDIRECT, exc.detail, retryable=False, status=status)
            return ex
        redirected = [*redirected, Redirected(url, method, ex.response, hop.url)]
        # A GET's parameters are in its URL, which the Location replaces: none are added to it.
        url, method, params = hop.url, hop.method, params if hop.method != "GET" else []
