"""JSON-RPC 2.0: framing and dispatch (protocol), the method registry, and the methods."""
