"""Docs are checked: every RPC method and every CLI command has its section."""

from __future__ import annotations

import re
from pathlib import Path

import typer

import sessionscope.rpc.methods  # noqa: F401
from sessionscope.cli import app
from sessionscope.rpc.registry import METHODS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_rpc_method_is_documented() -> None:
    text = (DOCS / "rpc.md").read_text()
    headings = set(re.findall(r"^### (\S+)", text, flags=re.MULTILINE))
    missing = sorted(set(METHODS) - headings)
    assert not missing, f"docs/rpc.md lacks a '### name' section for {missing}"


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^## sessionscope (\S+)", text, flags=re.MULTILINE))
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    missing = sorted(commands - headings)
    assert not missing, f"docs/cli.md lacks a '## sessionscope <command>' section for {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    blocks = re.findall(r"```\n(.*?)\n```", readme, flags=re.DOTALL)
    assert "sessionscope demo" in blocks[0]
    assert "python -m pytest" in blocks[1] and "chromium" in blocks[1]
    ci = (DOCS.parent / ".ci" / "run").read_text()
    assert "README.md" in ci
