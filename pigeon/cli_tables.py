"""The tables the `pigeon` commands print, with what they identify kept whole.

Rich fits a table to the terminal (80 columns when the output is piped) by shortening cells
to "AC01a25192…": a SID, an auth token or a phone number cut so is of no use to copy into a
request, `pigeon doctor` or a grep, and the README's way to recover an auth token
(`pigeon accounts list --show-tokens`) printed it cut. So:
- a `whole` column is never shortened, nor wrapped: other columns wrap first, and a table
  whose whole columns do not fit in the terminal is printed wider than it, for the terminal
  to wrap its lines, rather than cut;
- piped, a table is printed at its natural width, one line a row, for grep and cut.
`--json` has every field of every command, for scripts.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table

#: Wider than any table a command prints: the width a table is measured in, to find its own.
_UNBOUNDED = 10_000


def whole(header: str, **options: Any) -> Column:
    """A column of identifiers (SIDs, tokens, numbers), never shortened nor wrapped. ("fold",
    should Rich ever have to shorten it all the same, puts the rest on the next line rather
    than drop it.)"""
    return Column(header, no_wrap=True, overflow="fold", **options)


def print_table(console: Console, table: Table) -> None:
    """Print `table` on `console` as wide as it needs to keep its `whole` columns whole: the
    terminal's width, or more when that is too narrow; piped, its natural width."""
    for column in table.columns:
        if column.no_wrap and column.max_width is None:
            # Without a minimum, Rich shrinks even a column that does not wrap once the others
            # cannot give up enough, and counts its longest word as all it needs; with it, the
            # table grows instead.
            cells = [column.header, *column.cells]
            column.min_width = max(cell_len(c) if isinstance(c, str) else console.measure(c).maximum for c in cells)
    fits = console.measure(table, options=console.options.update_width(_UNBOUNDED))
    width = max(console.width, fits.minimum) if console.is_terminal else fits.maximum
    if width == console.width:
        console.print(table)
        return
    # Console.print never renders wider than the console: a console of that width, writing to
    # the same file with the same colours, does.
    wide = Console(
        file=console.file,
        width=width,
        markup=False,
        force_terminal=console.is_terminal,
        color_system=console.color_system,  # type: ignore[arg-type]  # None or the name Rich gave it
        no_color=console.no_color,
        legacy_windows=False,
    )
    wide.print(table, crop=False)
