"""Admin commands: tokens, the audit log, retention, purge and the integrity check.

Registered on the main `sessionscope` app by importing this module (see `sessionscope.cli`).
Like every command, each one opens a backend, calls one RPC method (or one store function) and prints.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from sessionscope.cli.main import (
    DbOption,
    TenantOption,
    TokenOption,
    UrlOption,
    YesOption,
    app,
    confirm,
    console,
    err_console,
    friendly,
)
from sessionscope.cli.output import print_rows
from sessionscope.cli.transport import connect

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenant settings.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(tenant_app, name="tenant")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw result.")]


@token_app.command("create")
@friendly
def token_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the token by (shown in the audit log).")],
    role: Annotated[str, typer.Option(help="viewer, operator, agent or admin.")] = "viewer",
    tenant: TenantOption = None,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Create a token; it is printed once and never shown again."""
    params: dict[str, Any] = {"name": name, "role": role}
    if tenant:
        params["tenant"] = tenant
    created = connect(db, url, token).call("token.create", params)
    scope = created["tenant"] or "every tenant"
    err_console.print(f"created token {created['id']} {created['name']!r}: {created['role']} on {scope}. "
                      "Store it now; it is not shown again.", highlight=False)
    print(created["token"])


@token_app.command("list")
@friendly
def token_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """List tokens (never the tokens themselves)."""
    found = connect(db, url, token).call("token.list", {"include_revoked": include_revoked})["tokens"]
    if as_json:
        console.print_json(json.dumps(found))
        return
    rows = [[str(t["id"]), t["name"], t["role"], t["tenant"] or "*", t["created_at"], t["last_used_at"] or "",
             t["revoked_at"] or ""] for t in found]
    print_rows(console, err_console, ("id", "name", "role", "tenant", "created", "last used", "revoked"), rows)


@token_app.command("revoke")
@friendly
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see `token list`).")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, yes: YesOption = False,
) -> None:
    """Revoke a token at once."""
    confirm(f"Revoke token {token_id}? Every client using it is refused from now on.", yes)
    revoked = connect(db, url, token).call("token.revoke", {"id": token_id})
    console.print(f"revoked token {revoked['id']} {revoked['name']!r} at {revoked['revoked_at']}", highlight=False)


@app.command("audit")
@friendly
def audit(
    tenant: TenantOption = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. session.delete.")] = None,
    limit: Annotated[int, typer.Option(help="Entries per page (1-500).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor from a previous call.")] = None,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Show the audit log, newest first."""
    params = {k: v for k, v in {"tenant": tenant, "action": action, "limit": limit, "cursor": cursor}.items()
              if v is not None}
    result = connect(db, url, token).call("audit.list", params)
    if as_json:
        console.print_json(json.dumps(result))
        return
    rows = []
    for e in result["entries"]:
        who = f"{e['token_name'] or '?'} (#{e['token_id']})" if e["token_id"] else (e["token_name"] or "?")
        keys = ", ".join(e["keys"][:3]) + (f" … +{len(e['keys']) - 3}" if len(e["keys"]) > 3 else "")
        rows.append([e["time"], who, e["tenant"] or "*", e["action"], keys, e["outcome"]])
    footer = f"next: --cursor {result['next_cursor']}" if result["next_cursor"] else None
    print_rows(console, err_console, ("time", "who", "tenant", "action", "keys", "outcome"), rows, footer=footer)


@tenant_app.command("retention")
@friendly
def tenant_retention(
    name: Annotated[str, typer.Argument(help="Tenant.")],
    days: Annotated[str, typer.Argument(help="Days to keep idle sessions, or 'off'.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None,
) -> None:
    """Keep a tenant's sessions DAYS after their last update ('off': forever)."""
    value = None if days.lower() in ("off", "none", "forever") else int(days)
    result = connect(db, url, token).call("tenant.set_retention", {"tenant": name, "days": value})
    kept = f"{result['retention_days']} days" if result["retention_days"] else "forever"
    console.print(f"tenant {result['tenant']!r}: sessions kept {kept} after their last update", highlight=False)


@app.command("purge")
@friendly
def purge(
    tenant: TenantOption = None,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """Delete sessions older than their tenant's retention (the server also does this hourly)."""
    _purge(tenant, db, url, token, as_json, yes)


@tenant_app.command("purge")
@friendly
def tenant_purge(
    name: Annotated[str, typer.Argument(help="Tenant.")],
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
    yes: YesOption = False,
) -> None:
    """Delete a tenant's sessions older than its retention now (`purge --tenant NAME`)."""
    _purge(name, db, url, token, as_json, yes)


def _purge(tenant: str | None, db: str | None, url: str | None, token: str | None, as_json: bool,
           yes: bool) -> None:
    which = f"tenant {tenant!r}" if tenant else "every tenant that has a retention"
    confirm(f"Delete the sessions of {which} not updated within its retention? This cannot be undone.", yes)
    params = {"tenant": tenant} if tenant else {}
    result = connect(db, url, token).call("tenant.purge", params)
    if as_json:
        console.print_json(json.dumps(result))
        return
    for t in result["tenants"]:
        console.print(f"{t['tenant']}: deleted {t['deleted']} session(s) not updated since {t['cutoff']} "
                      f"({t['retention_days']} days)", highlight=False)
    console.print(f"purged {result['deleted']} session(s)")


@app.command("check")
@friendly
def check(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's sessions.")] = None,
    db: DbOption = None, url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False,
) -> None:
    """Check the store's integrity: counters match rows, compactions are whole, no seq gaps."""
    from sessionscope.store.check import Report, format_report

    found = connect(db, url, token).call("store.check", {"tenant": tenant} if tenant else {})
    if as_json:
        print(json.dumps(found))
    else:
        report = Report(sessions=found["sessions"], problems=found["problems"],
                        problems_total=found["problems_total"])
        print(format_report(report))
    if not found["ok"]:
        raise typer.Exit(1)
