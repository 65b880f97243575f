"""Docs are checked: every RPC method and every CLI command has its section."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

import sessionscope.rpc.methods  # noqa: F401
from sessionscope.cli import app
from sessionscope.rpc.registry import METHODS
from tests.conftest import free_port

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


# ---- docs/cli.md: its reference is the commands' --help, and every example prints what it shows ----

CLI_DOC = DOCS / "cli.md"
WRITE = os.environ.get("SESSIONSCOPE_WRITE_DOCS") == "1"  # rewrite docs/cli.md from the commands
HELP_WIDTH = "100"
HELP_BLOCK = re.compile(r"<!-- help: (?P<cmd>[a-z ]+) -->\n```\n(?P<body>.*?)\n```\n", re.DOTALL)
EXAMPLE = re.compile(r"(?:<!-- (?P<mode>terminal|serves) -->\n)?```\n\$ (?P<cmd>sessionscope [^\n]*)\n"
                     r"(?P<out>.*?)\n?```\n", re.DOTALL)
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def command_paths() -> list[str]:
    from sessionscope.cli import command

    def walk(group: Any, prefix: str) -> list[str]:
        found = []
        for name, sub in sorted(group.commands.items()):
            path = f"{prefix} {name}".strip()
            found.append(path)
            if hasattr(sub, "commands"):
                found.extend(walk(sub, path))
        return found

    return walk(command(), "")


def command_help(path: str) -> str:
    from sessionscope.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        main([*path.split(), "--help"])
    return "\n".join(line.rstrip() for line in buffer.getvalue().strip("\n").splitlines()).strip("\n")


def reference() -> str:
    return "".join(f"\n### sessionscope {path}\n<!-- help: {path} -->\n```\n{command_help(path)}\n```\n"
                   for path in command_paths())


def test_cli_reference_is_the_commands_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", HELP_WIDTH)
    monkeypatch.setenv("TERM", "dumb")
    text = CLI_DOC.read_text()
    head, marker, _ = text.partition("\n## Reference\n")
    intro, _, _ = _.partition("\n### ")
    expected = reference()
    if WRITE:
        CLI_DOC.write_text(head + marker + intro.rstrip("\n") + "\n" + expected)
        return
    documented = {m["cmd"]: m["body"] for m in HELP_BLOCK.finditer(text)}
    assert sorted(documented) == sorted(command_paths()), "docs/cli.md's reference lacks or has extra commands"
    for path in command_paths():
        assert documented[path] == command_help(path), f"`sessionscope {path} --help` differs from docs/cli.md"
    assert "<bool>" not in text and "<str>" not in text and "<int>" not in text


def test_every_cli_example_prints_what_the_docs_show(tmp_path: Path) -> None:
    """Each ``$ sessionscope ...`` block of docs/cli.md, in order, on a fresh HOME: /tmp/ in the
    docs is this test's folder, times are compared as times, progress bars are left out."""
    text = CLI_DOC.read_text()
    examples = list(EXAMPLE.finditer(text))
    assert len(examples) >= 8
    env = first_contact_env(tmp_path)
    shown = {}
    for example in examples:
        cmd = example["cmd"].replace("/tmp/", f"{tmp_path}/")
        if example["mode"] == "serves":
            out = serve_until_listening(cmd, env)
        else:
            extra = {"FORCE_COLOR": "1", "COLUMNS": "80"} if example["mode"] == "terminal" else {}
            script = f'sessionscope() {{ "{sys.executable}" -m sessionscope.cli "$@"; }}\nset -o pipefail\n{cmd}'
            done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                                  env={**env, **extra}, check=False)
            assert done.returncode == 0, f"{example['cmd']}: {done.stderr}"
            err = [line for line in done.stderr.splitlines() if "━" not in line]
            out = ANSI.sub("", done.stdout + "".join(f"{line}\n" for line in err))
        out = out.replace(f"{tmp_path}/", "/tmp/").rstrip("\n")
        shown[example["cmd"]] = out
        if not WRITE:
            assert TIME.sub("<time>", out) == TIME.sub("<time>", example["out"]), example["cmd"]
    if WRITE:
        for example in examples:
            text = text.replace(example.group(0), example.group(0).replace(
                f"$ {example['cmd']}\n{example['out']}", f"$ {example['cmd']}\n{shown[example['cmd']]}"))
        CLI_DOC.write_text(text)


def first_contact_env(tmp_path: Path) -> dict[str, str]:
    """A new user's environment: a fresh HOME and data dir, none of our variables, 200 columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_") and k != "FORCE_COLOR"}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return env | {"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"), "COLUMNS": "200"}


def serve_until_listening(cmd: str, env: dict[str, str]) -> str:
    """Start a `serve` example on a free port; its output up to the 'serving on' line."""
    port = str(free_port())
    args = cmd.split()[1:]
    args[args.index("--port") + 1] = port
    server = subprocess.Popen([sys.executable, "-m", "sessionscope.cli", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line.replace(f":{port}/", ":8750/"))
            if "serving on" in line:
                break
    finally:
        server.terminate()
        server.wait(timeout=30)
    return "".join(lines)


def test_readme_states_the_demos_real_counts() -> None:
    from collections import Counter

    from sessionscope.demo import demo_records

    kinds = Counter(r["type"] for r in demo_records(200, 60, 7))
    readme = (DOCS.parent / "README.md").read_text()
    counts = f"{kinds['message']:,} messages and {kinds['execution']:,} executions"
    for doc in (readme, CLI_DOC.read_text()):
        assert counts in " ".join(doc.split())


def test_readme_what_is_where_names_every_top_level_module() -> None:
    package = DOCS.parent / "src" / "sessionscope"
    table = (DOCS.parent / "README.md").read_text().split("## What is where", 1)[1].split("\n## ", 1)[0]
    names = sorted(p.name for p in package.iterdir()
                   if (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))
                   or (p.is_dir() and (p / "__init__.py").exists()))
    missing = [n for n in names if f"`{n}" not in table and f"/{n}" not in table]
    assert not missing, f"README's 'What is where' does not name {missing}"
