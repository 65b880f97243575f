"""sessionscope: the system of record for AI agent sessions."""

__version__ = "0.1.0"
