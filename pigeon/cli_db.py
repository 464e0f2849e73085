"""`pigeon db`: the store's schema, and a consistent backup of a SQLite store.

    pigeon db upgrade          apply every pending schema migration
    pigeon db backup PATH      a checked copy of the SQLite store, safe while Pigeon runs

`pigeon.cli` mounts `db_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pigeon.cli_store import open_store, settings_or_exit

# Markup off: what is printed is mostly names, numbers and texts from users and carriers, in
# which Rich would read "[ops]" as markup and drop it. Styled lines pass markup=True.
out = Console(markup=False)
err = Console(stderr=True, markup=False)

db_app = typer.Typer(help="Database schema and backups.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending schema migration."""
    from pigeon.store.schema import current_revision

    db = open_store(migrate=True)
    out.print(f"schema at revision {current_revision(db.engine)}")


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write; it must not exist yet.")],
) -> None:
    """A consistent copy of the SQLite store, safe to take while Pigeon runs (writers carry on);
    checked before it is given PATH. For PostgreSQL, use pg_dump."""
    from pigeon.store.backup import BackupError, backup_sqlite
    from pigeon.store.engine import Database

    settings = settings_or_exit()
    db = Database.from_url(settings.database_url)
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
