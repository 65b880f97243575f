"""Export names: one download per Export action whatever the tenants, named by the key (one
session) or `sessions-N-YYYYMMDD-HHMM.jsonl` (a selection), with a UTF-8 filename* header."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def test_export_selected_across_tenants_is_one_named_file(page: Page, rpc, ns: str, tmp_path: Path) -> None:
    pairs = [(f"{ns}-t{i}", f"{ns}:x{i}") for i in range(3)]
    for tenant, key in pairs:
        rpc.seed(key, agent=f"{ns}-exp", messages=2, tenant=tenant)
    page.goto(f"/sessions?agent={ns}-exp")
    expect(page.locator("tr.row")).to_have_count(3)
    page.locator("input[data-select-all]").check()
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    with page.expect_download() as info:
        page.locator(".bulk-bar").get_by_role("button", name="Export Selected").click()
    expect(page.locator("#toast")).to_contain_text("Exporting 3 sessions")
    page.wait_for_timeout(500)
    assert len(downloads) == 1
    assert page.watch.count("session.export") == 1
    name = info.value.suggested_filename
    assert re.fullmatch(r"sessions-3-\d{8}-\d{4}\.jsonl", name), name
    target = tmp_path / name
    info.value.save_as(target)
    headers = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert sorted((h["tenant"], h["key"]) for h in headers if h["type"] == "session") == sorted(pairs)


def test_detail_export_is_named_by_its_key(page: Page, rpc, ns: str) -> None:
    key = f"{ns}:café/ünïcode"
    rpc.seed(key, agent=f"{ns}-exp1", messages=2)
    page.goto(f"/sessions/{quote(key, safe='')}")
    with page.expect_download() as info:
        page.get_by_role("button", name="Export JSONL").click()
    assert info.value.suggested_filename == f"{ns}_café_ünïcode.jsonl"

    link = rpc("session.export", key=key)
    assert link["filename"] == f"{ns}_café_ünïcode.jsonl"
    disposition = httpx.get(link["url"]).headers["content-disposition"]
    assert f"filename*=UTF-8''{quote(link['filename'], safe='')}" in disposition
    assert f'filename="{ns}_caf___n_code.jsonl"' in disposition


def test_a_long_key_is_cut_with_a_hash(rpc, ns: str) -> None:
    key = f"{ns}:" + "k" * 300
    rpc.seed(key, agent=f"{ns}-exp2", messages=1)
    name = rpc("session.export", key=key)["filename"]
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    assert name == f"{key[:71]}-{digest}.jsonl".replace(":", "_")
    assert len(name) == 80 + len(".jsonl")
