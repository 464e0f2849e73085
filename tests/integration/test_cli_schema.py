"""Only `pigeon serve`, `pigeon worker` and `pigeon db upgrade` migrate a store. Every other
command that opens it, on a store whose schema is not this release's newest, stops with one
line naming both revisions, exit status 2, and leaves the schema where it was: a store taken
back with `pigeon db downgrade` for an older release stays there, and a store shared with
older processes is not migrated under them by a `pigeon logs` run from a newer host. On
SQLite and PostgreSQL, through the commands themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from pigeon.bootstrap import FirstRun, ensure_first_account
from pigeon.cli import app
from pigeon.store.engine import Database
from pigeon.store.schema import current_revision, revisions
from pigeon.testing import FrozenClock
from tests.conftest import drop_pg_database, make_pg_database

HEAD = revisions()[-1].id


def pigeon(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def commands(first: FirstRun) -> list[list[str]]:
    """Every command that opens the store, as an operator would run them."""
    account, sender = first.account["sid"], first.numbers[0]["phone_number"]
    return [
        ["logs", "--limit", "1"],
        ["logs", "--export", "json"],
        ["accounts", "list", "--show-tokens"],
        ["accounts", "create"],
        ["accounts", "geo", account, "--allow", "US"],
        ["keys", "list"],
        ["numbers", "list"],
        ["inventory", "list"],
        ["services", "list"],
        ["alerts"],
        ["requests"],
        ["usage"],
        ["carriers"],
        ["optouts", "list"],
        ["erase", "+14155550101"],
        ["send", "--to", "+14155552671", "--from", sender, "--body", "hi"],
        ["simulate", "inbound", "--from", "+14155552671", "--to", sender, "--body", "hi"],
        ["doctor", "message", "--to", "+14155550101"],
        ["doctor", "blocked", "--to", "+14155550123", "--from", sender],
        ["doctor", "duplicates"],
        ["doctor", "number", sender, "--no-test-request"],
    ]


def _refused(done: Result, expected: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert done.stdout == ""


@pytest.fixture
def store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Database, FirstRun]]:
    """A store at the newest revision with an account and two numbers."""
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    db = Database.from_url(database_url)
    first = ensure_first_account(db, FrozenClock())
    assert first is not None
    yield db, first
    db.dispose()


def test_a_store_taken_back_is_refused_by_every_command_and_stays_back(store: tuple[Database, FirstRun]) -> None:
    db, first = store
    down = pigeon("db", "downgrade", "0016", "--yes")
    assert down.exit_code == 0, down.output
    for args in commands(first):
        _refused(pigeon(*args), f"the store's schema is at 0016; this release needs {HEAD}: run `pigeon db upgrade`")
        assert current_revision(db.engine) == "0016", f"`pigeon {' '.join(args)}` migrated the store"
    # What the refusal says to run brings it back, and the commands work again.
    assert pigeon("db", "upgrade").exit_code == 0
    assert current_revision(db.engine) == HEAD
    shown = pigeon("accounts", "list", "--show-tokens", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)[0]["auth_token"] == first.account["auth_token"]


def test_a_store_a_newer_release_made_is_refused_as_before(store: tuple[Database, FirstRun]) -> None:
    db, _ = store
    with db.write() as conn:  # as a newer release leaves it
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    for args in (["logs"], ["accounts", "list"], ["doctor", "message", "--to", "+14155550101"]):
        _refused(pigeon(*args), "revision 9999, which this release of Pigeon does not know: a newer release made it")
    assert current_revision(db.engine) == "9999"


@pytest.mark.postgres
def test_a_database_without_a_schema_is_refused_and_left_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new PostgreSQL database: `pigeon db upgrade` (or starting Pigeon) makes the schema,
    not the first command that happens to be run on it."""
    name, url = make_pg_database("template0")
    try:
        monkeypatch.setenv("PIGEON_DATABASE_URL", url)
        for args in (["accounts", "create"], ["logs"], ["doctor", "duplicates"]):
            _refused(pigeon(*args), f"the store has no schema yet; this release needs {HEAD}: run `pigeon db upgrade`")
        db = Database.from_url(url)
        try:
            assert current_revision(db.engine) is None
            assert pigeon("db", "upgrade").exit_code == 0
            assert current_revision(db.engine) == HEAD
            assert pigeon("accounts", "create").exit_code == 0
        finally:
            db.dispose()
    finally:
        drop_pg_database(name)


def test_send_on_a_store_without_an_account_says_so(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store made by `pigeon db upgrade` has no account yet: `pigeon send` says that, not
    that there are several to choose from."""
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    assert pigeon("db", "upgrade").exit_code == 0
    done = pigeon("send", "--to", "+14155552671", "--from", "+14155550100", "--body", "hi")
    assert done.exit_code != 0
    assert "no account yet" in done.stderr and "Several" not in done.stderr, done.stderr
