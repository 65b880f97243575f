"""Adapters that make sessionscope the memory of agent frameworks."""
