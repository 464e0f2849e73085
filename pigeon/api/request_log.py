"""Logs every API request, and names it in a `Twilio-Request-Id: RQ…` response header.

A pure ASGI middleware (BaseHTTPMiddleware would add a task and a stream per request).
What it records comes from three places: the request line and headers; the status the
response started with; and what the handlers left in the request's state
(`scope["state"]`): the account they authenticated, the Twilio error code the error
handlers answered with, the SID a create made, and for sends the numbers and content
hash (`send_summary`). Never a body, never the Authorization header.

Rows go to a `RequestLogWriter` queue after the response is sent; the response never
waits for the store.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.domain.sids import Prefix, is_sid, new_sid
from pigeon.ports import Clock

log = logging.getLogger(__name__)

#: The paths that are the API: not /healthz, /metrics or the console.
LOGGED_PREFIXES = ("/2010-04-01/", "/v1/", "/v2/")
#: Paths that name a phone number (Lookup's, the doctor's of a number): logged without it, so
#: that the log holds no number that `pigeon erase` would not find (it looks in the columns of
#: sends). `route` is kept, then "(number)", then `json` if the path has it.
_NUMBER_PATHS = (
    re.compile(r"(?P<route>/v2/PhoneNumbers/).+", re.DOTALL),
    re.compile(r"(?P<route>/2010-04-01/Accounts/[^/]+/Doctor/Numbers/).+?(?P<json>\.json)?", re.DOTALL),
)
REQUEST_ID_HEADER = b"twilio-request-id"
#: A SID in the path. The resource a request addressed is the first one after the account:
#: the message of /Messages/SM…/Media/ME….json, the service of /v1/Services/MG…/PhoneNumbers.
_PATH_SID = re.compile(r"/([A-Z]{2}[0-9a-fA-F]{32})(?=[/.]|$)")
#: The account a 2010-04-01 path names.
_PATH_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})(?=[/.]|$)")


class RequestSink(Protocol):
    """Where rows go: `pigeon.store.request_log.RequestLogWriter` (queue, never wait)."""

    def submit(self, row: dict[str, Any]) -> bool: ...


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _addressed_sid(path: str) -> str | None:
    sids = [s for s in _PATH_SID.findall(path) if not s.startswith(str(Prefix.ACCOUNT))]
    return sids[0] if sids else None


class RequestLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        writer: RequestSink,
        clock: Clock,
        proxy_hops: int = 0,
    ) -> None:
        """`proxy_hops`: how many reverse proxies in front of the server append to
        X-Forwarded-For. 0 (the default) ignores the header, which any client can forge;
        with n, the source address is the n-th entry from the right, the one the outermost
        trusted proxy saw."""
        self.app = app
        self.writer = writer
        self.clock = clock
        self.proxy_hops = proxy_hops

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LOGGED_PREFIXES):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        at = self.clock.now()
        sid = new_sid(Prefix.REQUEST)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_sid"] = sid
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (REQUEST_ID_HEADER, sid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Unhandled: Starlette's outermost middleware answers 500 after us.
            state.setdefault("error_code", 20500)
            status = 500
            raise
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            try:
                self.writer.submit(self._row(scope, state, sid=sid, at=at, status=status, duration_ms=duration_ms))
            except Exception:  # the log must never break a request
                log.exception("could not log request")

    def _row(self, scope: Scope, state: dict[str, Any], **values: Any) -> dict[str, Any]:
        headers = scope.get("headers") or []
        path: str = scope["path"]
        summary = state.get("send_summary") or (None, None, None)
        resource = state.get("created_sid") or _addressed_sid(path)
        account = self._account(scope, state)
        claimed = _PATH_ACCOUNT.match(path) if account is None else None
        return {
            **values,
            "account_sid": account,
            # Its credentials refused, or never checked (the store was out of reach): the
            # account the URL names, kept apart from the proven one (store/tables.py).
            "claimed_account_sid": claimed.group(1) if claimed else None,
            "method": scope["method"],
            # As it came on the wire: a NUL (refused by pigeon.api.text_guard) cannot be stored.
            "path": _without_numbers(path).replace("\x00", "%00"),
            "error_code": state.get("error_code"),
            "resource_sid": resource if resource and is_sid(resource) else None,
            "source_ip": self._source(scope, headers),
            "user_agent": _header(headers, b"user-agent"),
            "idempotency_key": _header(headers, b"idempotency-key"),
            "to": summary[0],
            "from_": summary[1],
            "content_hash": summary[2],
        }

    @staticmethod
    def _account(scope: Scope, state: dict[str, Any]) -> str | None:
        """The account the request acted on (the one in the URL, once the credentials were
        found to reach it), else the one the credentials authenticated, else none."""
        account = state.get("target_account_sid") or state.get("account_sid")
        return account if isinstance(account, str) and is_sid(account, Prefix.ACCOUNT) else None

    def _source(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The n-th X-Forwarded-For entry from the right with `proxy_hops` n, else the peer.

        Every X-Forwarded-For line counts, joined with "," in order (RFC 9110 §5.3): a proxy
        may add a line of its own rather than extend the client's (HAProxy's `option
        forwardfor`, Envoy), and the first line alone is the client's to forge. The peer is
        the connection's: uvicorn rewrites nothing from the headers (pigeon.serving)."""
        if self.proxy_hops > 0:
            forwarded = ",".join(v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                return hops[-min(self.proxy_hops, len(hops))]
        client = scope.get("client")
        return str(client[0]) if client else None


def _without_numbers(path: str) -> str:
    for pattern in _NUMBER_PATHS:
        found = pattern.fullmatch(path)
        if found:
            return found["route"] + "(number)" + (found.groupdict().get("json") or "")
    return path
