"""Import contracts between the layers, read from the source with `ast` (no import runs).

A module "imports" another when an import statement anywhere in it names that module: at the top,
inside a function, or under TYPE_CHECKING. Importing `a.b.c` also runs the `__init__` of `a` and
`a.b`, so those count too. The layer contracts are transitive, as import-linter's are: a store
module that imports a helper that imports the RPC layer breaks "store imports no rpc".
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"
PACKAGE = "sessionscope"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _absolute(module: str, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    is_package = modules()[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - level + (1 if is_package else 0)]
    return ".".join([*base, name] if name else base)


@cache
def imported_names(module: str) -> frozenset[str]:
    """Every dotted name that `module` imports, as written (resolved when relative)."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module)
            # `from pkg import sub` imports the submodule when there is one, and needs nothing
            # else of the package (whose __init__ runs first in any case).
            subs = {f"{base}.{alias.name}" for alias in node.names} & modules().keys()
            names.update(subs)
            if len(subs) < len(node.names):
                names.add(base)
    return frozenset(names)


def _with_parents(name: str) -> Iterable[str]:
    parts = name.split(".")
    return (".".join(parts[:i]) for i in range(1, len(parts) + 1))


@cache
def internal_imports(module: str) -> frozenset[str]:
    """The package's own modules that importing `module` runs directly (parents included)."""
    found = {p for name in imported_names(module) for p in _with_parents(name) if p in modules()}
    found.discard(module)
    return frozenset(found)


def named_imports(module: str) -> frozenset[str]:
    """The package's own modules that `module` names itself. A parent package's `__init__` runs
    first in any case, so an edge to it is a cycle only when the module names it."""
    return frozenset(name for name in imported_names(module) if name in modules() and name != module)


def chain_to(start: str, forbidden: tuple[str, ...]) -> list[str] | None:
    """The shortest import chain from `start` to a module under one of `forbidden`, or None.

    A forbidden name outside the package (openai) matches any import of it, direct or nested."""
    def hit(module: str) -> str | None:
        for name in imported_names(module):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                return name
        return None

    parents: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        current = queue.pop(0)
        found = hit(current)
        if found is not None:
            chain = [found, current]
            while (up := parents[chain[-1]]) is not None:
                chain.append(up)
            return chain[::-1]
        for nxt in sorted(internal_imports(current)):
            if nxt not in parents:
                parents[nxt] = current
                queue.append(nxt)
    return None


def under(prefix: str) -> list[str]:
    return [m for m in modules() if m == prefix or m.startswith(prefix + ".")]


def broken(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for module in under(layer):
        chain = chain_to(module, forbidden)
        if chain is not None:
            out.append(" -> ".join(chain))
    return out


def test_the_walk_sees_the_package() -> None:
    # Guards the contracts below against passing because the walk found nothing.
    assert len(under("sessionscope.store")) > 10
    assert "sessionscope.client.sync" in modules()
    assert "sessionscope.store.database" in internal_imports("sessionscope.store.sessions")
    assert chain_to("sessionscope.web.app", ("sessionscope.rpc",)) is not None


def test_store_imports_neither_rpc_nor_web() -> None:
    assert broken("sessionscope.store", ("sessionscope.rpc", "sessionscope.web")) == []


def test_store_does_not_import_the_llm_client() -> None:
    assert broken("sessionscope.store", ("sessionscope.compaction.llm", "openai")) == []


def test_client_imports_nothing_from_the_store() -> None:
    assert broken("sessionscope.client", ("sessionscope.store",)) == []


def test_no_cycles_among_client_modules() -> None:
    client = set(under("sessionscope.client"))
    graph = {m: named_imports(m) & client for m in client}
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        for nxt in sorted(graph[module]):
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif len(path) < len(client):
                visit(nxt, [*path, nxt])

    for module in sorted(client):
        visit(module, [module])
    assert cycles == []


def test_the_contracts_can_fail() -> None:
    # The store's modules do import the store, and the dashboard's app imports the RPC layer.
    assert broken("sessionscope.store.sessions", ("sessionscope.store.database",))
    assert broken("sessionscope.web", ("sessionscope.rpc",))
    # The client package's __init__ imports its modules: a module naming the package is a cycle.
    assert "sessionscope.client.aio" in named_imports("sessionscope.client")
