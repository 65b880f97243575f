"""POST /v1/traces: an OTLP/HTTP trace receiver that stores GenAI spans as sessions.

The body (protobuf or JSON, optionally gzip) is decoded by `importers.otlp` into the record
stream every importer produces and written by the ingest service (`sessionscope.ingest`), so spans
resent by an exporter's retry add nothing twice. Answers follow the OTLP/HTTP spec: 200 with an
ExportTraceServiceResponse in the request's encoding, 400 with a google.rpc.Status for a body
that does not decode, 503 (retryable by exporters) when the store fails.

Tenant: the caller's own (a tenant-scoped token), or the `x-sessionscope-tenant` header (set it
with OTEL_EXPORTER_OTLP_HEADERS), or `default`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import Request
from starlette.responses import Response

from sessionscope.errors import Forbidden, SessionscopeError, Unauthorized
from sessionscope.importers.otlp import TooManySpans, decode_spans
from sessionscope.importers.otlp_genai import spans_to_conversations
from sessionscope.ingest import SessionBatch
from sessionscope.ingest.many import Rejected, ingest_prepared, prepare
from sessionscope.rpc.registry import INGEST
from sessionscope.store.batches import Batch
from sessionscope.store.scope import Scope
from sessionscope.web import metrics

log = logging.getLogger("sessionscope.otlp")

TENANT_HEADER = "x-sessionscope-tenant"
# gzip bodies inflate at most this many times past the body limit (a decompression bomb stops there).
MAX_INFLATE_RATIO = 8
# google.rpc.Code values used in the Status body of an error answer.
INVALID_ARGUMENT, PERMISSION_DENIED, UNAVAILABLE, UNAUTHENTICATED = 3, 7, 14, 16
PROTOBUF = "application/x-protobuf"
# Spans in one request: bounds its work (the SDK's batches are 512; 100,000 once kept PostgreSQL
# busy for minutes). More is answered 413, which exporters do not retry.
MAX_SPANS = 10_000
MAX_REJECTIONS_SHOWN = 5


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower().endswith("json")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def status_body(code: int, message: str, as_json: bool) -> bytes:
    """A google.rpc.Status {code, message}; written by hand, as opentelemetry-proto lacks the type."""
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def answer(status: int, body: bytes, as_json: bool) -> Response:
    metrics.OTLP_REQUESTS.labels(str(status)).inc()
    return Response(body, status_code=status, media_type="application/json" if as_json else PROTOBUF)


def failure(status: int, code: int, message: str, as_json: bool) -> Response:
    return answer(status, status_body(code, message, as_json), as_json)


def inflate(body: bytes, limit: int) -> bytes:
    """gunzip with a ceiling on the inflated size."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"Content-Encoding is gzip but the body does not inflate: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError(f"the inflated body is larger than {limit} bytes")
    return out


async def receive(request: Request) -> Response:
    from sessionscope.web.app import authenticate, read_body  # app.py imports this module for its route

    content_type = request.headers.get("content-type", "")
    as_json = _is_json(content_type)
    services = request.app.state.services
    try:
        caller = await authenticate(request)
    except SessionscopeError as exc:
        unauthenticated = isinstance(exc, Unauthorized)
        return failure(401 if unauthenticated else 403, UNAUTHENTICATED if unauthenticated else PERMISSION_DENIED,
                       exc.message, as_json)
    if caller.role not in INGEST:
        return failure(403, PERMISSION_DENIED, f"forbidden: role {caller.role!r} may not ingest traces", as_json)
    limit = services.config.max_body_bytes
    body = await read_body(request, limit)
    if body is None:
        return failure(413, INVALID_ARGUMENT, f"request too large: the body limit is {limit} bytes", as_json)
    try:
        if request.headers.get("content-encoding", "").strip().lower() == "gzip":
            body = inflate(body, limit * MAX_INFLATE_RATIO)
        tenant = caller.scope.resolve(request.headers.get(TENANT_HEADER) or None)
    except Forbidden as exc:
        return failure(403, PERMISSION_DENIED, exc.message, as_json)
    except ValueError as exc:
        return failure(400, INVALID_ARGUMENT, f"not an OTLP trace export: {exc}", as_json)
    return await store_export(services, caller.scope, tenant, body, content_type, as_json)


async def store_export(services: Any, scope: Scope, tenant: str, body: bytes, content_type: str,
                       as_json: bool) -> Response:
    """Decode an inflated ExportTraceServiceRequest and store its sessions in one write."""
    try:
        # Decoding, mapping and token counting grow with the request: a thread, bounded by the span cap.
        decoded = await asyncio.to_thread(_decode, body, content_type)
    except TooManySpans as exc:
        return failure(413, INVALID_ARGUMENT, str(exc), as_json)
    except ValueError as exc:
        return failure(400, INVALID_ARGUMENT, f"not an OTLP trace export: {exc}", as_json)
    metrics.OTLP_SPANS.inc(decoded.spans)
    _count_unnamed(decoded)
    try:
        await ingest_prepared(services, scope, tenant, decoded.ready, source="otlp")
    except SessionscopeError as exc:
        return failure(400, INVALID_ARGUMENT, exc.message, as_json)
    except Exception:
        log.exception("storing OTLP spans failed")
        return failure(503, UNAVAILABLE, "the store is unavailable; retry later", as_json)
    return answer(200, _success_body(decoded, as_json), as_json)


@dataclass
class Decoded:
    spans: int
    ready: list[Batch]
    rejected: list[tuple[Rejected, int]]  # with the spans of each rejected session
    by_trace: list[tuple[str, int]]  # sessions keyed by trace (no conversation id), with their spans
    ignored: int  # spans of traces without a GenAI span


def _decode(body: bytes, content_type: str) -> Decoded:
    spans = decode_spans(body, content_type, max_spans=MAX_SPANS)
    mapped = spans_to_conversations(spans)
    batches = [SessionBatch(key=c.key, agent=c.agent, channel=c.channel, created_at=c.created_at,
                            items=c.messages, executions=c.executions) for c in mapped.conversations]
    ready, rejected = prepare(batches)
    span_counts = {c.key: c.spans for c in mapped.conversations}
    return Decoded(len(spans), ready, [(r, span_counts.get(r.key, 0)) for r in rejected],
                   [(c.key, c.spans) for c in mapped.conversations if c.by_trace], mapped.ignored_spans)


def _count_unnamed(decoded: Decoded) -> None:
    if decoded.by_trace:
        spans = sum(n for _, n in decoded.by_trace)
        metrics.OTLP_UNNAMED_SPANS.labels("grouped_by_trace").inc(spans)
        log.info("%d spans without gen_ai.conversation.id or session.id stored by trace as %d session(s), "
                 "e.g. %s", spans, len(decoded.by_trace), decoded.by_trace[0][0])
    if decoded.ignored:
        metrics.OTLP_UNNAMED_SPANS.labels("ignored").inc(decoded.ignored)
        log.info("%d spans ignored: no conversation id and no GenAI span in their trace", decoded.ignored)


def _success_body(decoded: Decoded, as_json: bool) -> bytes:
    """ExportTraceServiceResponse; a partial success names the sessions that were refused."""
    if not decoded.rejected:
        return b"{}" if as_json else ExportTraceServiceResponse().SerializeToString()
    spans = sum(n for _, n in decoded.rejected)
    shown = "; ".join(r.message() for r, _ in decoded.rejected[:MAX_REJECTIONS_SHOWN])
    more = len(decoded.rejected) - MAX_REJECTIONS_SHOWN
    message = f"{len(decoded.rejected)} session(s) refused: {shown}" + (f"; and {more} more" if more > 0 else "")
    log.info("OTLP export partly refused: %s", message)
    if as_json:
        return json.dumps({"partialSuccess": {"rejectedSpans": str(spans), "errorMessage": message}}).encode()
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = spans
    response.partial_success.error_message = message
    return response.SerializeToString()
