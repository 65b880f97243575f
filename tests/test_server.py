"""`sessionscope serve`: configuration loaded and checked at start-up, the same in every worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionscope.errors import ConfigError
from sessionscope.server import SERVER_CONFIG_ENV, app_from_env, load_config
from sessionscope.web.services import ServerConfig, config_from_env, config_to_env
from tests.conftest import conversation, free_port

TINY = '[agents."tiny".compaction]\ncontext_window = 4000\nthreshold = 0.85\nkeep_recent_tokens = 800\n'


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "sessionscope", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))


@pytest.mark.parametrize(("text", "needles"), [
    ("[compaction]\nthreshold = 2\n", ["threshold", "(0, 1]"]),
    ("[compaction]\ntreshold = 0.5\n", ["unknown key 'treshold'"]),
    ("[compaction]\ncontext_window = \"big\"\n", ["context_window must be int"]),
    ('[agents."tiny".compaction]\nkeep_recent_tokens = -5\n', ["agents", "tiny", "keep_recent_tokens", ">= 0"]),
    ("[compaction\n", ["invalid TOML"]),
])
def test_a_bad_config_file_stops_serve_with_one_line(tmp_path: Path, text: str, needles: list[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    proc = serve("--db", str(tmp_path / "s.db"), "--no-auth", "--port", str(free_port()), "--config", str(config))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "bad.toml" in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "serving" not in out  # refused before binding


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: no such config file"):
        load_config(db=str(tmp_path / "s.db"), host="127.0.0.1", no_auth=True, config=str(tmp_path / "nowhere.toml"))


def test_the_configuration_travels_whole_to_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ok.toml"
    config.write_text(TINY)
    loaded = load_config(db=str(tmp_path / "s.db"), host="127.0.0.1", no_auth=True, config=str(config))
    assert loaded.config_path == str(config.resolve()) and loaded.auth is False
    assert config_from_env(config_to_env(loaded)) == loaded
    monkeypatch.delenv(SERVER_CONFIG_ENV, raising=False)
    with pytest.raises(ConfigError, match=SERVER_CONFIG_ENV):
        app_from_env()


def test_every_worker_gets_the_config_file(tmp_path: Path) -> None:
    """`serve --workers 2 --config F`: an agent's auto-compaction from F fires whichever worker answers."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    port = free_port()
    proc = serve("--db", str(tmp_path / "w.db"), "--no-auth", "--port", str(port), "--workers", "2",
                 "--config", str(config))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        time.sleep(1.0)  # let the second worker finish starting too
        compacted = []
        for s in range(4):
            answers: list[dict[str, Any]] = []
            for i in range(12):
                body = {"jsonrpc": "2.0", "id": 1, "method": "session.append",
                        "params": {"key": f"w{s}", "agent": "tiny", "channel": "web",
                                   "messages": conversation(3, f"s{s}b{i}-")}}
                # A new connection each time, so the kernel spreads the calls over both workers.
                answers.append(httpx.post(f"{base}/rpc", json=body, timeout=30).json()["result"])
            compacted.append(sum(1 for a in answers if a.get("auto_compaction")))
        assert all(compacted), f"auto-compactions per session: {compacted} (a worker ignored --config)"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_server_config_reads_the_debug_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSCOPE_DEBUG", "1")
    assert ServerConfig().validate_results is True
    monkeypatch.setenv("SESSIONSCOPE_DEBUG", "")
    assert ServerConfig().validate_results is False


def test_a_serving_process_freezes_its_startup_objects_and_collects_less_often(tmp_path: Any) -> None:
    """run_server tunes the collector once the app is built (server.tune_gc): the objects alive
    then are frozen, and gen 0 is collected at GC_THRESHOLDS, not at Python's default 700."""
    import subprocess
    import sys

    code = ("import gc, socket, sessionscope.server as s\n"
            "s.uvicorn.Server.run = lambda self, sockets=None: print(gc.get_threshold(), gc.get_freeze_count() > 0)\n"
            "k = socket.socket(); k.bind(('127.0.0.1', 0))\n"
            f"s.run_server(db={str(tmp_path / 'gc.db')!r}, host='127.0.0.1', port=k.getsockname()[1], no_auth=True,"
            " config=None, workers=1, sock=k)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    from sessionscope.server import GC_THRESHOLDS

    assert out.stdout.strip().splitlines()[-1] == f"{GC_THRESHOLDS} True"
