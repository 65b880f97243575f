"""Issue 17: every command a new user types works, or says in one line why not.

Each test runs the CLI as a new user would: a fresh HOME and data directory (XDG_DATA_HOME),
none of our environment variables, commands as subprocesses, and asserts the exit code, the
output and that no traceback is shown.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    PG_ADMIN_DSN,
    RPC,
    conversation,
    free_port,
    postgres_available,
    skip_or_fail_postgres,
)
from tests.test_docs import first_contact_env


class User:
    """A new user on a fresh machine: their own HOME, data dir and working directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path
        self.env = first_contact_env(tmp_path)
        self.default_store = Path(self.env["XDG_DATA_HOME"]) / "sessionscope" / "sessionscope.db"

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """No terminal: stdin is /dev/null, output is piped."""
        return subprocess.run([sys.executable, "-m", "sessionscope.cli", *args], capture_output=True, text=True,
                              timeout=300, env={**self.env, **(env or {})}, cwd=self.home, stdin=subprocess.DEVNULL,
                              check=False)

    def demo(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run("demo", "--sessions", "6", "--messages", "8", "--no-serve", *args)
        assert done.returncode == 0, done.stderr
        return done


@pytest.fixture
def user(tmp_path: Path) -> User:
    return User(tmp_path)


def one_line_error(done: subprocess.CompletedProcess[str], *wanted: str) -> str:
    """A failure told in one or two lines on stderr, with every `wanted` part, and no traceback."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr and "File \"" not in done.stderr, done.stderr
    assert 1 <= len(lines) <= 2, done.stderr
    for part in wanted:
        assert part in done.stderr, (part, done.stderr)
    return done.stderr


# ---- 1. errors: a bad store is one line naming it and the fix ---------------------------------------

def test_bad_store_paths_are_one_line_each(user: User) -> None:
    not_sqlite = user.home / "notes.txt"
    not_sqlite.write_text("my notes\n")
    cases = {
        str(user.home / "no-such-dir" / "s.db"): "no store at",
        str(not_sqlite): "not a SQLite store",
        str(user.home): "is a directory",
        "mysql://root@localhost/sessions": "unsupported database 'mysql'",
    }
    for db, problem in cases.items():
        one_line_error(user.run("ls", "--db", db), problem, db if "://" not in db else "mysql")
    one_line_error(user.run("ls", env={"SESSIONSCOPE_DATABASE_URL": "foo://bar"}), "SESSIONSCOPE_DATABASE_URL",
                   "unsupported database 'foo'")
    # Where a store would be created, a missing folder is named as such.
    one_line_error(user.run("import", str(not_sqlite), "--format", "jsonl", "--db",
                            str(user.home / "no-such-dir" / "s.db")), "no-such-dir", "does not exist")


def test_debug_shows_the_traceback(user: User) -> None:
    done = user.run("--debug", "ls", "--db", str(user.home / "missing.db"))
    assert done.returncode != 0 and "Traceback" in done.stderr and "no store at" in done.stderr


def test_bad_options_are_one_line(user: User) -> None:
    one_line_error(user.run("ls", "--limit", "many"), "--limit", "sessionscope ls --help")
    one_line_error(user.run("show"), "KEY")
    one_line_error(user.run("nosuchcommand"), "nosuchcommand")


@pytest.fixture
def pg_server_url() -> str:
    reason = postgres_available()
    if reason:
        skip_or_fail_postgres(reason)
    return PG_ADMIN_DSN.rsplit("/", 1)[0]


def test_postgres_database_that_does_not_exist(user: User, pg_server_url: str) -> None:
    done = user.run("ls", "--db", f"{pg_server_url}/ss_cli_no_such_database")
    one_line_error(done, "ss_cli_no_such_database", "does not exist", "createdb")


def test_postgres_database_without_our_tables_is_left_alone(user: User, pg_server_url: str) -> None:
    from tests.conftest import PG_TEST_DB, fresh_postgres_database

    fresh_postgres_database(f"{PG_TEST_DB}_empty")
    url = f"{pg_server_url}/{PG_TEST_DB}_empty"
    for args in (["ls"], ["check"], ["audit"], ["show", "k"]):
        one_line_error(user.run(*args, "--db", url), "no store at", "no sessionscope tables")
    import asyncio

    import asyncpg

    async def tables() -> list[str]:
        conn = await asyncpg.connect(f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{PG_TEST_DB}_empty")
        try:
            return [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        finally:
            await conn.close()

    assert asyncio.run(tables()) == []


# ---- 2. finding the store ---------------------------------------------------------------------------

def test_ls_after_demo_lists_the_demos_sessions(user: User) -> None:
    built = user.demo()
    assert str(user.default_store) in built.stdout and "`sessionscope ls`" in built.stdout
    listed = user.run("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["sessions"]) == 6
    again = user.demo()  # the demo rebuilds its own store
    assert again.returncode == 0 and len(json.loads(user.run("ls", "--json").stdout)["sessions"]) == 6


def test_demo_never_deletes_a_store_it_did_not_build(user: User) -> None:
    mine = user.home / "mine.db"
    user.demo("--db", str(user.home / "demo.db"))
    exported = user.run("export", *_first_key(user, "demo.db"), "--db", str(user.home / "demo.db"), "-o", "one.jsonl")
    assert exported.returncode == 0, exported.stderr
    assert user.run("import", "one.jsonl", "--db", str(mine)).returncode == 0
    refused = user.run("demo", "--db", str(mine), "--no-serve")
    one_line_error(refused, str(mine), "did not build")
    assert len(json.loads(user.run("ls", "--db", str(mine), "--json").stdout)["sessions"]) == 1


def _first_key(user: User, db: str) -> list[str]:
    return [json.loads(user.run("ls", "--db", str(user.home / db), "--json").stdout)["sessions"][0]["key"]]


@pytest.mark.parametrize("command", [["ls"], ["show", "k"], ["export", "k", "-o", "k.jsonl"], ["check"], ["audit"],
                                     ["compactions", "k"], ["token", "list"], ["delete", "k", "--yes"]])
def test_commands_that_do_not_make_stores_never_create_one(user: User, command: list[str]) -> None:
    one_line_error(user.run(*command), "no store at", str(user.default_store), "sessionscope import")
    typo = user.home / "sesions.db"
    one_line_error(user.run(*command, "--db", str(typo)), "no store at", str(typo))
    assert not user.default_store.exists() and not typo.exists()
    assert not (user.home / "k.jsonl").exists()


def test_import_creates_a_store_and_says_so(user: User) -> None:
    user.demo("--db", str(user.home / "demo.db"))
    user.run("export", *_first_key(user, "demo.db"), "--db", str(user.home / "demo.db"), "-o", "one.jsonl")
    done = user.run("import", "one.jsonl")
    assert done.returncode == 0, done.stderr
    assert f"created a new store at {user.default_store}" in done.stdout
    again = user.run("import", "one.jsonl")
    assert again.returncode == 0 and "created" not in again.stdout


# ---- 3. tenants resolved for the user ---------------------------------------------------------------

def test_rpc_resolves_an_omitted_tenant(rpc: RPC) -> None:
    other = f"{rpc.tenant}-b"
    rpc.append("only-in-a", conversation(2))
    rpc.append("in-both", conversation(2))
    rpc("session.append", key="in-both", tenant=other, agent="main", channel="web", messages=conversation(1))
    found = rpc.request("session.status", {"key": "only-in-a"})["result"]["session"]
    assert found["tenant"] == rpc.tenant
    ambiguous = rpc.request("session.status", {"key": "in-both"})["error"]
    assert ambiguous["code"] == -32602 and ambiguous["data"]["field"] == "tenant"
    assert ambiguous["data"]["tenants"] == sorted([rpc.tenant, other])
    assert rpc.request("session.history", {"key": f"nowhere-{rpc.tenant}"})["error"]["code"] == -32001
    # Every key-taking method resolves, the ones that change sessions included.
    assert rpc.request("session.compactions", {"key": "only-in-a"})["result"]["compactions"] == []
    assert rpc.request("session.reset", {"keys": ["only-in-a"]})["result"] == {"reset": 1}
    assert rpc.request("session.delete", {"keys": ["in-both"]})["error"]["data"]["tenants"] == [rpc.tenant, other]
    assert rpc("session.status", key="in-both")["session"]["tenant"] == rpc.tenant  # naming one still works


def test_cli_finds_sessions_outside_the_default_tenant(user: User) -> None:
    user.demo()
    rows = json.loads(user.run("ls", "--json").stdout)["sessions"]
    elsewhere = next(r for r in rows if r["tenant"] != "default")
    for command in (["show", elsewhere["key"]], ["compactions", elsewhere["key"]],
                    ["export", elsewhere["key"], "-o", "x.jsonl"]):
        done = user.run(*command)
        assert done.returncode == 0, (command, done.stderr)
    shown = user.run("show", elsewhere["key"])
    assert f"tenant={elsewhere['tenant']}" in shown.stdout
    table = user.run("ls", env={"FORCE_COLOR": "1", "COLUMNS": "80"})
    assert table.returncode == 0 and "tenant" in table.stdout.splitlines()[1]


def test_cli_says_which_tenants_hold_an_ambiguous_key(rpc: RPC) -> None:
    other = f"{rpc.tenant}-b"
    rpc.append("twice", conversation(1))
    rpc("session.append", key="twice", tenant=other, agent="main", channel="web", messages=conversation(1))
    done = subprocess.run([sys.executable, "-m", "sessionscope.cli", "show", "twice", "--url", rpc.url],
                          capture_output=True, text=True, timeout=120, check=False)
    one_line_error(done, rpc.tenant, other, "--tenant")


def test_dashboard_deep_link_works_without_tenant(rpc: RPC) -> None:
    """The dashboard's /sessions/:key calls session.status with the key alone (session-detail.js);
    what makes the deep link work is that call resolving the tenant, checked here over HTTP."""
    rpc.append("deep/link", conversation(1))
    script = (Path(__file__).parents[1] / "src/sessionscope/web/static/views/session-detail.js").read_text()
    assert "let scope = tenant ? { key, tenant } : { key };" in script
    page = httpx.get(f"{rpc.url}/sessions/deep%2Flink")
    assert page.status_code == 200
    assert rpc.request("session.status", {"key": "deep/link"})["result"]["session"]["tenant"] == rpc.tenant


# ---- 4. destructive commands ask --------------------------------------------------------------------

def test_purge_and_revoke_refuse_without_a_terminal_or_yes(user: User) -> None:
    user.demo()
    created = user.run("token", "create", "robot", "--role", "admin")
    assert created.returncode == 0, created.stderr
    for tenant in ("default", "acme", "globex"):
        assert user.run("tenant", "retention", tenant, "1").returncode == 0
    for command in (["purge"], ["purge", "--tenant", "acme"], ["tenant", "purge", "acme"], ["token", "revoke", "1"]):
        one_line_error(user.run(*command), "--yes")
    assert len(json.loads(user.run("ls", "--json").stdout)["sessions"]) == 6  # nothing purged
    assert json.loads(user.run("token", "list", "--json").stdout)[0]["revoked_at"] is None
    assert user.run("purge", "--yes").returncode == 0  # the demo's old sessions go; those it reset stay
    assert len(json.loads(user.run("ls", "--json").stdout)["sessions"]) < 6


# ---- 5. serve and demo: checked address, bind first, then say where the store is ------------------

def test_serve_rejects_a_bad_port_and_host(user: User) -> None:
    one_line_error(user.run("serve", "--port", "99999"), "--port 99999", "65535")
    one_line_error(user.run("serve", "--host", "no-such-host.invalid"), "no-such-host.invalid")
    one_line_error(user.run("demo", "--port", "0"), "--port 0")
    assert not user.default_store.exists()


def test_busy_port_is_one_line_and_no_login_link(user: User) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for command in (["serve", "--port", port], ["demo", "--port", port, "--sessions", "2"]):
            done = user.run(*command)
            one_line_error(done, f"port {port}", "already in use")
            assert "login" not in done.stdout and "serving" not in done.stdout
    assert not user.default_store.exists()  # no store, and so no admin token, for a server that never ran


def test_serve_says_where_the_store_is_and_what_it_holds(user: User) -> None:
    user.demo()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "sessionscope.cli", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=user.env)
    lines = []
    try:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if "login?token=" in line:
                break
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert lines[0] == f"store {user.default_store} (6 sessions)\n"
    assert lines[1] == f"sessionscope serving on http://127.0.0.1:{port}/sessions\n"
    assert f"http://127.0.0.1:{port}/login?token=ss_" in lines[3]


# ---- 6. export leaves no partial file; import fails when nothing imports ----------------------------

def test_export_of_an_unknown_key_leaves_no_file(user: User) -> None:
    user.demo()
    one_line_error(user.run("export", "UNKNOWN", "-o", "F"), "UNKNOWN")
    assert sorted(p.name for p in user.home.iterdir()) == ["home"]
    (user.home / "F").write_text("an earlier export\n")
    user.run("export", "UNKNOWN", "-o", "F")
    assert (user.home / "F").read_text() == "an earlier export\n"


def test_import_of_nothing_exits_non_zero(user: User) -> None:
    (user.home / "bad.jsonl").write_text('not json\n{"type": "nope"}\n')
    done = user.run("import", "bad.jsonl", "--format", "jsonl", "--db", str(user.home / "s.db"))
    assert done.returncode == 1 and "Traceback" not in done.stderr and "nothing imported" in done.stderr


# ---- 7. options that go together, and --url everywhere ---------------------------------------------

def test_url_and_db_together_is_an_error(user: User) -> None:
    one_line_error(user.run("ls", "--db", "x.db", "--url", "http://127.0.0.1:9"), "--db", "--url", "not both")


def test_check_works_with_url(rpc: RPC) -> None:
    rpc.append("checked", conversation(2))
    done = subprocess.run([sys.executable, "-m", "sessionscope.cli", "check", "--url", rpc.url, "--tenant", rpc.tenant],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: 1 session(s) checked")


def test_every_store_reading_command_takes_url() -> None:
    from sessionscope.cli import command

    root = command()
    local_only = {"serve", "demo"}

    def leaves(group: object, prefix: str = "") -> dict[str, object]:
        found = {}
        for name, sub in group.commands.items():  # type: ignore[attr-defined]
            path = f"{prefix}{name}"
            found |= leaves(sub, f"{path} ") if hasattr(sub, "commands") else {path: sub}
        return found

    for path, cmd in leaves(root).items():
        names = {opt for p in cmd.params for opt in p.opts}  # type: ignore[attr-defined]
        assert ("--url" in names) != (path in local_only), path


# ---- 8. output ---------------------------------------------------------------------------------------

def test_help_labels_are_clicks(user: User) -> None:
    for command in (["--help"], ["ls", "--help"], ["show", "--help"], ["token", "create", "--help"]):
        done = user.run(*command)
        assert done.returncode == 0 and "<bool>" not in done.stdout and "<str>" not in done.stdout
    assert "INTEGER" in user.run("ls", "--help").stdout


def test_demo_summary_and_progress_count_the_same_records(user: User) -> None:
    built = user.demo()
    summary = [line for line in built.stdout.splitlines() if line.startswith("demo store")]
    assert len(summary) == 1 and summary[0].endswith("resets")  # one line when piped, not wrapped at 80
    counts = {word: int(n) for n, word in ((p.split()[0], p.split()[1]) for p in summary[0].split(": ")[1].split(", "))}
    bar = next(line for line in built.stderr.splitlines() if "storing demo records" in line)
    done, total = bar.split()[-2].split("/")
    assert int(done) == int(total) == counts["messages"] + counts["executions"]


def test_numbers_have_separators_in_a_terminal_only(user: User) -> None:
    user.demo("--messages", "60")
    terminal = user.run("ls", env={"FORCE_COLOR": "1", "COLUMNS": "200"}).stdout
    piped = user.run("ls").stdout
    tokens = [line.split("\t")[6] for line in piped.splitlines()[1:]]
    big = next(t for t in tokens if int(t) >= 1000)
    assert f"{int(big):,}" in terminal
    assert "," not in "".join(tokens)


def test_unknown_dashboard_paths_get_an_html_404(rpc: RPC) -> None:
    page = httpx.get(f"{rpc.url}/agents")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "/static/app.css" in page.text and "Page not found" in page.text and "/agents" in page.text
    assert httpx.get(f"{rpc.url}/%3Cscript%3E").text.count("<script>") == 0  # the path is escaped
    assert httpx.post(f"{rpc.url}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "tenant.list"}).status_code == 200
