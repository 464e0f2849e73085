"""The command line's tables keep what identifies a record whole (pigeon/cli_tables.py): Rich
alone cut SIDs and auth tokens to "AC01a25192…" in a narrow terminal or a pipe."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Column, Table

from pigeon.cli_tables import print_table, whole

SID = "SK01a251b323eb1866584f0e17885ae49c"
OWNER = "AC01a251ae64234dc47ec5db46166b640a"
WHEN = "2026-12-07 18:10:11"


def _table() -> Table:
    table = Table(whole("sid"), whole("account"), "name", Column("created", no_wrap=True))
    table.add_row(SID, OWNER, "the name its owner gave the key", WHEN)
    return table


def _printed(width: int, *, terminal: bool) -> list[str]:
    console = Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None, markup=False)
    print_table(console, _table())
    text = console.file.getvalue()  # type: ignore[attr-defined]  # the StringIO given above
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("width", [40, 80, 96, 104, 120, 200])
def test_in_a_terminal_of_any_width_the_identifiers_stay_whole(width: int) -> None:
    lines = _printed(width, terminal=True)
    row = next(line for line in lines if SID in line)
    assert OWNER in row and WHEN in row, "\n".join(lines)
    # The name wraps instead; the table is wider than the terminal only when the identifiers
    # and the name's longest word do not fit in it (105 columns here).
    assert all(len(line) <= max(width, 105) for line in lines), "\n".join(lines)


def test_piped_each_row_is_one_line() -> None:
    lines = _printed(80, terminal=False)
    assert any(SID in line and OWNER in line and "the name its owner gave the key" in line for line in lines)
