"""A cross-site page cannot change a --no-auth server: Chromium submits a real text/plain form."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

ATTACKER = "http://attacker.test"


def attack_page(server_url: str, key: str) -> str:
    call = {"jsonrpc": "2.0", "id": 1, "method": "session.delete", "params": {"key": key}}
    # enctype=text/plain sends `name=value`: the name carries the JSON up to its last `"`, the
    # value closes it, so the body is valid JSON-RPC (the classic cross-site JSON form).
    text = json.dumps(call)
    name, value = text[:-1] + ', "pad": "', '"}'
    return (f'<form id="f" method="POST" action="{server_url}/rpc" enctype="text/plain">'
            f"<input type='hidden' name='{name}' value='{value}'></form>"
            "<script>document.getElementById('f').submit()</script>")


def test_a_cross_site_form_deletes_nothing(browser: Browser, server_url: str, rpc, ns: str) -> None:
    key = f"{ns}:target"
    rpc.seed(key, agent=f"{ns}-bot")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.route(f"{ATTACKER}/**", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                 body=attack_page(server_url, key)))
        with page.expect_response(f"{server_url}/rpc") as answered:
            page.goto(f"{ATTACKER}/evil.html")
        assert answered.value.status in (403, 415)
    finally:
        context.close()
    assert rpc("session.status", key=key)["session"]["key"] == key  # still there
