"""Auto-compaction: an append that pushes the live context over the agent's threshold compacts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionscope.web.services import ServerConfig
from tests.conftest import RPC, RunningServer, conversation


@pytest.fixture(scope="module")
def auto_server(database_url_factory: Any, dialect: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[RunningServer]:
    config = Path(tmp_path_factory.mktemp("cfg")) / "sessionscope.toml"
    config.write_text(
        '[agents."tiny-window".compaction]\ncontext_window = 4000\nthreshold = 0.85\nkeep_recent_tokens = 800\n'
    )
    url = database_url_factory(dialect, "auto")
    with RunningServer(ServerConfig(database=url, auth=False, config_path=str(config))) as running:
        yield running


def test_append_over_threshold_compacts(auto_server: RunningServer, tenant: str) -> None:
    rpc = RPC(auto_server.url, tenant)
    results = [rpc.append("auto", conversation(3, f"b{i}-"), agent="tiny-window") for i in range(12)]
    triggered = [r["auto_compaction"] for r in results if r.get("auto_compaction")]
    assert triggered, "the context passed 85% of 4000 tokens but nothing compacted"
    item = triggered[0]["compaction"]
    assert item["reason"] == "auto-threshold"
    status = rpc("session.status", key="auto", limit=1000)["session"]
    assert status["context_tokens"] <= 0.85 * 4000
    listed = rpc("session.compactions", key="auto")["compactions"]
    assert all(c["reason"] == "auto-threshold" for c in listed)
    # A manual compaction right after records `manual`, or finds nothing to do.
    manual = rpc("session.compact", key="auto", keep_recent_tokens=100)
    if manual["compacted"]:
        assert manual["compaction"]["reason"] == "manual"


def test_other_agents_do_not_auto_compact(auto_server: RunningServer, tenant: str) -> None:
    rpc = RPC(auto_server.url, tenant)
    results = [rpc.append("plain", conversation(3, f"b{i}-"), agent="main") for i in range(12)]
    assert not any(r.get("auto_compaction") for r in results)
    assert rpc("session.metrics", key="plain")["compactions"] == 0
