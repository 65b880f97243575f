"""The web boundary against hostile pages and hostile networks (issue 14, items 5, 6, 12 and the
small defects): media type, Origin, Host, auth before the body, limits while the body streams,
header and body timeouts, caps on unauthenticated connections. All traffic stays on loopback;
every loop is bounded in count and time."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sessionscope.web.connections import guarded
from sessionscope.web.services import ServerConfig
from tests.conftest import RPC, RunningServer
from tests.security_helpers import AuthServer

MSG = [{"id": "1", "role": "user", "content": "hello"}]


def rpc_body(method: str, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def exists(rpc: RPC, key: str) -> bool:
    return "result" in rpc.request("session.status", {"key": key, "tenant": rpc.tenant})


def raw_connection(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            return 0
        head += chunk
    return int(head.split(b" ", 2)[1])


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the connection (reads EOF, or a reset)."""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


# ---- hostile pages (item 5) ----------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", ""])
def test_rpc_takes_only_application_json(rpc: RPC, content_type: str) -> None:
    """A cross-site <form enctype=text/plain> can post valid JSON-RPC; it must change nothing."""
    rpc.append("form", MSG)
    body = json.dumps(rpc_body("session.delete", key="form", tenant=rpc.tenant)).encode()
    headers = {"content-type": content_type} if content_type else {}
    answer = rpc.http.post(f"{rpc.url}/rpc", content=body, headers=headers)
    assert answer.status_code == 415 and answer.json()["error"]["code"] == -32600
    assert exists(rpc, "form")
    charset = rpc.http.post(f"{rpc.url}/rpc", content=b'{"jsonrpc":"2.0","id":1,"method":"agent.list"}',
                            headers={"content-type": "application/json; charset=utf-8"})
    assert charset.status_code == 200 and "result" in charset.json()


def test_state_changes_check_origin(rpc: RPC) -> None:
    rpc.append("origin", MSG)
    delete = rpc_body("session.delete", key="origin", tenant=rpc.tenant)
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1"):
        answer = rpc.raw(delete, headers={"origin": origin})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == -32003
    assert exists(rpc, "origin")
    same = rpc.raw(rpc_body("session.list", tenant=rpc.tenant), headers={"origin": rpc.url})
    assert same.status_code == 200 and "result" in same.json()


def test_with_auth_too_rpc_takes_only_json_and_state_changes_check_origin(auth_server: AuthServer,
                                                                          tenant: str) -> None:
    admin = auth_server.admin
    admin("session.append", tenant=tenant, key="form", agent="a", channel="web", messages=MSG)
    delete = rpc_body("session.delete", key="form", tenant=tenant)
    form = admin.http.post(f"{auth_server.url}/rpc", content=json.dumps(delete).encode(),
                           headers={"content-type": "text/plain"})
    assert form.status_code == 415 and form.json()["error"]["code"] == -32600
    for origin in ("https://evil.example", "null"):
        foreign = admin.post(delete, headers={"origin": origin})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == -32003
    assert admin("session.status", tenant=tenant, key="form")["session"]["key"] == "form"  # still there


def test_without_auth_only_loopback_host_names_are_answered(rpc: RPC) -> None:
    """DNS rebinding: attacker.example resolving to 127.0.0.1 reaches the server with its own Host."""
    rpc.append("rebind", MSG)
    for host in ("attacker.example", "attacker.example:80", "127.0.0.1.nip.io", "10.0.0.1"):
        for method, path in (("POST", "/rpc"), ("GET", "/sessions"), ("GET", "/metrics"), ("POST", "/v1/traces")):
            answer = rpc.http.request(method, f"{rpc.url}{path}", headers={"host": host},
                                      json=rpc_body("session.list", tenant=rpc.tenant))
            assert answer.status_code == 403, (host, path)
            assert "loopback" in answer.text and "rebind" not in answer.text
    port = rpc.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        answer = rpc.raw(rpc_body("session.list", tenant=rpc.tenant), headers={"host": host})
        assert answer.status_code == 200 and answer.json()["result"]["total"] == 1, host


def test_with_auth_any_host_name_is_answered(auth_server: AuthServer) -> None:
    answer = auth_server.admin.post(rpc_body("agent.list"), headers={"host": "sessions.example.com"})
    assert answer.status_code == 200 and "result" in answer.json()


# ---- memory exhaustion without a token (item 6) --------------------------------------------------

def test_rpc_authenticates_before_reading_the_body(auth_server: AuthServer) -> None:
    """Headers that announce 500 MB and no token: answered 401 at once, the body never read."""
    with raw_connection(auth_server.running.port) as sock:
        sock.sendall(b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 500000000\r\n\r\n" + b"[" * 1000)
        assert read_status(sock) == 401


def test_login_limit_holds_while_the_body_streams(auth_server: AuthServer) -> None:
    """A chunked login body with no Content-Length: refused once it passes 4 KB, long before 64 MB."""
    sent = 0
    with raw_connection(auth_server.running.port) as sock:
        sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"2000\r\n" + b"x" * 0x2000 + b"\r\n"
        sock.settimeout(0.05)
        status = 0
        while sent < 64 * 1024 * 1024:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 0x2000
            try:
                status = read_status(sock)
                break
            except TimeoutError:
                continue
        sock.settimeout(5)
        status = status or read_status(sock)
    assert status == 413
    assert sent < 4 * 1024 * 1024


@pytest.fixture(scope="module")
def tight_server(database_url_factory: Any) -> Iterator[RunningServer]:
    """A no-auth server with short limits, so the timeouts show within a bounded test."""
    config = ServerConfig(database=database_url_factory("sqlite", "boundary"), auth=True,
                          extra={"body_timeout_s": 1.0, "max_anonymous_in_flight": 3})
    with RunningServer(config, protocol=guarded(header_timeout_s=1.0, max_awaiting_headers=20)) as running:
        yield running


def test_a_slow_body_is_cut_off(tight_server: RunningServer) -> None:
    with raw_connection(tight_server.port) as sock:
        sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"tok")
        assert read_status(sock) == 408
        assert closed_by_server(sock)


def test_slowloris_connections_are_closed(tight_server: RunningServer) -> None:
    """20 clients dribbling header bytes and 10 idle ones: all closed after the header timeout."""
    dribblers = [raw_connection(tight_server.port, timeout=0.2) for _ in range(10)]
    idle = [raw_connection(tight_server.port, timeout=0.2) for _ in range(10)]
    for sock in dribblers:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    deadline = time.monotonic() + 6
    open_ = set(range(len(dribblers)))
    while open_ and time.monotonic() < deadline:
        for i in list(open_):
            try:
                dribblers[i].sendall(b"X-Slow: 1\r\n")
            except OSError:
                open_.discard(i)
        time.sleep(0.3)
    assert not open_, f"{len(open_)} dribbling connections outlived the header timeout"
    assert all(closed_by_server(sock) for sock in idle)
    for sock in dribblers + idle:
        sock.close()
    assert httpx.get(f"{tight_server.url}/healthz").status_code == 200


def test_connections_awaiting_headers_are_capped(tight_server: RunningServer) -> None:
    held = [raw_connection(tight_server.port, timeout=0.5) for _ in range(20)]
    time.sleep(0.2)
    extra = [raw_connection(tight_server.port, timeout=0.5) for _ in range(5)]
    assert all(closed_by_server(sock) for sock in extra)  # refused at once, not after a timeout
    for sock in held + extra:
        sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{tight_server.url}/healthz").status_code == 200


def test_unauthenticated_requests_in_flight_are_capped(tight_server: RunningServer) -> None:
    half = (b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{")
    held = [raw_connection(tight_server.port) for _ in range(3)]
    for sock in held:
        sock.sendall(half)
    time.sleep(0.3)
    refused = httpx.post(f"{tight_server.url}/auth/login", json={"token": "x"})
    assert refused.status_code == 503 and "too many unauthenticated" in refused.json()["error"]
    for sock in held:
        assert read_status(sock) == 408  # their bodies never came
        sock.close()
    assert httpx.post(f"{tight_server.url}/auth/login", json={"token": "x"}).status_code == 401


def test_a_client_that_disconnects_mid_body_is_no_server_error(rpc: RPC, caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    port = int(rpc.url.rsplit(":", 1)[1])
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with raw_connection(port) as sock:
                sock.sendall(b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000\r\n\r\n{\"jsonrpc\"")
            time.sleep(0.2)
        assert rpc("agent.list") is not None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# ---- malformed bodies (item 12, small defects, JSON) ---------------------------------------------

@pytest.mark.parametrize("body", [
    b'{"jsonrpc":"2.0","id":1,"method":"session.delete","method":"session.list","params":{}}',
    b'{"jsonrpc":"2.0","id":1,"method":"session.list","params":{"limit":5,"limit":6}}',
    b'{"jsonrpc":"2.0","id":1,"method":"session.list","params":{"limit":NaN}}',
    b'{"jsonrpc":"2.0","id":1,"method":"session.list","params":{"limit":Infinity}}',
    b'{"jsonrpc":"2.0","id":1,"method":"session.list","params":{"limit":1e999}}',
])
def test_ambiguous_or_non_standard_json_is_refused(rpc: RPC, body: bytes) -> None:
    answer = rpc.http.post(f"{rpc.url}/rpc", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["error"]["code"] == -32700


def test_an_infinite_cost_is_never_stored(rpc: RPC) -> None:
    body = json.dumps(rpc_body("session.record", key="inf", tenant=rpc.tenant,
                               execution={"cost_usd": float("inf")})).encode()
    assert b"Infinity" in body  # what Python's json writes by default, and orjson's fallback once read
    rpc.append("inf", MSG)
    answer = rpc.http.post(f"{rpc.url}/rpc", content=body, headers={"content-type": "application/json"})
    assert answer.json()["error"]["code"] == -32700
    assert rpc("session.metrics", key="inf")["executions"] == 0


@pytest.mark.parametrize("body", [b"[" * 4000, b'{"token": ' * 300, b"\xff\xfe", b'"just a string"', b"[]"],
                         ids=["brackets", "nested", "not-utf8", "string", "array"])
def test_malformed_login_bodies_are_400(auth_server: AuthServer, body: bytes) -> None:
    answer = httpx.post(f"{auth_server.url}/auth/login", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.json()["ok"] is False
