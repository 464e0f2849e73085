"""A webhook request, signed, and the HTTP redirects its answers lead to.

`build_request` signs one request with the owning account's auth token. `follow` makes it
and follows the HTTP redirects it is answered with, as Twilio does (`pigeon.domain.redirects`
says which and where to): each hop is a request of its own, signed for its own URL, so that
a receiver checking X-Twilio-Signature at the URL it was reached at accepts it; the webhook
sender's protections hold for each (the denied networks are checked at every connection).
The redirects share the request's time limit. Past `MAX_HTTP_REDIRECTS`, 11215; a redirect
that cannot be followed, 11216. What the last answer means is the caller's to judge: the
incoming-message webhook reads TwiML in it (`pigeon.app.inbound_exchange`), a status
callback wants a 2xx (`pigeon.app.callback_delivery`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from pigeon.domain.signatures import compute_signature, request_url
from pigeon.domain.urls import url_for_log
from pigeon.ports import WebhookRequest, WebhookResponse, WebhookSender

__all__ = ["Followed", "Redirected", "Request", "build_request", "follow"]


def build_request(delivery: Mapping[str, Any], auth_token: str, *, timeout: float = 15.0) -> WebhookRequest:
    """The signed request for a delivery. For GET the parameters are in the signed URL."""
    method = str(delivery["method"]).upper()
    params: Sequence[tuple[str, str]] = delivery["params"]
    url = request_url(delivery["url"], method, params)
    signature = compute_signature(url, () if method == "GET" else params, auth_token)
    return WebhookRequest(
        url=delivery["url"],
        method=method,
        params=params,
        headers={"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": delivery["idempotency_token"]},
        timeout=timeout,
    )


@dataclass(frozen=True)
class Redirected:
    """A request answered with a redirect, which was followed to `location` (its Location
    read against `url`)."""

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
class Followed:
    """A request and the redirects it was answered with. `url`, `method` and `params` are
    those of the last request, which `response` (or `error`) is from; the requests before it
    are in `redirected`. `error` is set when no answer came, or a redirect was not followed."""

    url: str
    method: str
    params: list[tuple[str, str]]
    response: WebhookResponse | None = None
    error: WebhookError | None = None
    elapsed_ms: float = 0.0
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
) -> Followed:
    done = Followed(url=url, method=method, params=list(params))
    req = build_request({**delivery, "url": url, "method": method, "params": list(params)}, token, timeout=timeout)
    started = time.perf_counter()
    try:
        done.response = await sender.send(req)
    except WebhookError as exc:
        done.error = exc
        done.elapsed_ms = (time.perf_counter() - started) * 1000
        return done
    done.elapsed_ms = done.response.elapsed_ms
    return done


async def follow(
    sender: WebhookSender,
    token: str,
    delivery: Mapping[str, Any],
    url: str,
    method: str,
    params: Sequence[tuple[str, str]],
    timeout: float,
    *,
    answer: WebhookResponse | None = None,
) -> Followed:
    """Request `url`, following the redirects it answers with, all within `timeout` seconds.
    `answer`: its answer, when the caller has made that first request already (then
    `timeout` is what is left of its time)."""
    started = time.perf_counter()
    redirected: list[Redirected] = []
    while True:
        if answer is not None:
            done = Followed(url=url, method=method, params=list(params), response=answer, elapsed_ms=answer.elapsed_ms)
            answer = None
        else:
            left = max(0.0, timeout - (time.perf_counter() - started))
            done = await _request(sender, token, delivery, url, method, params, left)
        done.redirected = redirected
        if done.response is None or not is_redirect(done.response.status):
            return done
        status = done.response.status
        if len(redirected) == MAX_HTTP_REDIRECTS:
            detail = f"more than {MAX_HTTP_REDIRECTS} HTTP redirects in a row, the last to {url_for_log(url)}"
            done.error = WebhookError(TOO_MANY_REDIRECTS, detail, retryable=False, status=status)
            return done
        try:
            hop = next_hop(status, done.response.headers, url, method)
        except InvalidRedirect as exc:
            done.error = WebhookError(INVALID_REDIRECT, exc.detail, retryable=False, status=status)
            return done
        redirected = [*redirected, Redirected(url, method, done.response, hop.url)]
        # A GET's parameters are in its URL, which the Location replaces: none are added to it.
        url, method, params = hop.url, hop.method, params if hop.method != "GET" else []
