"""The Python client: `Client` (sync) and `AsyncClient` (asyncio), and their session handles.

    from sessionscope.client import Client
    client = Client("http://127.0.0.1:8750", token)
    s = client.session("support:42", agent="helpdesk", channel="web")
    s.append({"role": "user", "content": "hi"})
"""

from sessionscope.client.aio import AsyncClient
from sessionscope.client.protocol import RPCError, Unavailable, error_from
from sessionscope.client.sync import Client

__all__ = ["AsyncClient", "Client", "RPCError", "Unavailable", "error_from"]
