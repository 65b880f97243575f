"""Screenshots of the dashboard for docs/screenshots/: the list and each detail tab, light and dark.

    python bench/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]

Builds a small demo store with the project's demo generator (`sessionscope demo --no-serve`),
serves it on a free loopback port (`sessionscope serve --no-auth`) and drives Debian's Chromium.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.browser.chromium import cli, cli_env, free_port, launch_chromium  # noqa: E402 - after sys.path

VIEWPORT = {"width": 1280, "height": 860}


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not come up")


def rpc(url: str, method: str, **params: object) -> dict:
    body = httpx.post(
        f"{url}/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    ).json()
    if "error" in body:
        raise SystemExit(f"{method}: {body['error']}")
    return body["result"]


def pick_session(url: str) -> dict:
    """A compacted session with tool calls and executions: the richest detail page."""
    rows = rpc(url, "session.list", sort="message_count", order="desc", limit=40)["sessions"]
    rows.sort(key=lambda r: (r["compactions"] > 0, r["executions"] > 0, r["tool_calls"] > 0), reverse=True)
    return rows[0]


def shoot(url: str, out: Path, chromium: str) -> list[Path]:
    session = pick_session(url)
    detail = f"/sessions/{quote(session['key'], safe='')}"
    if session["tenant"] != "default":
        detail += f"?tenant={quote(session['tenant'])}"
    written = []
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        for scheme in ("light", "dark"):
            suffix = "" if scheme == "light" else "-dark"
            context = browser.new_context(base_url=url, viewport=VIEWPORT, color_scheme=scheme)
            page = context.new_page()
            page.goto("/sessions")
            page.wait_for_selector("tr.row")
            page.locator("tr.row input[type=checkbox]").nth(1).check()
            page.locator("tr.row input[type=checkbox]").nth(2).check()
            written.append(out / f"list{suffix}.png")
            page.screenshot(path=written[-1])

            page.goto(detail)
            page.wait_for_selector(".timeline > li")
            cards = page.locator(".timeline details.tool-card")
            if cards.count():
                cards.last.locator("summary").click()
                cards.last.scroll_into_view_if_needed()
            written.append(out / f"detail-conversation{suffix}.png")
            page.screenshot(path=written[-1])
            if scheme == "light":
                marker = page.locator("li.compaction-marker").first
                if marker.count():
                    marker.scroll_into_view_if_needed()
                    written.append(out / "detail-compaction.png")
                    page.screenshot(path=written[-1])
            for tab, ready in (("context", ".segbar, .state"), ("metrics", ".stats, .state")):
                page.locator(f"[data-tab={tab}]").click()
                page.wait_for_selector(f"#panel-{tab} {ready.split(',')[0]}")
                written.append(out / f"detail-{tab}{suffix}.png")
                page.screenshot(path=written[-1], full_page=tab == "context")
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--sessions", type=int, default=80)
    parser.add_argument("--messages", type=int, default=40)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        subprocess.run(
            cli(
                "demo",
                "--db",
                str(db),
                "--sessions",
                str(args.sessions),
                "--messages",
                str(args.messages),
                "--no-serve",
            ),
            env=cli_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            cli("serve", "--db", str(db), "--port", str(port), "--no-auth"),
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(url, proc)
            for path in shoot(url, args.out, args.chromium):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
