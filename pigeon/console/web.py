"""What every console page shares: the console's state, template rendering, reading a form,
turning errors into pages, and the few formatting helpers the templates use."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pigeon.domain import integers, periods, storable
from pigeon.domain.error_catalogue import ErrorInfo, explain
from pigeon.domain.errors import ApiError, StoreUnavailable
from pigeon.domain.pricing import PriceTable
from pigeon.ports import Clock, WebhookSender
from pigeon.store.engine import Database
from pigeon.store.tables import LARGEST_COLUMN_INTEGER

T = TypeVar("T")
log = logging.getLogger(__name__)
UNEXPECTED = "The console could not show this page; the error has been logged."

HERE = Path(__file__).parent
PAGE_SIZE = 50


@dataclass
class Console:
    """The console's resources, built once per application (kept on the sub-app's state)."""

    db: Database
    clock: Clock
    #: This server's public URL, as webhooks name it (the API's base_url).
    base_url: str
    #: Makes the WebhookSender behind "test webhook"; closed after each test.
    sender_factory: Callable[[], WebhookSender]
    env: Environment = field(init=False)
    secret: bytes | None = None
    #: PIGEON_MESSAGE_DAYS, for the doctor to tell a message the retention removed.
    message_days: float = 0.0
    #: The price table, for the messages the simulated handset sends (None: received ones are free).
    prices: PriceTable | None = None

    def __post_init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html", "svg"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["dt"] = format_datetime
        self.env.filters["ago"] = format_ago
        self.env.filters["pretty"] = pretty_json
        self.env.filters["api_path"] = api_path
        self.env.globals["link"] = link
        self.env.globals["explain"] = explain_code
        self.env.globals["status_class"] = status_class

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in a read transaction, off the event loop: a console page
        reads more than an API call, and a person waits on it, not a client in a hurry."""

        def run() -> T:
            with self.db.read() as conn:
                return fn(conn, *args)

        return await asyncio.to_thread(run)

    async def history(self, fn: Callable[..., T], *args: Any) -> T:
        """`read`, for pages over history (logs, requests, alerts, charts, the doctor's
        searches): on the read replica when there is one (pigeon/store/replica.py)."""

        def run() -> T:
            with self.db.history() as conn:
                return fn(conn, *args)

        return await asyncio.to_thread(run)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in a write transaction, off the event loop."""

        def run() -> T:
            with self.db.write() as conn:
                return fn(conn, *args)

        return await asyncio.to_thread(run)


def console(request: Request) -> Console:
    value: Console = request.app.state.console
    return value


class SignInRequired(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


class Forbidden(Exception):
    """A POST without a valid CSRF token, or from another origin."""


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    c = console(request)
    session = getattr(request.state, "session", None)
    html = c.env.get_template(template).render(
        root=request.scope.get("root_path", ""),
        session=session,
        csrf=session.csrf if session is not None else getattr(request.state, "login_csrf", ""),
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 See Other to a console path (after a POST, the browser GETs the result)."""
    return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)


async def form_fields(request: Request) -> dict[str, str]:
    data = await request.form()
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    # NUL is refused rather than stored: PostgreSQL cannot hold it (pigeon.domain.storable).
    if (name := storable.nul_parameter(fields.items())) is not None:
        raise ApiError(20422, f"The field {name!r} holds a NUL character, which no field may hold.")
    return fields


# -- error pages ------------------------------------------------------------------------------


async def sign_in_handler(request: Request, exc: Exception) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    root = request.scope.get("root_path", "")
    if request.method != "GET" or request.url.path.endswith(".json"):
        return Response("Sign in first.", status_code=401)
    return RedirectResponse(f"{root}/login?next={quote(target, safe='')}", status_code=303)


async def forbidden_handler(request: Request, exc: Exception) -> Response:
    return render(
        request, "error.html", status_code=403, title="Forbidden", message=str(exc) or "This request was refused."
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return render(request, "error.html", status_code=exc.status, title=f"Error {exc.code}", message=exc.message)


async def store_unavailable_handler(request: Request, exc: Exception) -> Response:
    log.warning("console answered 503: %s", exc, extra={"path": request.url.path, "method": request.method})
    response = render(
        request,
        "error.html",
        status_code=503,
        title="The database is unavailable",
        message="Pigeon's database is unavailable at the moment. Nothing was changed; try again shortly.",
    )
    response.headers["Retry-After"] = str(StoreUnavailable.retry_after)
    return response


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("console error", extra={"path": request.url.path, "method": request.method})
    response = render(request, "error.html", status_code=500, title="Something went wrong", message=UNEXPECTED)
    response.headers["Connection"] = "close"  # uvicorn closes it after a 500 (pigeon.api.errors)
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {
    SignInRequired: sign_in_handler,
    Forbidden: forbidden_handler,
    ApiError: api_error_handler,
    StoreUnavailable: store_unavailable_handler,
    Exception: unexpected_error_handler,
}


# -- formatting -------------------------------------------------------------------------------


def format_datetime(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


_ACCOUNT_PREFIX = re.compile(r"^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}")


def api_path(path: str) -> str:
    """A request path without the /2010-04-01/Accounts/AC… every account's path starts with."""
    return _ACCOUNT_PREFIX.sub("…", path)


#: http:// or https://, or a path on this server ("/v1/Errors/…", not "//host" or "/\\host").
_LINKABLE = re.compile(r"https?://|/(?![/\\])", re.IGNORECASE)


def link(url: str | None) -> Markup:
    """A link to `url` when it is an http:// or https:// URL (or a path on this server), else the
    URL as text. The URLs the console shows are stored data, some from outside (the media of
    inbound messages): autoescaping keeps them from breaking out of the attribute, not a
    `javascript:` one from running on a click. Every href the templates make from stored data
    goes through here."""
    if not url:
        return Markup("")
    if _LINKABLE.match(url.replace("\t", "").replace("\n", "").replace("\r", "")):  # as browsers read it
        return Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url)
    return escape(url)


def explain_code(code: int | None) -> ErrorInfo | None:
    return explain(code) if code else None


_STATUS_CLASSES = {
    "delivered": "ok",
    "received": "ok",
    "sent": "ok",
    "undelivered": "bad",
    "failed": "bad",
    "canceled": "muted",
    "queued": "wait",
    "accepted": "wait",
    "sending": "wait",
    "scheduled": "wait",
}


def status_class(status: str | None) -> str:
    return _STATUS_CLASSES.get(status or "", "")


def parse_day(raw: str | None) -> date | None:
    """A YYYY-MM-DD from a date input, or None when blank or malformed."""
    if not raw:
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def whole_number(raw: str | None) -> int | None:
    """A whole number from a filter field, or None when blank, malformed or larger than the
    store can hold: the console leaves out a filter it cannot use, as it does a malformed date."""
    value = integers.whole_number(raw or "")
    return value if value is not None and value <= LARGEST_COLUMN_INTEGER else None


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def day_end(day: date) -> datetime:
    """Where the day ends (exclusive); 9999-12-31 ends at the calendar's last moment."""
    return periods.end_of(day_start(day), whole_day=True)


def clean(params: Mapping[str, str], *names: str) -> dict[str, str]:
    """The named parameters that are set, stripped."""
    return {n: params[n].strip() for n in names if params.get(n, "").strip()}
