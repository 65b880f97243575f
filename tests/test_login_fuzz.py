"""Fuzzing `/auth/login` and `/auth/identify` with hostile bodies (issue 14, "Tests"), as
tests/test_fuzz.py does for `/rpc`: every answer is a clear 4xx with the plain error shape (never a
500 or a hang), and only a body that is a JSON object naming a real token logs in."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionscope.web.auth import MAX_LOGIN_BODY
from tests.security_helpers import AuthServer

CASES = 300
ADMIN = object()  # stands for the server's real admin token, known only once the fixture runs
ENDPOINTS = ["/auth/login", "/auth/identify"]
addresses = itertools.count(1)

hostile_text = st.text(max_size=40) | st.sampled_from(
    ["", " ", "\x00", "ss_", "ss_" + "A" * 43, "' OR 1=1 --", "\ud800", "\x1b[2J", "x" * MAX_LOGIN_BODY])
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["token", "next", "x"]) | st.text(max_size=6), inner,
                                        max_size=3), max_leaves=8)
# The token a body names: the real one (plain or padded), a hostile value, or any JSON value.
token = st.one_of(st.just(ADMIN), st.sampled_from([" {} ", "{}\n", "{}x"]), hostile_text, values)


def nested(depth: int, opener: bytes) -> bytes:
    return opener * depth


bodies = st.one_of(
    st.fixed_dictionaries({"token": token}, optional={"next": values, "token2": values}).map(lambda d: ("obj", d)),
    values.map(lambda v: ("json", v)),
    st.binary(max_size=200).map(lambda b: ("raw", b)),
    st.tuples(st.integers(1, 20_000), st.sampled_from([b"[", b"{", b'{"token":'])).map(
        lambda t: ("raw", nested(*t))),
    st.integers(MAX_LOGIN_BODY - 20, MAX_LOGIN_BODY + 100).map(lambda n: ("raw", b'{"token": "' + b"a" * n + b'"}')),
)
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", None])


def materialize(value: Any, admin: str) -> Any:
    """The fuzzed value with ADMIN replaced by the real token (format strings pad it)."""
    if value is ADMIN:
        return admin
    if isinstance(value, str) and "{}" in value and len(value) <= 4:
        return value.replace("{}", admin)
    if isinstance(value, dict):
        return {k: materialize(v, admin) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v, admin) for v in value]
    return value


def encode(kind: str, value: Any, admin: str) -> tuple[bytes, Any]:
    if kind == "raw":
        return value, None
    sent = materialize(value, admin)
    # json.dumps escapes lone surrogates, which httpx's own encoder cannot send at all.
    return json.dumps(sent).encode(), sent


def standard(sent: Any) -> bool:
    """JSON the server's strict parser takes: no Infinity or NaN anywhere in the body."""
    try:
        json.dumps(sent, allow_nan=False)
    except ValueError:
        return False
    return True


def logs_in(sent: Any, admin: str) -> bool:
    return (isinstance(sent, dict) and isinstance(sent.get("token"), str) and sent["token"].strip() == admin
            and standard(sent))


def test_fuzzed_login_bodies_get_a_clear_answer(auth_server: AuthServer) -> None:
    http = httpx.Client(base_url=auth_server.url, timeout=30)
    seen: set[int] = set()

    @settings(max_examples=CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies, endpoint=st.sampled_from(ENDPOINTS), content_type=content_types)
    def run(body: tuple[str, Any], endpoint: str, content_type: str | None) -> None:
        payload, sent = encode(*body, auth_server.admin_token)
        # A fresh client address each time (loopback is this server's trusted proxy), so the
        # failed-login limit never answers for the parser.
        n = next(addresses)
        headers = {"x-forwarded-for": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
        if content_type is not None:
            headers["content-type"] = content_type
        answer = http.post(endpoint, content=payload, headers=headers)
        seen.add(answer.status_code)
        if len(payload) <= MAX_LOGIN_BODY and logs_in(sent, auth_server.admin_token):
            assert answer.status_code == 200, (payload[:200], answer.text)
            assert answer.json()["role"] == "admin"
            assert (endpoint == "/auth/login") == ("sessionscope_session" in answer.cookies)
            return
        assert answer.status_code in (400, 401, 413), (payload[:200], answer.status_code, answer.text)
        error = answer.json()
        assert error["ok"] is False and error["status"] == answer.status_code, error
        assert "sessionscope_session" not in answer.cookies

    try:
        run()
    finally:
        http.close()
    assert {200, 400, 401, 413} <= seen, seen  # the fuzz reached every kind of answer
    # The server still serves, and the admin token still works.
    assert auth_server.admin("auth.whoami")["role"] == "admin"
