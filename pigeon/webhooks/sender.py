"""The WebhookSender on httpx: one pooled client, Twilio's timeouts, httpx errors made domain errors.

The sender performs one request and reports what came back; it never judges an HTTP status
(a 500 is a response, not an exception) — the use case decides what counts as delivered.
It raises `WebhookError` only when no response came back:

    httpx.ConnectError, ConnectTimeout      11205  retryable   (receiver down, refused, DNS)
    ReadTimeout, WriteTimeout, PoolTimeout,
    the total time budget running out       11205  retryable   (receiver too slow)
    RemoteProtocolError                     11206  retryable   (connection dropped mid-answer)
    InvalidURL, UnsupportedProtocol         11200  permanent   (the URL can never work)
    any other httpx.HTTPError               11200  retryable

Timeouts follow Twilio (REFERENCE.md §e): 5 s to connect, 15 s for the whole exchange. httpx
has no total timeout of its own, so the whole request runs under ``asyncio.timeout``.
Redirects are not followed: the signature covers the URL we were given, so a redirect target
could not validate it; a 3xx is reported like any other non-2xx answer.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import httpx

from pigeon.domain.errors import WebhookError
from pigeon.domain.signatures import request_url
from pigeon.ports import WebhookRequest, WebhookResponse

__all__ = ["MAX_RESPONSE_BYTES", "USER_AGENT", "HttpxWebhookSender"]

USER_AGENT = "TwilioProxy/1.1"
#: We read at most this much of an answer: enough for any TwiML reply (Twilio's own limit,
#: 11750), and a receiver streaming an endless body cannot hold a worker.
MAX_RESPONSE_BYTES = 64 * 1024


def _translate(exc: httpx.HTTPError | httpx.InvalidURL) -> WebhookError:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return WebhookError(11205, f"could not connect ({detail})", retryable=True)
    if isinstance(exc, httpx.TimeoutException):
        return WebhookError(11205, f"no answer in time ({detail})", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        return WebhookError(11206, f"the receiver broke the HTTP exchange ({detail})", retryable=True)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return WebhookError(11200, f"the URL cannot be requested ({detail})", retryable=False)
    return WebhookError(11200, detail, retryable=True)


class HttpxWebhookSender:
    """Sends webhook requests over one shared, pooled `httpx.AsyncClient`."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_connections: int = 100,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._total = total_timeout
        self._max_bytes = max_response_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            # Customers' receivers are reached directly, never through an operator's HTTP proxy
            # variables meant for something else.
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

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
            content = urlencode(list(request.params)).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(min(request.timeout, self._total)):
                status, response_headers, body = await self._exchange(method, url, headers, content)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is not an HTTPError
            raise _translate(exc) from exc
        except TimeoutError as exc:
            raise WebhookError(11205, "no complete answer within the time limit", retryable=True) from exc
        return WebhookResponse(
            status=status,
            headers=response_headers,
            body=body,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    async def _exchange(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        async with self._client.stream(method, url, headers=headers, content=content) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= self._max_bytes:
                    break  # leaving the block closes the connection: the rest is never read
            return response.status_code, dict(response.headers), bytes(body[: self._max_bytes])
