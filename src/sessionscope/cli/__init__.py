"""The `sessionscope` command: `main` holds the session commands, `admin` the admin ones."""

from sessionscope.cli import admin  # noqa: F401 - registers token, audit, tenant, purge and check
from sessionscope.cli.main import app


def main() -> None:
    app()


__all__ = ["app", "main"]
