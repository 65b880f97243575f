"""Importing this package registers every RPC method."""

from sessionscope.rpc.methods import (  # noqa: F401
    admin,
    agents,
    compaction,
    conversation,
    discover,
    facets,
    sessions,
)
