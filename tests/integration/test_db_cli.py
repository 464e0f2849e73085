"""`pigeon db current` and `pigeon db downgrade`, on SQLite and PostgreSQL: a store that holds
data goes back to an earlier revision and up again with its data whole; a downgrade that
cannot be meant (a revision this release does not know, one newer than the store's, a store a
newer release made, no --yes where nobody can be asked) is refused in one line, exit 2, and
changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from pigeon import cli_db
from pigeon.bootstrap import ensure_first_account
from pigeon.cli import app
from pigeon.store.engine import Database
from pigeon.store.schema import current_revision, revisions
from pigeon.store.tables import accounts, phone_numbers
from pigeon.testing import FrozenClock

HEAD = revisions()[-1].id


def pigeon(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def _refused(done: Result, expected: str) -> None:
    """Exit status 2 and one line on standard error, in our words: no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert done.stdout == ""


def _data(db: Database) -> list[tuple[str, ...]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(accounts.c.sid, accounts.c.auth_token, accounts.c.friendly_name)).all()
        numbers = conn.execute(
            sa.select(phone_numbers.c.sid, phone_numbers.c.phone_number).order_by(phone_numbers.c.sid)
        ).all()
    return [tuple(r) for r in [*rows, *numbers]]


@pytest.fixture
def store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A store at the newest revision with an account and two numbers, which the commands use."""
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    db = Database.from_url(database_url)
    assert ensure_first_account(db, FrozenClock()) is not None
    yield db
    db.dispose()


def test_down_to_an_earlier_revision_and_up_again_keeps_the_data(store: Database) -> None:
    before = _data(store)
    assert len(before) == 3
    now = pigeon("db", "current")
    assert now.exit_code == 0 and f"schema at revision {HEAD}, the newest this release knows" in now.stdout

    down = pigeon("db", "downgrade", "0016", "--yes")
    assert down.exit_code == 0, down.output
    said = " ".join(down.stdout.split())
    assert said.startswith(f"schema downgraded from revision {HEAD} to 0016; dropped ")
    assert "accounts.secondary_auth_token" in said and "messages.keyword_reply" in said
    assert current_revision(store.engine) == "0016"
    assert _data(store) == before
    with store.read() as conn:  # the columns the help text names are gone, with their data
        columns = {c["name"] for c in sa.inspect(conn).get_columns("accounts")}
    assert "secondary_auth_token" not in columns and "allowed_countries" in columns

    shown = json.loads(pigeon("db", "current", "--json").stdout)
    assert shown == {"revision": "0016", "newest": HEAD, "known": True, "pending": shown["pending"]}
    assert shown["pending"][0] == "0017" and shown["pending"][-1] == HEAD
    again = pigeon("db", "downgrade", "0016", "--yes")
    assert again.exit_code == 0 and "already at revision 0016" in again.stdout

    up = pigeon("db", "upgrade")
    assert up.exit_code == 0 and f"schema at revision {HEAD}" in up.stdout
    assert _data(store) == before


def test_what_is_refused_changes_nothing(store: Database) -> None:
    before = _data(store)
    _refused(pigeon("db", "downgrade", "0099", "--yes"), "no revision '0099'")
    _refused(pigeon("db", "downgrade", "base", "--yes"), "no revision 'base'")
    # Not at a terminal (a script, a pipe, CI) and no --yes: what it would drop, and no.
    # (what it names grows with every migration after 0018; the last it names is 0019's)
    _refused(pigeon("db", "downgrade", "0018"), "messages.fail_code with their data")
    assert current_revision(store.engine) == HEAD
    assert pigeon("db", "downgrade", "0016", "--yes").exit_code == 0
    _refused(pigeon("db", "downgrade", "0018", "--yes"), "0018 is newer")
    assert current_revision(store.engine) == "0016"
    assert _data(store) == before
    with store.write() as conn:  # as a newer release leaves it
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    _refused(pigeon("db", "downgrade", "0012", "--yes"), "newer release")
    shown = pigeon("db", "current")
    assert shown.exit_code == 0 and "revision 9999, which this release does not know" in shown.stdout


def test_at_a_terminal_it_asks_first(store: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_db, "_at_a_terminal", lambda: True)
    declined = pigeon("db", "downgrade", "0018", stdin="\n")  # the default is no
    assert declined.exit_code == 1 and "undoing 0019 drops messages.fail_code" in declined.stdout
    assert "Nothing was changed" in declined.stderr
    assert current_revision(store.engine) == HEAD
    accepted = pigeon("db", "downgrade", "0018", stdin="y\n")
    assert accepted.exit_code == 0 and f"from revision {HEAD} to 0018" in accepted.stdout
    assert current_revision(store.engine) == "0018"


def test_a_store_without_a_schema_has_nothing_to_take_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty.db").touch()  # a database with no schema yet (on PostgreSQL: a new one)
    monkeypatch.setenv("PIGEON_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    _refused(pigeon("db", "downgrade", "0016", "--yes"), "no schema yet")
    shown = pigeon("db", "current")
    assert shown.exit_code == 0 and "no schema yet" in shown.stdout


def test_a_file_that_is_not_there_is_not_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from another directory than the store's, with the default URL: the commands that
    read the schema say so and make no file, which they did before (an empty 4 KB store)."""
    monkeypatch.setenv("PIGEON_DATABASE_URL", f"sqlite:///{tmp_path / 'pigeon.db'}")
    for args in (["db", "current"], ["db", "current", "--json"], ["db", "downgrade", "0016", "--yes"]):
        done = pigeon(*args)
        assert done.exit_code == 1 and f"no Pigeon store at sqlite:///{tmp_path}/pigeon.db" in done.stderr
        assert list(tmp_path.iterdir()) == []
    made = pigeon("db", "upgrade")  # the command that makes one
    assert made.exit_code == 0 and f"schema at revision {HEAD}" in made.stdout
