"""The store a command works on: the settings read once, and a configuration error said in
one line with exit status 2 rather than as a traceback. Every `pigeon` command that opens the
store comes here, but for those that make and migrate it (`pigeon serve`, `pigeon worker`,
`pigeon db upgrade`: `bootstrap.open_database`).

Any other command takes the store as it is, and stops with one line rather than change it:
- a SQLite file that is not there (run from another directory than the store's, with the
  default URL): exit status 1, and no file made. Opening it would have made an empty store
  and shown its empty lists as if they were the operator's;
- a schema that is not this release's newest: exit status 2, naming both revisions. Migrating
  it would move a store shared with processes of an older release, or one just taken back
  for one, behind the operator's back.

An ApiError a command meets on the store (an unknown account, a number taken) ends it as
`error CODE: message` with exit status 1 (`fail`).

The configuration and the composition root are imported when a command runs: `pigeon errors`
and `--help` need neither, and they take seconds to import on a busy machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from pigeon.config import Settings
    from pigeon.domain.errors import ApiError
    from pigeon.store.engine import Database

err = Console(stderr=True, markup=False)  # styled lines pass markup=True (pigeon.cli)

T = TypeVar("T")


def settings_or_exit() -> Settings:
    from pigeon.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(2) from exc


def open_store(settings: Settings | None = None) -> Database:
    """The store of the settings (read here unless given), with its read replica: there, and
    at this release's schema, or the command ends (see the module's docstring)."""
    from pigeon.store.engine import Database
    from pigeon.store.schema import SchemaBehind, SchemaTooNew, require_head

    settings = settings or settings_or_exit()
    there_or_exit(settings.database_url)
    db = Database.from_url(settings.database_url, replica_url=settings.database_replica_url or None)
    try:
        require_head(db.engine)
    except (SchemaBehind, SchemaTooNew) as exc:
        db.dispose()
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False, markup=True, soft_wrap=True)
        raise typer.Exit(2) from exc
    return db


def there_or_exit(url: str) -> None:
    """End the command, exit status 1, when `url` names a SQLite file that is not there,
    before anything opens it (which would make it)."""
    from pigeon.store.schema import missing_file

    path = missing_file(url)
    if path is not None:
        err.print(
            f"[red]no Pigeon store at sqlite:///{escape(str(path))}[/red] (set PIGEON_DATABASE_URL to the store"
            " Pigeon uses, or make a new one with `pigeon db upgrade`)",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def fail(exc: ApiError) -> typer.Exit:
    """The exit for an ApiError a command met: its code and message said in red on standard
    error, exit status 1. `raise fail(exc) from exc`."""
    err.print(f"[red]error {exc.code}:[/red] {escape(exc.message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(1)


def read_or_exit(path: Path) -> str:
    """The text of a file a command was given; one that cannot be read ends the command with
    one line and status 2, before the store is opened."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        err.print(f"[red]cannot read {escape(str(path))}:[/red] {escape(why)}", markup=True, soft_wrap=True)
        raise typer.Exit(2) from exc


def output_or_exit(path: str) -> IO[str]:
    """The file a command writes to, opened before any work is done: a path it cannot write
    (a directory that does not exist, no permission) ends the command with one line and
    status 2, rather than a traceback once the records have been read."""
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        err.print(
            f"[red]cannot write {escape(path)}:[/red] {escape(exc.strerror or str(exc))}", markup=True, soft_wrap=True
        )
        raise typer.Exit(2) from exc


class _Rehearsal(Exception):
    """Raised inside a dry run's transaction to roll it back."""


def write_or_rehearse(db: Database, work: Callable[[Any], T], *, apply: bool) -> T:
    """Run `work(conn)` in a write transaction, committed when `apply`, else rolled back: a dry
    run that reports exactly what the real one would do, since it is the real one undone."""
    outcome: list[T] = []
    try:
        with db.write() as conn:
            outcome.append(work(conn))
            if not apply:
                raise _Rehearsal
    except _Rehearsal:
        pass
    return outcome[0]
