"""What every handler needs, built once by the composition root and kept on app.state."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from starlette.requests import Request

from pigeon.api.concurrency import AccountConcurrency, admit
from pigeon.api.forms import parse_form
from pigeon.app import accounts
from pigeon.app.queue_gauge import QueueGauge
from pigeon.domain.errors import AuthenticationError
from pigeon.domain.idempotency import DUPLICATE_WINDOW
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.pricing import PriceTable
from pigeon.ports import Clock
from pigeon.store.accept import AcceptWriter
from pigeon.store.engine import Database

T = TypeVar("T")


@dataclass
class ApiContext:
    db: Database
    writer: AcceptWriter
    clock: Clock
    base_url: str
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    #: The same content to the same recipient within this long, without an Idempotency-Key,
    #: raises a duplicate-warning alert (0 turns the check off).
    duplicate_window: timedelta = DUPLICATE_WINDOW
    #: Queue lengths for the 21611 check, read from the store at most once a second per sender.
    queue_gauge: QueueGauge = field(default_factory=QueueGauge)
    #: PIGEON_MESSAGE_DAYS, for the doctor to tell a message the retention removed.
    message_days: float = 0.0
    #: Requests of one account in progress at once (PIGEON_API_CONCURRENCY_PER_ACCOUNT; 0: any).
    concurrency: AccountConcurrency = field(default_factory=lambda: AccountConcurrency(0))
    #: PIGEON_WEBHOOK_DENIED_NETWORKS, for the doctor's test requests.
    webhook_denied_networks: tuple[str, ...] = ()
    #: The price table: received messages are priced by its inbound prices, and Usage Records
    #: report prices in its currency.
    prices: PriceTable = field(default_factory=PriceTable)
    #: PIGEON_MEDIA_BASIC_AUTH: media content URLs need credentials (default: public, as on Twilio).
    media_basic_auth: bool = False

    @property
    def price_unit(self) -> str:
        return self.prices.unit


def ctx(request: Request) -> ApiContext:
    value: ApiContext = request.app.state.ctx
    return value


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking store work off the event loop, in the loop's default executor. Its few
    threads (cores + 4) are all the store work one process can use under the GIL; Starlette's
    pool of forty only adds threads queueing for the GIL."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def store_read(db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run read-only store work. On SQLite it runs right here on the event loop: a read is a
    few hundred microseconds of local work that never waits for a lock (WAL readers do not
    wait for the writer), and handing it to a thread costs more CPU than the read itself.
    On PostgreSQL a read waits on the network, so it goes to a thread. Only for work that
    reads: a write may wait for the write lock, which the event loop must never do."""
    if db.is_sqlite:
        return fn(*args, **kwargs)
    return await in_thread(fn, *args, **kwargs)


def basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AuthenticationError("Authentication Error - No credentials provided")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationError("Authentication Error - invalid username") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise AuthenticationError("Authentication Error - invalid username")
    return username, password


async def authorized_account(request: Request, account_sid: str) -> dict[str, Any]:
    """The account in the URL, after checking the Basic credentials may act on it."""
    credentials = basic_credentials(request)
    c = ctx(request)

    def check() -> dict[str, Any]:
        with c.db.lookup() as conn:
            return check_access(conn, request, credentials, account_sid)

    return await store_read(c.db, check)


def changes(request: Request) -> bool:
    """Whether the request sends or changes something, which an account that is not active may
    not do (20005); a read (GET, and the HEAD that answers like it) is let through, as Twilio
    keeps a suspended or closed subaccount's history readable. A closed account's own
    credentials still end with it (`accounts.authenticate_account`): its history is read with
    its parent's."""
    return request.method not in ("GET", "HEAD")


def check_access(conn: Any, request: Request, credentials: tuple[str, str], account_sid: str) -> dict[str, Any]:
    """`authorized_account` inside a read the caller has open (a handler that reads anyway
    saves a transaction): the account in the URL, once the credentials may act on it.
    `conn` is the store's Connection, handed on without importing sqlalchemy here."""
    username, password = credentials
    acting = accounts.authenticate_account(conn, username, password)
    request.state.account_sid = acting["sid"]
    admit(request, acting["sid"])
    target = accounts.authorize(
        conn, acting["sid"], account_sid, request.url.path, require_active=changes(request), acting=acting
    )
    request.state.target_account_sid = account_sid  # for the request log
    return target


async def form(request: Request) -> list[tuple[str, str]]:
    """The form fields, in order, blanks kept (pigeon.api.forms)."""
    if request.method == "GET":
        return []
    return parse_form(await request.body())


def first(fields: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in fields:
        out.setdefault(k, v)
    return out
