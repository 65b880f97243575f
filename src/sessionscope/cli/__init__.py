"""The `sessionscope` command: `main` holds the session commands, `admin` the admin ones.

`main()` is the entry point: it runs the commands with Click's own help labels and turns every
failure (a bad option, an unexpected error) into one line on stderr; `--debug` shows tracebacks.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

# Typer 0.29 runs its own copy of Click; its exceptions are the ones raised here.
from typer._click import exceptions as click_errors
from typer._click.core import Command

from sessionscope.cli import admin  # noqa: F401 - registers token, audit, tenant, purge and check
from sessionscope.cli import main as commands
from sessionscope.cli.main import app
from sessionscope.cli.output import click_labels

PROG = "sessionscope"


def command() -> Command:
    """The Click command tree, with the labels Click shows (TEXT, INTEGER; none for flags)."""
    root = typer.main.get_command(app)
    click_labels(root)
    return root


def main(argv: list[str] | None = None) -> None:
    try:
        code = command().main(args=argv, prog_name=PROG, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:  # a bare `sessionscope` or group: the help
        print(error.format_message())
        code = 0
    except typer.Abort:
        commands.err_console.print("aborted", highlight=False)
        code = 1
    except click_errors.ClickException as error:  # bad options and arguments: one line, not a usage box
        name = error.ctx.command_path if isinstance(error, click_errors.UsageError) and error.ctx else PROG
        commands.err_console.print(f"[red]error:[/red] {escape(error.format_message())} (see `{name} --help`)",
                                   highlight=False)
        code = error.exit_code
    except Exception as error:
        if commands.DEBUG:
            raise
        commands.err_console.print(f"[red]error:[/red] unexpected {type(error).__name__}: {escape(str(error))} "
                                   "(run again with --debug for the traceback)", highlight=False)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "command", "main"]
