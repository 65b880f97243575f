"""How the CLI prints rows: a table in a terminal, tab-separated lines when piped.

The first column names the row (a session key, a token id, ...), which other commands take as
an argument: it is never cut short. A narrow terminal leaves out whole columns instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from typer.models import Context

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


# What Click calls each value type in help; Typer 0.29 prints the Python type name in <>.
_CLICK_TYPE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}


def click_labels(command: Any) -> None:
    """Typer 0.29 labels values `<str>` and `<int>`, flags (--help included) `<bool>` and names
    arguments in lower case; give every parameter of the command tree the label Click shows
    (TEXT, INTEGER, PATH, [a|b]; KEY, KEYS) and flags none."""
    ctx = Context(command)
    for param in [*command.params, command.get_help_option(ctx)]:
        if param is None:
            continue
        label = _click_label(param)
        param.display_type_rich = lambda ctx, label=label: label
        if param.param_type_name == "argument" and param.metavar is None:
            param.metavar = param.name.upper()
    for sub in getattr(command, "commands", {}).values():
        click_labels(sub)


def _click_label(param: Any) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return None
    if desc.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + "]"
    if desc.is_path:
        return "PATH"
    annotation = desc.annotation
    for inner in getattr(annotation, "__args__", ()) if desc.is_list else ():
        annotation = inner
    return _CLICK_TYPE_NAMES.get(annotation, "TEXT")


def number(console: Console) -> Callable[[int | float], str]:
    """How counts print: 8,985 in a terminal; 8985 when piped, for scripts to read."""
    if console.is_terminal:
        return lambda n: f"{n:,}"
    return str
