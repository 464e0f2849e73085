"""How many requests one account may have in progress at once in an API process (20429).

A client that opens hundreds of requests at once (a retry loop with no pause, a batch job
with unbounded parallelism) would otherwise take the event loop, the store's connections and
its writer from every other account this server answers. Past `limit` requests of one
account in progress, the next is answered 429 with Twilio's error 20429 and `Retry-After`,
at once and having done nothing: Twilio's SDKs raise it like any API error, and a retry
later is safe.

What counts is the account the credentials act as (a parent acting on its subaccounts counts
as the parent), from the moment the credentials are checked, so a request that fails them
takes no slot, and a caller without them cannot use up someone else's. A slot is held until
the response has been sent, a streamed export included. The count is per API process: with
`--api-processes N` an account may have up to N times `limit` in progress. It lives only in
the process's memory because it is only about requests that process is serving now.
"""

from __future__ import annotations

import threading

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pigeon.domain.errors import ApiError

#: Where a request's slot is noted, in the request's state (`scope["state"]`).
_SLOT = "concurrency_slot"
#: Seconds a refused client is asked to wait.
RETRY_AFTER = 1


class AccountConcurrency:
    """The requests in progress per account; `limit` 0 counts nothing and refuses nothing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_progress: dict[str, int] = {}
        # Credentials are checked on the event loop (SQLite) or in a thread (PostgreSQL).
        self._lock = threading.Lock()

    def admit(self, request: Request, account_sid: str) -> None:
        """Take a slot of `account_sid` for `request`, whose credentials act as it, or raise
        ApiError 20429. A request takes one slot however often its credentials are checked."""
        if self.limit <= 0 or _SLOT in request.scope.setdefault("state", {}):
            return
        with self._lock:
            held = self._in_progress.get(account_sid, 0)
            if held >= self.limit:
                raise ApiError(
                    20429,
                    f"Account {account_sid} already has {held} requests in progress, as many as this "
                    "server takes at once from one account; nothing was done. Retry after a pause.",
                )
            self._in_progress[account_sid] = held + 1
        request.scope["state"][_SLOT] = account_sid

    def release(self, scope: Scope) -> None:
        account_sid = scope.get("state", {}).pop(_SLOT, None)
        if account_sid is None:
            return
        with self._lock:
            left = self._in_progress[account_sid] - 1
            if left:
                self._in_progress[account_sid] = left
            else:
                del self._in_progress[account_sid]

    def in_progress(self, account_sid: str) -> int:
        with self._lock:
            return self._in_progress.get(account_sid, 0)


def admit(request: Request, account_sid: str) -> None:
    """`AccountConcurrency.admit` with the app's own counter (none in an app built without one)."""
    gate: AccountConcurrency | None = getattr(request.app.state, "concurrency", None)
    if gate is not None:
        gate.admit(request, account_sid)


class ConcurrencyMiddleware:
    """Gives back a request's slot once its response is over, however it ended. A pure ASGI
    middleware, like the request log's: no task or stream of its own per request."""

    def __init__(self, app: ASGIApp, *, gate: AccountConcurrency) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release(scope)
