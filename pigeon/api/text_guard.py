"""Requests whose path or query Pigeon cannot read as the client meant are refused with 20422
before any handler reads them (and are still in the request log).

- A NUL character (``%00``) in the path or query. PostgreSQL's text types cannot hold NUL,
  so such a value reached the store only to fail there: ``GET …/Messages.json?To=%00`` was a
  500 on PostgreSQL and an empty page on SQLite. No SID, number or filter can contain NUL.
  The path is written with ``%00`` in the request log.
- A query parameter whose percent escapes are not UTF-8 (``To=%E9``, Latin-1's "é").
  Starlette reads each bad byte as U+FFFD, so the filter "\ufffd" answered an empty 200 page
  that looked like "no such messages". Refused naming the parameter, as a form's field is
  (pigeon.api.forms), on every route at once, here.

A form body's NUL and non-UTF-8 fields are refused where the form is read
(`pigeon.api.context.form`). A query without "%" (a send's, which has none) costs one scan.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pigeon.api.errors import error_response
from pigeon.api.query import query_not_utf8
from pigeon.domain.errors import ApiError


def refusal(where: str) -> ApiError:
    return ApiError(
        20422, f"The request's {where} holds a NUL character (%00), which no parameter may hold; nothing was done."
    )


def _problem(scope: Scope) -> ApiError | None:
    if "\x00" in scope["path"]:
        return refusal("path")
    query: bytes = scope["query_string"]
    if b"%" not in query:  # nothing escaped: no NUL, and no byte to read as UTF-8 (servers refuse raw ones)
        return None
    if b"%00" in query:
        return refusal("query")
    return query_not_utf8(query)


class TextGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (problem := _problem(scope)) is not None:
            scope.setdefault("state", {})["error_code"] = problem.code  # for the request log
            await error_response(problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)
