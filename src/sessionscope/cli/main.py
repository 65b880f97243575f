"""The `sessionscope` command. Each command opens a backend, calls one RPC method, prints."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sessionscope.cli.output import number, print_rows
from sessionscope.cli.transport import LocalBackend, connect, import_files
from sessionscope.errors import SessionscopeError

app = typer.Typer(help="sessionscope: the system of record for AI agent sessions.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
# soft_wrap: piped output is not cut into 80-column lines mid-sentence; a terminal wraps by itself.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
DEBUG = False  # --debug: let errors through with their tracebacks

DbOption = Annotated[str | None, typer.Option("--db", help="Store: a SQLite file path or a postgresql:// URL "
                                              "(env SESSIONSCOPE_DATABASE_URL; default: the default store in "
                                              "the user data dir, which `demo` builds).")]
UrlOption = Annotated[str | None, typer.Option("--url", help="Talk to a running server instead "
                                               "(env SESSIONSCOPE_URL).")]
TokenOption = Annotated[str | None, typer.Option("--token", help="API token for --url (env SESSIONSCOPE_TOKEN).")]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Tenant (default: the one of yours that "
                                                 "holds the key).")]
ListTenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant (default: every "
                                                     "tenant you can see).")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")]
         = False) -> None:
    global DEBUG
    DEBUG = debug


def fail(message: str) -> typer.Exit:
    """Print one error line; the caller raises the returned Exit."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(1)


def friendly(func: F) -> F:
    """Turn every expected failure into one readable line and exit code 1, never a traceback
    (unless --debug)."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # `sessionscope ls | head`: the reader has what it wanted
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit's flush finds no broken pipe
            raise typer.Exit(0) from None
        except (SessionscopeError, OSError, ValueError) as exc:
            if DEBUG:
                raise
            raise fail(_message(exc)) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _message(exc: Exception) -> str:
    if not isinstance(exc, SessionscopeError):
        return str(exc)
    tenants = exc.data.get("tenants") if isinstance(exc.data, dict) else None
    if tenants:  # a key in several of the caller's tenants: the RPC says "pass tenant"
        return f"{str(exc.data['problem']).split('): ')[0]}): add --tenant NAME"
    return exc.message


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=False)


def _with_tenant(params: dict[str, Any], tenant: str | None) -> dict[str, Any]:
    return params | {"tenant": tenant} if tenant else params


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive command; with no terminal to ask on, refuse unless --yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise SessionscopeError(f"{question.split('?')[0]}: not without confirmation, and there is no terminal "
                                "to ask on; pass --yes to go ahead")
    if not typer.confirm(question, default=False):
        err_console.print("nothing changed")
        raise typer.Exit(1)


# ---- server ----------------------------------------------------------------------------------------

@app.command()
@friendly
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Bind address; loopback by default.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8750,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without tokens (loopback only).")] = False,
    config: Annotated[str | None, typer.Option("--config", help="TOML settings file.")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (share one PostgreSQL store).")] = 1,
) -> None:
    """Serve the JSON-RPC API and the dashboard from a local store (no --url: this is the server)."""
    from sessionscope.server import run_server

    run_server(db=db, host=host, port=port, no_auth=no_auth, config=config, workers=workers)


@app.command()
@friendly
def demo(
    db: Annotated[str | None, typer.Option("--db", help="Store file (default: the default store, which "
                                           "`ls` and `serve` read too). Rebuilt each run; a store the "
                                           "demo did not build is refused.")] = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8750,
    sessions: Annotated[int, typer.Option("--sessions", help="How many sessions.")] = 200,
    messages: Annotated[int, typer.Option("--messages", help="Messages per session.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve without tokens (loopback only).")] = False,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Only build the data.")] = False,
) -> None:
    """Build a realistic demo store on SQLite and serve it (a local store; no --url)."""
    import asyncio

    from sessionscope.demo import build_demo, demo_records
    from sessionscope.server import bind, is_loopback, run_server
    from sessionscope.store import open_database
    from sessionscope.store.database import default_database_path

    if no_auth and not no_serve and not is_loopback(host):
        raise SessionscopeError(f"--no-auth is only allowed on a loopback address, not {host!r}")
    sock = None if no_serve else bind(host, port)  # a busy port fails before minutes of building
    path = Path(db).expanduser().resolve() if db else default_database_path()
    _clear_demo_store(path)

    async def build() -> dict[str, int]:
        store = await open_database(db and str(path))  # None: the default store, its folder made if need be
        try:
            with progress_bar() as bar:
                # A dry pass over the generator counts what the store will hold; the bar counts
                # the same records (messages and executions) that the summary below reports.
                kinds = Counter(r["type"] for r in demo_records(sessions, messages, seed))
                task = bar.add_task("storing demo records", total=kinds["message"] + kinds["execution"])
                built = await build_demo(store, sessions, messages, seed, progress=lambda n: bar.advance(task, n))
                return built | {"executions": kinds["execution"]}
        finally:
            await store.close()

    built = asyncio.run(build())
    _mark_demo_store(path)
    n = number(console)
    console.print(f"demo store {path}: {n(built['sessions'])} sessions, {n(built['messages'])} messages, "
                  f"{n(built['executions'])} executions, {n(built['compactions'])} compactions, "
                  f"{n(built['resets'])} resets", highlight=False)
    if not db:
        console.print("it is the default store: `sessionscope ls` lists it", highlight=False)
    if sock is not None:
        run_server(db=str(path), host=host, port=port, no_auth=no_auth, config=None, workers=1, sock=sock)


# SQLite's application_id of a store the demo built, so a rebuild never deletes anyone's sessions.
DEMO_APPLICATION_ID = 0x53534430  # "SSD0"


def _clear_demo_store(path: Path) -> None:
    """Remove the previous demo store at `path`; refuse any other file there."""
    if path.is_dir():
        raise SessionscopeError(f"--db {path} is a directory; pass a file path such as {path / 'demo.db'}")
    if path.exists() and path.stat().st_size and _application_id(path) != DEMO_APPLICATION_ID:
        raise SessionscopeError(f"{path} holds a store the demo did not build, and the demo rebuilds its "
                                "store each run: pass another --db, such as --db demo.db")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _application_id(path: Path) -> int | None:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return int(conn.execute("PRAGMA application_id").fetchone()[0])
    except sqlite3.Error:
        return None  # not a SQLite file at all


def _mark_demo_store(path: Path) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        conn.commit()


# ---- reading ---------------------------------------------------------------------------------------

LIST_COLUMNS = ("key", "label", "tenant", "agent", "channel", "msgs", "tokens", "cost $", "updated")
# Which columns a narrow terminal keeps, the first first (indexes into LIST_COLUMNS); the tenant
# comes second when the caller sees several tenants (a key alone may not name the session), and
# is left out when it sees one.
LIST_PRIORITY = (0, 8, 5, 6, 7, 4, 3, 1)
LIST_PRIORITY_TENANTS = (0, 2, 8, 5, 6, 7, 4, 3, 1)


def _session_cells(row: dict[str, Any], n: Callable[[int | float], str]) -> list[str]:
    return [row["key"], row["label"] or "", row["tenant"], row["agent"], row["channel"], n(row["message_count"]),
            n(row["total_tokens"]), f"{row['cost_usd']:.4f}", row["updated_at"]]


@app.command("ls")
@friendly
def list_sessions(
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: ListTenantOption = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-s", help="Part of a key, agent or channel.")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Full-text over message content.")] = None,
    sort: Annotated[str, typer.Option(help="updated_at, created_at, key, agent, channel, message_count, "
                                      "total_tokens or cost_usd.")] = "updated_at",
    order: Annotated[str, typer.Option(help="asc or desc.")] = "desc",
    limit: Annotated[int, typer.Option(help="Rows per page (1-500).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor from a previous call.")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Only archived sessions.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw result.")] = False,
) -> None:
    """List sessions with the same filters and sorts as the dashboard (archived ones left out)."""
    backend = connect(db, url, token)
    given = {"tenant": tenant, "agent": agent, "channel": channel, "search": search, "query": query,
             "sort": sort, "order": order, "limit": limit, "cursor": cursor,
             "archived": "only" if archived else None}
    params = {k: v for k, v in given.items() if v is not None}
    result = backend.call("session.list", params)
    if as_json:
        console.print_json(json.dumps(result))
        return
    n = number(console)
    rows = [_session_cells(row, n) for row in result["sessions"]]
    several = tenant is None and console.is_terminal and len(backend.call("tenant.list")["tenants"]) > 1
    more = f"  next: --cursor {result['next_cursor']}" if result["next_cursor"] else ""
    total = f"{n(result['total'])}+" if result["total_capped"] else n(result["total"])
    print_rows(console, err_console, LIST_COLUMNS, rows, footer=f"{len(rows)} of {total} sessions{more}",
               priority=LIST_PRIORITY_TENANTS if several else LIST_PRIORITY)


@app.command()
@friendly
def show(
    key: Annotated[str, typer.Argument(help="Session key.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
    limit: Annotated[int, typer.Option(help="Newest items to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw result.")] = False,
) -> None:
    """Show one session: its counters and newest items."""
    backend = connect(db, url, token)
    result = backend.call("session.status", _with_tenant({"key": key, "limit": limit}, tenant))
    if as_json:
        console.print_json(json.dumps(result))
        return
    s = result["session"]
    console.print(f"[bold]{s['key']}[/bold]  tenant={s['tenant']} agent={s['agent']} channel={s['channel']}",
                  highlight=False)
    n = number(console)
    console.print(f"messages={n(s['message_count'])} tokens={n(s['total_tokens'])} context={n(s['context_tokens'])} "
                  f"tool_calls={n(s['tool_calls'])} compactions={s['compactions']} resets={s['resets']} "
                  f"cost=${s['cost_usd']:.4f} cache_hit={result['usage']['cache_hit_rate']:.0%}", highlight=False)
    for item in result["items"]:
        console.print(_item_line(item), highlight=False, markup=False)


def _item_line(item: dict[str, Any]) -> str:
    if item["kind"] == "compaction":
        return (f"#{item['seq']} ── compaction ({item['messages_compacted']} messages, {item['tokens_before']}"
                f"→{item['tokens_after']} tokens, {item['summarizer']}{', restored' if item['restored'] else ''})")
    if item["kind"] == "reset":
        return f"#{item['seq']} ── reset at {item['timestamp']}"
    text = item["content"].replace("\n", " ")[:160]
    calls = ", ".join(c["name"] for c in item.get("tool_calls") or [])
    extra = f" → {calls}" if calls else ""
    mark = " (compacted)" if item["compacted"] else ""
    err = " [error]" if item["is_error"] else ""
    return f"#{item['seq']} {item['timestamp']} {item['role']}{mark}{err}: {text}{extra}"


# ---- actions ---------------------------------------------------------------------------------------

@app.command()
@friendly
def reset(
    keys: Annotated[list[str], typer.Argument(help="Session keys.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
    yes: YesOption = False,
) -> None:
    """Clear the conversation of sessions (billing is kept)."""
    confirm(f"Reset {len(keys)} session(s)? The agent will start fresh.", yes)
    result = connect(db, url, token).call("session.reset", _with_tenant({"keys": keys}, tenant))
    console.print(f"reset {result['reset']} session(s)")


@app.command()
@friendly
def label(
    key: Annotated[str, typer.Argument(help="Session key.")],
    text: Annotated[str | None, typer.Argument(help="The new label.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the label.")] = False,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
) -> None:
    """Set (or --clear) a session's label, the name the dashboard shows."""
    if (text is None) == (not clear):
        raise ValueError("give the label text or --clear (not both)")
    result = connect(db, url, token).call("session.label", _with_tenant({"key": key, "label": text}, tenant))
    console.print(f"{key}: {'label cleared' if result['session']['label'] is None else result['session']['label']}",
                  highlight=False)


@app.command()
@friendly
def archive(
    keys: Annotated[list[str], typer.Argument(help="Session keys.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
) -> None:
    """Hide sessions from the default list (ls --archived shows them); nothing is deleted."""
    result = connect(db, url, token).call("session.archive", _with_tenant({"keys": keys}, tenant))
    console.print(f"archived {result['archived']} session(s)")


@app.command()
@friendly
def unarchive(
    keys: Annotated[list[str], typer.Argument(help="Session keys.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
) -> None:
    """Bring archived sessions back to the default list."""
    result = connect(db, url, token).call("session.unarchive", _with_tenant({"keys": keys}, tenant))
    console.print(f"unarchived {result['unarchived']} session(s)")


@app.command()
@friendly
def delete(
    keys: Annotated[list[str], typer.Argument(help="Session keys.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
    yes: YesOption = False,
) -> None:
    """Delete sessions permanently, with everything of them."""
    confirm(f"Delete {len(keys)} session(s) permanently? This cannot be undone.", yes)
    result = connect(db, url, token).call("session.delete", _with_tenant({"keys": keys}, tenant))
    console.print(f"deleted {result['deleted']} session(s)")


@app.command()
@friendly
def compact(
    key: Annotated[str, typer.Argument(help="Session key.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
    instructions: Annotated[str | None, typer.Option(help="What the summary should focus on.")] = None,
    keep_recent_tokens: Annotated[int | None, typer.Option(help="Recent tokens kept verbatim.")] = None,
    yes: YesOption = False,
    config: Annotated[str | None, typer.Option("--config", help="TOML settings file.")] = None,
) -> None:
    """Summarise older messages of a session into one compaction."""
    confirm(f"Compact {key!r}? Older messages leave the agent's live context.", yes)
    params: dict[str, Any] = _with_tenant({"key": key}, tenant)
    if instructions:
        params["instructions"] = instructions
    if keep_recent_tokens is not None:
        params["keep_recent_tokens"] = keep_recent_tokens
    result = connect(db, url, token, config).call("session.compact", params)
    if not result["compacted"]:
        # The server says why (one turn, or the keep covers every turn) with its own numbers.
        console.print(result["message"], highlight=False)
        if suggested := result.get("suggested_keep"):
            console.print(f"to compact the oldest turn: --keep-recent-tokens {suggested['keep_recent_tokens']}",
                          highlight=False)
        return
    c = result["compaction"]
    console.print(f"compacted {c['messages_compacted']} messages: {result['tokens_before']} → "
                  f"{result['tokens_after']} tokens ({result['summarizer']})", highlight=False)
    if result.get("fallback_reason"):
        console.print(f"[yellow]note:[/yellow] fell back to offline: {result['fallback_reason']}", highlight=False)


@app.command()
@friendly
def compactions(
    key: Annotated[str, typer.Argument(help="Session key.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
) -> None:
    """List a session's compactions (checkpoints)."""
    result = connect(db, url, token).call("session.compactions", _with_tenant({"key": key}, tenant))
    rows = [[str(c["seq"]), c["timestamp"], c["reason"], str(c["messages_compacted"]),
             f"{c['tokens_before']}→{c['tokens_after']}", c["summarizer"],
             "restored" if c["restored"] else ("active" if c["active"] else "superseded")]
            for c in result["compactions"]]
    columns = ("seq", "when", "reason", "messages", "tokens before→after", "summarizer", "state")
    print_rows(console, err_console, columns, rows)


@app.command()
@friendly
def restore(
    key: Annotated[str, typer.Argument(help="Session key.")],
    seq: Annotated[int, typer.Argument(help="The compaction's seq (see `compactions`).")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
    yes: YesOption = False,
) -> None:
    """Undo a compaction: its messages become live again."""
    confirm(f"Restore compaction {seq} of {key!r}?", yes)
    result = connect(db, url, token).call("session.restore", _with_tenant({"key": key, "seq": seq}, tenant))
    console.print(f"restored compaction {result['restored']}; live context is {result['live_tokens']} tokens")


# ---- transfer --------------------------------------------------------------------------------------

@app.command()
@friendly
def export(
    keys: Annotated[list[str], typer.Argument(help="Session keys.")],
    output: Annotated[str | None, typer.Option("-o", "--output", help="File (default: <key>.jsonl).")] = None,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
) -> None:
    """Export sessions as JSONL."""
    from sessionscope.rpc.methods.sessions import export_filename

    path = Path(output or export_filename(keys))
    backend = connect(db, url, token)
    # Written beside the target and renamed at the end: a failed export (an unknown key, a
    # dropped connection) leaves no partial file, and never clobbers an earlier good one.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        size = backend.export(keys, tenant, partial)
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)
    console.print(f"wrote {path} ({number(console)(size)} bytes)", highlight=False)


@app.command("import")
@friendly
def import_(
    path: Annotated[str, typer.Argument(help="A JSONL export, or a transcript file or folder.")],
    format: Annotated[str | None, typer.Option("--format", help="openclaw, claude-code, codex or jsonl "
                                               "(detected when left out).")] = None,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, tenant: TenantOption = None,
) -> None:
    """Import sessions; re-importing the same files adds nothing."""
    from sessionscope.importers import detect_format, format_tally

    fmt = format or detect_format(path)
    backend = connect(db, url, token, create=True)
    if isinstance(backend, LocalBackend) and (backend.db.created or backend.db.upgraded_from):
        made = "created a new store" if backend.db.created else f"upgraded the store from {backend.db.upgraded_from}"
        console.print(f"{made} at {backend.db.location}", highlight=False)
    with progress_bar() as bar:
        task = bar.add_task(f"importing {fmt}", total=None)
        result = import_files(backend, path, fmt, tenant, progress=lambda n: bar.advance(task, n))
    stats = result.stats
    console.print(f"imported {stats.sessions} new session(s), {stats.messages} message(s), "
                  f"{stats.compactions} compaction(s), {stats.resets} reset(s), {stats.executions} execution(s); "
                  f"{stats.duplicates} duplicate(s) already stored; {result.skipped_total} line(s) skipped",
                  highlight=False)
    console.print("source records (mapped, kept raw, or skipped):", highlight=False)
    for line in format_tally(result.tally):
        console.print(line, highlight=False, markup=False)
    skipped = result.skipped
    for item in skipped[:50]:
        err_console.print(f"  skipped {item.file}:{item.line}: {item.reason}", highlight=False, markup=False)
    stored = stats.sessions + stats.messages + stats.compactions + stats.resets + stats.executions
    if stored + stats.duplicates == 0:  # duplicates alone are a re-import, which succeeds
        raise fail(f"nothing imported from {path}: no record could be read (see the skipped lines above)")
