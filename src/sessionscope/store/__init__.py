"""The session store: schema, migrations and the queries every adapter calls."""

from sessionscope.store.database import Database, open_database
from sessionscope.store.scope import Scope

__all__ = ["Database", "Scope", "open_database"]
