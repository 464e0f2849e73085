"""Composition root: Settings in, a wired application out. The only module where the store,
the carriers, the webhook sender, the workers and the API meet."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from pigeon.api.app import create_app
from pigeon.api.context import ApiContext
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.config import Settings
from pigeon.ports import Clock, SystemClock
from pigeon.store import accounts as account_store
from pigeon.store.accept import AcceptWriter
from pigeon.store.engine import Database
from pigeon.store.schema import upgrade

log = logging.getLogger(__name__)


@dataclass
class FirstRun:
    """What the first start of an empty store created, to show the operator once."""

    account: dict[str, Any]
    numbers: list[dict[str, Any]]


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    db = Database.from_url(settings.database_url)
    if migrate:
        upgrade(db.engine)
    return db


def ensure_first_account(db: Database, clock: Clock) -> FirstRun | None:
    """On an empty store: one account with two SMS-capable numbers, so `make run` can send at once."""
    with db.write() as conn:
        if account_store.count_accounts(conn) > 0:
            return None
        now = clock.now()
        account = account_use.create_account(conn, friendly_name="Pigeon account", now=now)
        made: list[dict[str, Any]] = []
        while len(made) < 2:
            candidate = f"+1415555{secrets.randbelow(8000) + 2000:04d}"
            if any(n["phone_number"] == candidate for n in made):
                continue
            made.append(number_use.provision(conn, account_sid=account["sid"], phone_number=candidate, now=now))
        return FirstRun(account=account, numbers=made)


def build_api(settings: Settings, db: Database, *, clock: Clock | None = None) -> Starlette:
    writer = AcceptWriter(
        db.engine, max_batch=settings.accept_batch_max, max_wait=settings.accept_batch_wait_ms / 1000.0
    )
    context = ApiContext(db=db, writer=writer, clock=clock or SystemClock(), base_url=settings.base_url)
    return create_app(context)
