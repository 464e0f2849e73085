"""Requests whose path or query holds a NUL character (``%00``) are refused with 20422.

PostgreSQL's text types cannot hold NUL, so such a value reached the store only to fail
there: ``GET …/Messages.json?To=%00`` was a 500 on PostgreSQL and an empty page on SQLite.
No SID, number or filter can contain NUL, so the request is refused here, the same on both
stores, before any handler reads it (and is still in the request log, its path written with
``%00``). A form body's NUL is refused where the form is read (`pigeon.api.context.form`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pigeon.api.errors import error_response
from pigeon.domain.errors import ApiError


def refusal(where: str) -> ApiError:
    return ApiError(
        20422, f"The request's {where} holds a NUL character (%00), which no parameter may hold; nothing was done."
    )


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = "path" if "\x00" in scope["path"] else "query" if b"%00" in scope["query_string"] else None
            if where is not None:
                problem = refusal(where)
                scope.setdefault("state", {})["error_code"] = problem.code  # for the request log
                await error_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)
