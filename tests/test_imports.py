"""Every public module imports on its own, in a fresh interpreter.

In one test process, modules imported earlier (conftest imports the client) hide an import cycle
that breaks `python -c "import X"`; a subprocess per module starts from nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src"


def public_modules() -> list[str]:
    names = []
    for path in sorted((SRC / "sessionscope").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        # Private modules, and migration scripts (Alembic runs those, with its own context).
        if any(p.startswith("_") and p != "__main__" for p in parts) or "migrations" in parts:
            continue
        if parts[-1] == "__main__":  # `python -m sessionscope` runs the CLI on import
            continue
        names.append(".".join(parts))
    return names


def test_the_list_holds_the_public_modules() -> None:
    names = public_modules()
    assert {"sessionscope", "sessionscope.client", "sessionscope.client.aio", "sessionscope.store.database",
            "sessionscope.integrations.openai_agents", "sessionscope.web.app"} <= set(names)
    assert len(names) > 60


def _import_alone(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          timeout=300)


@cache
def import_results() -> dict[str, subprocess.CompletedProcess[str]]:
    # One interpreter per module, a few at a time: each mostly waits on its own start-up.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(zip(public_modules(), pool.map(_import_alone, public_modules()), strict=True))


@pytest.mark.parametrize("module", public_modules())
def test_imports_in_a_fresh_interpreter(module: str) -> None:
    done = import_results()[module]
    assert done.returncode == 0, done.stderr[-2000:]
