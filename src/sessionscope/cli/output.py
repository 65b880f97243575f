"""How the CLI prints rows: a table in a terminal, tab-separated lines when piped.

The first column names the row (a session key, a token id, ...), which other commands take as
an argument: it is never cut short. A narrow terminal leaves out whole columns instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

_ONE_LINE = str.maketrans("\t\n\r", "   ")  # labels and reasons may hold them; they would break a line


def print_rows(console: Console, err_console: Console, columns: Sequence[str], rows: list[list[str]], *,
               footer: str | None = None, priority: Sequence[int] | None = None) -> None:
    """`rows` of strings under `columns`; `priority` orders the columns a narrow terminal keeps
    (default: left to right). The footer (page counts, next cursor) goes to stderr when piped,
    so grep, cut and awk read rows only."""
    if not console.is_terminal:
        for cells in [list(columns), *rows]:
            print("\t".join(cell.translate(_ONE_LINE) for cell in cells))
        if footer:
            err_console.print(footer, highlight=False)
        return
    shown = _columns_that_fit(columns, rows, console.width, priority or range(len(columns)))
    table = Table()
    for i in shown:
        table.add_column(columns[i], overflow="fold" if i == 0 else "ellipsis")
    for cells in rows:
        table.add_row(*(cells[i] for i in shown))
    console.print(table)
    if footer:
        console.print(footer, highlight=False)


def _columns_that_fit(columns: Sequence[str], rows: list[list[str]], width: int, priority: Sequence[int]
                      ) -> list[int]:
    """The first column, then the others by priority while whole values fit. Columns empty in
    every row are left out (but not the headers of an empty page)."""
    def room(i: int) -> int:
        return max([len(columns[i]), *(len(cells[i]) for cells in rows)]) + 3  # padding and a border

    shown, used = [0], room(0) + 1
    for i in priority:
        if i != 0 and (not rows or any(cells[i] for cells in rows)) and used + room(i) <= width:
            shown.append(i)
            used += room(i)
    return sorted(shown)
