"""The login page in Chromium (issue 14): a login link asks for one click before it logs in, and
`next` is followed only to a path on this origin (tab, CR and LF tricks included)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import RunningServer
from tests.security_helpers import create_token_in_store


@pytest.fixture(scope="module")
def auth_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from sessionscope.web.services import ServerConfig

    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('login')}/login.db"
    # In a thread: sync Playwright keeps an event loop running on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        token = pool.submit(create_token_in_store, url, name="link-admin", role="admin").result()
    with RunningServer(ServerConfig(database=url, auth=True)) as running:
        yield running.url, token


def test_a_login_link_asks_for_one_click_before_it_logs_in(browser: Browser, auth_site: tuple[str, str]) -> None:
    base, token = auth_site
    context = browser.new_context(base_url=base)
    page = context.new_page()
    page.goto(f"/login?token={token}&next=/%09/evil.example/")  # the open redirect that was found
    button = page.locator("#login-confirm-button")
    expect(button).to_have_text("Log in as link-admin")
    assert "token=" not in page.url
    assert [c for c in context.cookies() if c["name"] == "sessionscope_session"] == []  # nothing yet
    button.click()
    page.wait_for_url(f"{base}/sessions")  # not evil.example
    cookie = next(c for c in context.cookies() if c["name"] == "sessionscope_session")
    assert cookie["httpOnly"] and token not in cookie["value"]
    context.close()


NEXT_CASES: list[tuple[str, str]] = [
    ("/%09/evil.example/", "/%09/evil.example/"),  # a literal %09 stays a path here
    ("/\t/evil.example/", "/sessions"),
    ("/\n/evil.example/", "/sessions"),
    ("/\r/evil.example/", "/sessions"),
    ("//evil.example/", "/sessions"),
    ("/\\evil.example/", "/sessions"),
    ("https://evil.example/", "/sessions"),
    ("javascript:alert(1)", "/sessions"),
    ("/sessions/a%20key?tenant=x#top", "/sessions/a%20key?tenant=x#top"),
]


def test_safe_next_accepts_same_origin_paths_only(browser: Browser, auth_site: tuple[str, str]) -> None:
    base, _ = auth_site
    page = browser.new_page(base_url=base)
    page.goto("/login")
    judged: list[Any] = page.evaluate(
        "async (cases) => { const m = await import('/static/login.js');"
        " return cases.map((c) => m.safeNext(c)); }", [c for c, _ in NEXT_CASES])
    assert judged == [expected for _, expected in NEXT_CASES]
    page.close()
