"""The shape of every error every endpoint can give (Datasette's test_error_shape.py is the model).

Three shapes, one per protocol, with the status always the error class's:
- /rpc: a JSON-RPC envelope; HTTP 200 for errors of the dispatcher, the class's status for a
  request refused before dispatch (credentials, media type, size);
- /v1/traces: a google.rpc.Status (JSON or protobuf, as the request was);
- everything else: {"ok": false, "status", "code", "error"} plus "data" when there is any.
"""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest

from sessionscope import errors
from sessionscope.client.protocol import error_from
from sessionscope.errors import class_for_code
from sessionscope.rpc.registry import METHODS
from tests.conftest import RPC
from tests.security_helpers import AuthServer

JSON = {"content-type": "application/json"}
CALL = {"jsonrpc": "2.0", "id": 7, "method": "session.list", "params": {}}


def assert_rpc_error(response: httpx.Response, status: int, code: int, request_id: Any = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"jsonrpc", "id", "error"} and body["jsonrpc"] == "2.0" and body["id"] == request_id
    error = body["error"]
    assert set(error) <= {"code", "message", "data"}
    assert "data" not in error or error["data"] is not None  # never "data": null
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    if status != 200:
        assert class_for_code(code) is not None and response.status_code in _statuses(code)
    return error


def _statuses(code: int) -> set[int]:
    return {cls.status for cls in errors.all_error_classes() if cls.code == code}


def assert_plain_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) in ({"ok", "status", "code", "error"}, {"ok", "status", "code", "error", "data"})
    assert body["ok"] is False and body["status"] == status and body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert status in _statuses(code)
    return body


def assert_otlp_error(response: httpx.Response, status: int, grpc_code: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == grpc_code and body["message"]


# ---- the tree itself -----------------------------------------------------------------------------

def test_every_class_carries_a_code_and_a_status() -> None:
    for cls in errors.all_error_classes():
        assert isinstance(cls.code, int) and -32768 <= cls.code <= -32000, cls
        assert 400 <= cls.status <= 599, cls


def test_the_client_rebuilds_every_class_from_its_code() -> None:
    for cls in errors.all_error_classes():
        wire = {"code": cls.code, "message": "m", "data": {"field": "f", "problem": "p"}}
        rebuilt = error_from(wire)
        assert rebuilt.code == cls.code and rebuilt.message == "m" and rebuilt.data == wire["data"]
        if class_for_code(cls.code) is not errors.SessionscopeError:  # -32000: any other server error
            assert type(rebuilt) is class_for_code(cls.code)


def test_configuration_and_import_errors_join_the_tree() -> None:
    from sessionscope.compaction import CompactionConfigError
    from sessionscope.importers import detect_format

    assert issubclass(CompactionConfigError, errors.ConfigError)
    with pytest.raises(errors.ImportFormatError) as caught:
        detect_format("/nonexistent/transcripts")
    assert caught.value.code == -32602 and caught.value.status == 400


# ---- /rpc ----------------------------------------------------------------------------------------

def test_rpc_dispatcher_errors_are_http_200(rpc: RPC) -> None:
    post = rpc.http.post
    assert_rpc_error(post(f"{rpc.url}/rpc", content=b"{nope", headers=JSON), 200, -32700)
    assert_rpc_error(post(f"{rpc.url}/rpc", content=b'{"a":1,"a":2}', headers=JSON), 200, -32700)
    assert_rpc_error(rpc.raw({"jsonrpc": "2.0", "id": 7}), 200, -32600, 7)
    assert_rpc_error(rpc.raw({"jsonrpc": "2.0", "id": 7, "method": "nope"}), 200, -32601, 7)
    error = assert_rpc_error(rpc.raw({**CALL, "params": {"limit": 0}}), 200, -32602, 7)
    assert set(error["data"]) == {"field", "problem"}
    error = assert_rpc_error(rpc.raw({**CALL, "method": "session.status", "params": {"key": "nope",
                                                                                     "tenant": rpc.tenant}}),
                             200, -32001, 7)
    assert error["data"] == {"key": "nope"}
    batch = [CALL] * 101
    assert_rpc_error(rpc.raw(batch), 200, -32013)


def test_rpc_boundary_errors_carry_the_class_status(rpc: RPC) -> None:
    post = rpc.http.post
    assert_rpc_error(post(f"{rpc.url}/rpc", content=b"{}", headers={"content-type": "text/plain"}), 415, -32600)
    assert_rpc_error(post(f"{rpc.url}/rpc", content=b"x" * (8 * 1024 * 1024 + 1), headers=JSON), 413, -32013)
    foreign = post(f"{rpc.url}/rpc", json=CALL, headers={"origin": "https://evil.example"})
    assert_rpc_error(foreign, 403, -32003)
    assert_rpc_error(rpc.http.get(f"{rpc.url}/rpc"), 405, -32600)


def test_rpc_credential_errors(auth_server: AuthServer) -> None:
    post = httpx.post
    assert_rpc_error(post(f"{auth_server.url}/rpc", json=CALL), 401, -32004)
    assert_rpc_error(post(f"{auth_server.url}/rpc", json=CALL, headers={"authorization": "Bearer ss_nope"}),
                     401, -32004)
    assert_rpc_error(post(f"{auth_server.url}/rpc", json=CALL, headers={"authorization": "Basic x"}), 401, -32004)
    viewer = auth_server.client(auth_server.token("viewer", "t-shape"))
    answer = viewer.post({**CALL, "method": "session.reset", "params": {"key": "k"}})
    assert_rpc_error(answer, 200, -32003, 7)
    viewer.close()


def test_every_method_answers_the_same_envelope(rpc: RPC) -> None:
    for name in sorted(METHODS):
        answer = rpc.raw({"jsonrpc": "2.0", "id": "x", "method": name, "params": {"no_such_param": 1}})
        error = assert_rpc_error(answer, 200, -32602, "x")
        assert error["data"]["field"] in ("no_such_param", "key", "keys") or error["data"]["problem"], name


# ---- /v1/traces ----------------------------------------------------------------------------------

def test_otlp_errors_are_google_rpc_status(rpc: RPC, auth_server: AuthServer) -> None:
    url = f"{rpc.url}/v1/traces"
    assert_otlp_error(httpx.post(url, content=b"{nope", headers=JSON), 400, 3)
    assert_otlp_error(httpx.post(url, content=b"", headers=JSON), 400, 3)
    assert_otlp_error(httpx.post(url, content=gzip.compress(b"\0" * (9 << 20)), headers=JSON), 413, 8)
    assert_otlp_error(httpx.post(url, content=b"{}", headers={**JSON, "content-encoding": "zstd"}), 415, 3)
    assert_otlp_error(httpx.post(url, content=b"{}", headers={**JSON, "origin": "https://evil.example"}), 403, 7)
    authed = f"{auth_server.url}/v1/traces"
    assert_otlp_error(httpx.post(authed, content=b"{}", headers=JSON), 401, 16)
    viewer = auth_server.token("viewer", "t-shape")
    assert_otlp_error(httpx.post(authed, content=b"{}", headers={**JSON, "authorization": f"Bearer {viewer}"}),
                      403, 7)
    protobuf = httpx.post(url, content=b"", headers={"content-type": "application/x-protobuf"})
    assert protobuf.status_code == 400 and protobuf.headers["content-type"] == "application/x-protobuf"
    assert protobuf.content.startswith(b"\x08\x03\x12")


# ---- /metrics, /export, /auth/*, pages -----------------------------------------------------------

def test_metrics_errors(auth_server: AuthServer) -> None:
    url = f"{auth_server.url}/metrics"
    assert_plain_error(httpx.get(url), 401, -32004)
    viewer = auth_server.token("viewer", "t-shape")
    assert_plain_error(httpx.get(url, headers={"authorization": f"Bearer {viewer}"}), 403, -32003)


def test_export_link_errors(rpc: RPC) -> None:
    assert_plain_error(rpc.http.get(f"{rpc.url}/export/not-a-link"), 404, -32001)


def test_login_and_logout_errors(auth_server: AuthServer) -> None:
    url = auth_server.url
    assert_plain_error(httpx.post(f"{url}/auth/login", content=b"not json", headers=JSON), 400, -32602)
    assert_plain_error(httpx.post(f"{url}/auth/login", content=b"[" * 4000, headers=JSON), 400, -32602)
    assert_plain_error(httpx.post(f"{url}/auth/login", content=b'{"token": "' + b"x" * 5000 + b'"}'), 413, -32013)
    assert_plain_error(httpx.post(f"{url}/auth/login", json={"token": "ss_wrong"},
                                  headers={"x-forwarded-for": "198.51.100.7"}), 401, -32004)
    foreign = {"origin": "https://evil.example"}
    assert_plain_error(httpx.post(f"{url}/auth/login", json={"token": "x"}, headers=foreign), 403, -32003)
    assert_plain_error(httpx.post(f"{url}/auth/logout", headers=foreign), 403, -32003)


def test_page_errors(rpc: RPC) -> None:
    # A path no route serves is a page in the dashboard's style (tests/test_cli_first_contact.py);
    # any other method on it gets the plain shape.
    page = rpc.http.get(f"{rpc.url}/no/such/page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert_plain_error(rpc.http.post(f"{rpc.url}/no/such/page", json={}), 404, -32001)
    assert_plain_error(rpc.http.post(f"{rpc.url}/sessions"), 405, -32600)
    rebinding = rpc.http.get(f"{rpc.url}/sessions", headers={"host": "attacker.example"})
    assert_plain_error(rebinding, 403, -32003)
