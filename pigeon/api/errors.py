"""Every error the API answers, as Twilio's error body: {code, message, more_info, status}.

Handlers raise `ApiError` (pigeon.domain.errors); this module is the one place that turns
it, and anything unexpected, into a response. Twilio's SDKs read `code` and `message`.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from pigeon.api.concurrency import RETRY_AFTER
from pigeon.domain.errors import ApiError, StoreUnavailable
from pigeon.logs import mark_logged

log = logging.getLogger(__name__)


def error_body(exc: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "more_info": exc.more_info,
        "status": exc.status,
    }
    detail = getattr(exc, "detail", None)
    if detail:
        body["detail"] = detail
    return body


def error_response(exc: ApiError) -> JSONResponse:
    headers = None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Basic realm="Pigeon API"'}
    elif exc.status == 429:
        headers = {"Retry-After": str(RETRY_AFTER)}
    return JSONResponse(error_body(exc), status_code=exc.status, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    request.state.error_code = exc.code
    return error_response(exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = ApiError(20004, f"Method {request.method} is not allowed on {request.url.path}.", status=405)
    elif exc.status_code == 404:
        err = ApiError(20404, f"The requested resource {request.url.path} was not found", status=404)
    else:
        err = ApiError(20500 if exc.status_code >= 500 else 20001, str(exc.detail), status=exc.status_code)
    request.state.error_code = err.code
    response = error_response(err)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = allowed_methods(request)
    return response


def allowed_methods(request: Request) -> str:
    """Every method the request's path takes, for a 405's Allow (RFC 9110 §15.5.6). The
    router's own Allow names only the first route the path matched, and a path's methods are
    often routes of their own (GET lists, POST creates)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def store_unavailable_handler(request: Request, exc: Exception) -> Response:
    """The database is unavailable (out of reach, or full) and nothing was written: 503
    (Twilio's 20503), which tells a client that the same request may simply be sent again,
    where a 500 leaves it to wonder whether it took effect. One line in the log, not a
    traceback per request: while the database is down every request ends here."""
    log.warning(
        "answered 503: %s", exc, extra={"path": request.url.path, "method": request.method, "error_code": 20503}
    )
    request.state.error_code = 20503
    err = ApiError(
        20503, "Pigeon's database is unavailable at the moment; nothing was done. Try again shortly.", status=503
    )
    response = error_response(err)
    response.headers["Retry-After"] = str(StoreUnavailable.retry_after)
    return response


#: What the request log and the metrics record for a request whose client went away before
#: its body arrived (nginx's "client closed request"): not a 5xx, which is Pigeon's fault.
CLIENT_CLOSED = 499


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    """The client went away before its request's body arrived, so nothing was done and no one
    is left to answer. That is routine (a client's timeout, a proxy cutting a slow upload):
    one line at info rather than an error with a traceback."""
    log.info("client went away before its request arrived", extra={"path": request.url.path, "method": request.method})
    return Response(status_code=CLIENT_CLOSED)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
    mark_logged(exc)  # Starlette raises it on to uvicorn, which would log it again
    request.state.error_code = 20500
    response = error_response(ApiError(20500, "An internal error occurred; it has been logged.", status=500))
    # Starlette raises the error on to uvicorn once this is sent, and uvicorn then closes the
    # connection: said here, a pooled client (the twilio SDK's requests.Session) opens a new
    # one for its next request instead of sending it down a closing one (a reset).
    response.headers["Connection"] = "close"
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: api_error_handler,
    StoreUnavailable: store_unavailable_handler,
    ClientDisconnect: client_disconnect_handler,
    HTTPException: http_exception_handler,
    Exception: unexpected_error_handler,
}
