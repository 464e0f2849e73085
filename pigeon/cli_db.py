"""`pigeon db`: the store's schema, and a consistent backup of a SQLite store.

    pigeon db upgrade                  apply every pending schema migration
    pigeon db current [--json]         the store's revision, and the newest this release knows
    pigeon db downgrade REVISION --yes take the schema back, for going back to an older release
    pigeon db backup PATH              a checked copy of the SQLite store, safe while Pigeon runs

A downgrade drops what the migrations it undoes added, with the data in it; the help text
lists it for every revision (read from the migrations, pigeon.store.schema.revisions), and
without --yes only a run at a terminal may go on, after asking.

`pigeon.cli` mounts `db_app`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pigeon.cli_store import settings_or_exit, there_or_exit
from pigeon.store.schema import (
    CannotDowngrade,
    ForeignKeysBroken,
    Revision,
    SchemaTooNew,
    current_revision,
    downgrade,
    require_known,
    revisions,
    to_undo,
)

if TYPE_CHECKING:
    from pigeon.store.engine import Database

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

db_app = typer.Typer(help="Database schema and backups.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending schema migration (making the store, if there is none yet)."""
    from pigeon import bootstrap

    db = bootstrap.open_database(settings_or_exit(), migrate=True)
    out.print(f"schema at revision {current_revision(db.engine)}")


def _plain_store() -> Database:
    """The settings' store as it is, behind or not (these commands are the way to tell and to
    go back), no replica; a SQLite file that is not there ends the command (`there_or_exit`)."""
    from pigeon.store.engine import Database

    url = settings_or_exit().database_url
    there_or_exit(url)
    return Database.from_url(url)


@db_app.command("current")
def db_current(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The store's schema revision and the newest this release knows, which `pigeon db
    upgrade` (or starting Pigeon) brings it to. Changes nothing."""
    db = _plain_store()
    try:
        current = current_revision(db.engine)
    finally:
        db.dispose()
    ids = [r.id for r in revisions()]
    newest, known = ids[-1], current is None or current in ids
    pending = ids[ids.index(current) + 1 :] if current in ids else ids if current is None else []
    if as_json:
        report = {"revision": current, "newest": newest, "known": known, "pending": pending}
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    if not known:
        said = f"schema at revision {current}, which this release does not know: a newer release made it"
    elif current is None:
        said = "no schema yet"
    else:
        said = f"schema at revision {current}"
    if current == newest:
        said += ", the newest this release knows"
    else:
        said += f"; this release knows up to {newest}"
        if current is None:
            said += " (`pigeon db upgrade`, or starting Pigeon, makes it)"
        elif pending:
            said += f" (`pigeon db upgrade`, or starting Pigeon, applies {_span(pending)})"
    out.print(said, highlight=False, soft_wrap=True)


def _span(ids: list[str]) -> str:
    """Revisions in a row, as "0019" or "0017 to 0020"."""
    return ids[0] if len(ids) == 1 else f"{ids[0]} to {ids[-1]}"


def _what_goes(revision: Revision) -> str:
    return ", ".join(revision.drops) if revision.drops else f"no table or column ({revision.summary})"


def _downgrade_help() -> str:
    # 0001 is not listed: there is no revision before it to go back to.
    undone = "\n".join(f"{r.id}  {escape(_what_goes(r))}" for r in reversed(revisions()[1:]))
    return (
        "Take the schema back to REVISION, for going back to an older release of Pigeon.\n\n"
        "Stop every Pigeon process first, and run this with the release you are leaving: the older"
        " one does not know the newer migrations (`pigeon db current` run by the older release"
        " names the newest revision it knows, or else the last file in its"
        " pigeon/store/migrations/versions: that is REVISION). Each migration undone drops what"
        " it added, with the data in it, so without --yes a run at a terminal asks first and any"
        " other run refuses. Exit status 2 for a revision this release does not know, one newer"
        " than the store's, or no --yes where it cannot ask.\n\n"
        "Undoing each migration drops:\n\n\b\n" + undone
    )


def _at_a_terminal() -> bool:
    return sys.stdin.isatty()


def _refuse(said: str) -> typer.Exit:
    err.print(f"[red]{escape(said)}[/red]", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(2)


@db_app.command("downgrade", help=_downgrade_help())
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="The revision to go back to, e.g. 0018.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", help="Go ahead without asking (required where it cannot ask).")] = False,
) -> None:
    try:
        require_known(revision)  # "base" too: a store is emptied by dropping its database, not here
    except CannotDowngrade as exc:
        raise _refuse(str(exc)) from exc
    db = _plain_store()
    try:
        current = current_revision(db.engine)
        try:
            undo = to_undo(current, revision)
        except (CannotDowngrade, SchemaTooNew) as exc:
            raise _refuse(str(exc)) from exc
        if not undo:
            out.print(f"schema already at revision {revision}: nothing to take back", highlight=False)
            return
        drops = [what for r in undo for what in r.drops]
        if not yes:
            _confirm_or_exit(current, revision, undo, drops)
        try:
            came_from = downgrade(db.engine, revision)
        except (CannotDowngrade, SchemaTooNew) as exc:  # an upgrade ran since it was read
            raise _refuse(str(exc)) from exc
        except ForeignKeysBroken as exc:
            err.print(f"[red]downgrade failed:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
            raise typer.Exit(1) from exc
    finally:
        db.dispose()
    dropped = f"; dropped {', '.join(drops)}" if drops else ""
    out.print(f"schema downgraded from revision {came_from} to {revision}{dropped}", highlight=False, soft_wrap=True)


def _confirm_or_exit(current: str | None, revision: str, undo: list[Revision], drops: list[str]) -> None:
    """Without --yes: at a terminal, what goes and a question (no: exit 1); elsewhere (a script,
    a pipe) a one-line refusal, exit 2."""
    if not _at_a_terminal():
        loses = (
            f"it drops {', '.join(drops)} with their data"
            if drops
            else f"it undoes {_span([r.id for r in reversed(undo)])}"
        )
        raise _refuse(f"not downgrading from revision {current} to {revision} without --yes: {loses}")
    for r in undo:
        out.print(f"undoing {r.id} drops {_what_goes(r)}", highlight=False, soft_wrap=True)
    if not typer.confirm(f"Take the schema back from revision {current} to {revision}?", default=False):
        err.print("Nothing was changed.")
        raise typer.Exit(1)


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write; it must not exist yet.")],
) -> None:
    """A consistent copy of the SQLite store, safe to take while Pigeon runs (writers carry on);
    checked before it is given PATH. For PostgreSQL, use pg_dump."""
    from pigeon.store.backup import BackupError, backup_sqlite

    db = _plain_store()
    try:
        if not db.is_sqlite:
            err.print(
                "The store is PostgreSQL: back it up with its own tools, for example"
                " `pg_dump --format=custom --file=pigeon.dump DATABASE_URL`, or base backups with WAL archiving."
            )
            raise typer.Exit(2)
        try:
            made = backup_sqlite(db.engine, path)
        except BackupError as exc:
            err.print(f"[red]backup failed:[/red] {escape(str(exc))}", markup=True)
            raise typer.Exit(1) from exc
    finally:
        db.dispose()
    out.print(
        f"backed up to {made.path}: {made.size / 1e6:.1f} MB, {made.messages:,} messages,"
        f" schema revision {made.revision}, in {made.seconds:.1f} s"
    )
