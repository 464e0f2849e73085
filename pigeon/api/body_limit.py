"""The most bytes a request body may have (Twilio's 20413), read no further than that.

Starlette reads a form whole into memory, and uvicorn sets no limit of its own: without this,
one POST of a few gigabytes (by mistake or on purpose, to the sign-in form as well, which
asks for no credentials) would take the process's memory. The largest send the API takes is
well under the limit: 1,600 characters of body, percent-encoded at up to nine bytes each,
and ten media URLs.

A body that announces a larger Content-Length is refused before any of it is read; one sent
in chunks is refused as soon as it passes the limit (the handler reading it gets the error).
Either way the answer is 413 with error 20413, nothing was done, and uvicorn closes the
connection instead of reading the rest.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.api.errors import error_response
from pigeon.domain.errors import ApiError

#: The largest request body, in bytes.
MAX_BODY_BYTES = 64 * 1024


def too_large(limit: int, announced: int | None = None) -> ApiError:
    size = f"{announced} bytes, more than" if announced is not None else "more than"
    return ApiError(
        20413, f"The request body is {size} the {limit} bytes the API accepts; nothing was done.", status=413
    )


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        if announced is not None and announced > self.limit:
            refusal = too_large(self.limit, announced)
            scope.setdefault("state", {})["error_code"] = refusal.code  # for the request log
            await error_response(refusal)(scope, receive, send)
            return
        limit, received = self.limit, 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # uvicorn refuses a malformed length before the app sees it
    return None
