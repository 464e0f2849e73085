"""The WebhookSender: one signed request to a customer's URL, its answer, errors made domain errors.

The sender performs one request and reports what came back; it never judges an HTTP status
(a 500 is a response, not an exception) — the use case decides what counts as delivered.
It raises `WebhookError` only when no response came back:

    could not connect, connect timeout       11205  retryable   (receiver down, refused)
    no answer in time (read or total)        11205  retryable   (receiver too slow)
    the host name does not resolve (DNS)     11210  retryable
    TLS handshake failed (reset, not TLS)    11220  retryable
    certificate issued for another name      11235  retryable   (the operator may fix
    certificate expired or not yet valid     11236  retryable    the certificate; retries
    certificate not trusted (self-signed…)   11237  retryable    are bounded anyway)
    connection dropped, broken answer        11206  retryable
    a URL that is not http(s) or not a URL   11200  permanent   (the URL can never work)
    any other client error                   11200  retryable

Twilio reports DNS, TLS and certificate failures with their own codes, and so do we: "could
not connect" sends an operator to check the host is up, while "the certificate expired" says
what to fix.

Timeouts follow Twilio (REFERENCE.md §e): 5 s to connect, 15 s for the whole exchange.
The sender does not follow redirects: a 3xx is an answer like any other. The signature covers
the URL it was given, and only the caller holds the account's token to sign another: the
incoming-message webhook and status callbacks follow redirects themselves, each hop a request
signed for its own URL (`pigeon.app.webhook_requests`); Event Streams report a 3xx as a failed
attempt. The URL goes out as `domain.signatures.wire_url` writes it (what is not ASCII in it
percent-encoded, nothing else re-encoded), since that is the text the signature covers. Receivers are reached directly (no proxy from the environment), and
no cookie is ever kept: one sender serves every account, and one account's cookie must never
reach another's receiver.

Why our own HTTP/1.1 client (`http1.py`, `pool.py`: asyncio protocols and httptools' parser)
and not a library: every message costs three status callbacks, and in the end-to-end bench the
worker processes spent about half their CPU on them. Measured on this machine against a local
receiver answering 204 (100 concurrent senders, 20,000 form POSTs of a status callback's
parameters, uvloop), aiohttp's client cost 92-106 µs of CPU per request (httpx's, earlier,
2.2 ms) and this one 24-27 µs; swapping in a first prototype of it raised the end-to-end
throughput by about 10 %. What we give up is only what webhooks never use: HTTP/2, proxies,
cookies, redirects (followed above the sender, where they are), streaming request bodies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import time
from collections.abc import Iterable
from urllib.parse import quote_plus

from pigeon.domain.errors import WebhookError
from pigeon.domain.signatures import request_url
from pigeon.ports import WebhookRequest, WebhookResponse
from pigeon.webhooks.http1 import (
    AddressDenied,
    CertificateRejected,
    ConnectError,
    HTTPError,
    InvalidRequest,
    NameNotResolved,
    ProtocolError,
    TLSFailed,
)
from pigeon.webhooks.pool import Network, Pool

__all__ = ["MAX_RESPONSE_BYTES", "USER_AGENT", "HttpWebhookSender", "form_body"]

USER_AGENT = "TwilioProxy/1.1"
#: We read at most this much of an answer, so that a receiver streaming an endless body cannot
#: hold a worker: one byte past the 64 kB that TwiML may take (Twilio's limit, 11750), so that
#: an answer over the limit is seen to be over it, not read as a cut-off document (12100).
MAX_RESPONSE_BYTES = 64 * 1024 + 1
#: Sent unless a request gives its own. No Accept-Encoding: a compressed answer is inflated
#: all the same, but asking for one would only cost CPU on both sides for a short body.
DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept": "*/*"}


#: Text that form encoding leaves as it is (letters, digits and ``_.-~``, as `quote_plus`).
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*\Z").match


def form_body(params: Iterable[tuple[str, str]]) -> bytes:
    """`urllib.parse.urlencode(params)`, as bytes, for less CPU: most of a status callback's
    names and values (SIDs, statuses, the API version) need no escaping, and `quote_plus` costs
    a few microseconds even then (a status callback has about fifteen of each; measured 9 µs a
    request of 110 in all)."""
    return "&".join(
        f"{name if _PLAIN(name) else quote_plus(name)}={value if _PLAIN(value) else quote_plus(value)}"
        for name, value in params
    ).encode("ascii")


#: The code and the words for each way a certificate fails to verify.
_CERTIFICATE = {
    "name": (11235, "the server's TLS certificate is for another host name"),
    "expired": (11236, "the server's TLS certificate has expired or is not valid yet"),
    "untrusted": (11237, "the server's TLS certificate is not trusted (self-signed, or its chain is incomplete)"),
}


def _translate(exc: HTTPError) -> WebhookError:
    if isinstance(exc, InvalidRequest):
        return WebhookError(11200, f"the URL cannot be requested ({exc})", retryable=False)
    if isinstance(exc, AddressDenied):
        return WebhookError(11205, f"the receiver's address is not allowed ({exc})", retryable=False)
    if isinstance(exc, NameNotResolved):
        return WebhookError(11210, f"the host name does not resolve ({exc})", retryable=True)
    if isinstance(exc, CertificateRejected):
        code, text = _CERTIFICATE[exc.problem]
        return WebhookError(code, f"{text} ({exc})", retryable=True)
    if isinstance(exc, TLSFailed):
        return WebhookError(11220, f"the TLS handshake failed ({exc})", retryable=True)
    if isinstance(exc, ConnectError):
        return WebhookError(11205, f"could not connect ({exc})", retryable=True)
    if isinstance(exc, ProtocolError):
        return WebhookError(11206, f"the receiver broke the HTTP exchange ({exc})", retryable=True)
    return WebhookError(11200, str(exc) or type(exc).__name__, retryable=True)


class HttpWebhookSender:
    """Sends webhook requests over one keep-alive pool, made on first use in the event loop
    that uses it: the sender may be built before any loop runs (the composition root does),
    and a pool's connections belong to one loop."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_connections: int = 100,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        tls: ssl.SSLContext | None = None,
        denied_networks: Iterable[str] = (),
    ) -> None:
        """`tls` verifies https receivers (default: the system's trusted CAs, with certificate
        and host name checks). `denied_networks`: CIDR blocks no request may go to (a cloud's
        metadata service, say), whatever name a URL gives; ValueError for one that is not a
        network."""
        self._denied: tuple[Network, ...] = tuple(ipaddress.ip_network(n.strip()) for n in denied_networks)
        self._connect = connect_timeout
        self._total = total_timeout
        self._max_connections = max_connections
        self._max_bytes = max_response_bytes
        self._tls = tls
        self._pool: Pool | None = None

    def _pool_here(self) -> Pool:
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool is None or pool.loop is not loop:
            # A pool left on another loop (gone, or still running elsewhere) is not touched
            # from this one; its connections close with that loop.
            pool = self._pool = Pool(
                loop,
                max_connections=self._max_connections,
                connect_timeout=self._connect,
                max_body=self._max_bytes,
                default_headers=DEFAULT_HEADERS,
                tls=self._tls,
                denied=self._denied,
            )
        return pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and pool.loop is asyncio.get_running_loop():
            pool.close()
            await asyncio.sleep(0)  # let the closed connections' sockets go before the caller moves on

    async def send(self, request: WebhookRequest) -> WebhookResponse:
        """Perform `request` within min(request.timeout, total_timeout) seconds."""
        method = request.method.upper()
        url = request_url(request.url, method, request.params)
        headers = dict(request.headers)
        content: bytes | None = None
        if request.body is not None:
            content = request.body
            headers.setdefault("Content-Type", request.content_type or "application/octet-stream")
        elif method != "GET":
            content = form_body(request.params)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        started = time.perf_counter()
        pool = self._pool_here()
        deadline = pool.loop.time() + min(request.timeout, self._total)
        try:
            answer = await pool.request(method, url, headers, content, deadline=deadline)
        except TimeoutError as exc:
            raise WebhookError(11205, "no complete answer within the time limit", retryable=True) from exc
        except HTTPError as exc:
            raise _translate(exc) from exc
        return WebhookResponse(
            status=answer.status,
            headers=answer.headers,
            body=answer.body,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )
