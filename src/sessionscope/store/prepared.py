"""Statements for the hottest reads (session.status, the plain session.list), run straight on the
driver's connection.

Each statement is built with SQLAlchemy once per shape (which filters, which sort) and compiled to
the driver's own SQL and parameter order; a call then only binds its values and reads rows as
named tuples, in one trip to the driver (Database.read_on_driver). Building, compiling and
wrapping rows per call cost more than the SQL itself on a page of 50 (bench/core.py prints both).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from sessionscope.store.database import Database


@dataclass(frozen=True)
class Prepared:
    """A compiled statement: the driver's SQL and the names of its parameters in order."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]  # values bound when the statement was built (a LIMIT's OFFSET 0, say)

    def bind(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(values[n] if n in values else self.fixed[n] for n in self.names)


def prepare(db: Database, stmt: ClauseElement) -> Prepared:
    """`stmt` compiled for `db`'s driver. Its parameters must be named bindparams or values fixed
    at build time; the driver receives them positionally, without SQLAlchemy's type processing,
    so the values bound must be what the driver takes (int, float, str, None)."""
    compiled = cast(SQLCompiler, stmt.compile(dialect=db.engine.dialect))
    names = tuple(compiled.positiontup or ())
    fixed = {name: compiled.binds[name].effective_value for name in names if not compiled.binds[name].required}
    return Prepared(compiled.string, names, fixed)


def columns(table: Table) -> str:
    # Named, not `*`: a column added by a migration sits where the table's definition puts it.
    return ", ".join(c.name for c in table.columns)


@functools.lru_cache(maxsize=32)
def _row_type(names: tuple[str, ...]) -> Any:
    return collections.namedtuple("StoredRow", names)


def fetch(cursor: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """Rows with attribute access by column name, as store.wire reads them."""
    cursor.execute(sql, params)
    make = _row_type(tuple(d[0] for d in cursor.description))._make
    return [make(r) for r in cursor.fetchall()]
