"""Importing this package registers every RPC method."""

from sessionscope.rpc.methods import catalog, compaction, conversation, discover, sessions  # noqa: F401
from sessionscope.rpc.methods import admin  # noqa: F401
from sessionscope.rpc.methods import agents  # noqa: F401
