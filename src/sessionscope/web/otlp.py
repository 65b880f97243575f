"""POST /v1/traces: an OTLP/HTTP trace receiver that stores GenAI spans as sessions.

The body (protobuf or JSON, optionally gzip: inflated once, with the body limit as its ceiling,
whether or not Content-Encoding says so; nested gzip is refused) is decoded by `importers.otlp`
into the record stream every importer produces and written by the ingest service
(`sessionscope.ingest`), so spans
resent by an exporter's retry add nothing twice. Answers follow the OTLP/HTTP spec: 200 with an
ExportTraceServiceResponse in the request's encoding, 400 with a google.rpc.Status for a body
that does not decode, 503 (retryable by exporters) when the store fails.

Tenant: the caller's own (a tenant-scoped token), or the `x-sessionscope-tenant` header (set it
with OTEL_EXPORTER_OTLP_HEADERS), or `default`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.requests import Request
from starlette.responses import Response

from sessionscope.errors import Forbidden, ImportFormatError, SessionscopeError, TooLarge, Unavailable
from sessionscope.importers.inflate import inflate_once
from sessionscope.importers.otlp import TooManySpans, decode_spans
from sessionscope.importers.otlp_genai import spans_to_conversations
from sessionscope.ingest import SessionBatch, off_loop_if_large
from sessionscope.ingest.many import Rejected, count_tokens, prepare_uncounted
from sessionscope.rpc.registry import INGEST
from sessionscope.store.batches import Batch
from sessionscope.store.scope import Scope
from sessionscope.web import metrics, middleware

log = logging.getLogger("sessionscope.otlp")

TENANT_HEADER = "x-sessionscope-tenant"
# google.rpc.Code values used in the Status body of an error answer, by the HTTP status the error
# class carries (the status is the class's: this only names it in gRPC's words).
INVALID_ARGUMENT, DEADLINE_EXCEEDED, PERMISSION_DENIED, RESOURCE_EXHAUSTED = 3, 4, 7, 8
INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 13, 14, 16
GRPC_CODES = {400: INVALID_ARGUMENT, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 408: DEADLINE_EXCEEDED,
              413: RESOURCE_EXHAUSTED, 429: RESOURCE_EXHAUSTED, 503: UNAVAILABLE}
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


def render_error(request: Request, exc: SessionscopeError) -> Response:
    """/v1/traces' errors as the OTLP/HTTP spec asks: a google.rpc.Status in the request's encoding."""
    as_json = _is_json(request.headers.get("content-type", ""))
    code = GRPC_CODES.get(exc.status, INTERNAL if exc.status >= 500 else INVALID_ARGUMENT)
    return answer(exc.status, status_body(code, exc.message, as_json), as_json)




async def receive(request: Request) -> Response:
    content_type = request.headers.get("content-type", "")
    as_json = _is_json(content_type)
    services = request.app.state.services
    caller = middleware.caller(request)  # before the body
    if caller.role not in INGEST:
        raise Forbidden(f"forbidden: role {caller.role!r} may not ingest traces")
    limit = services.config.max_body_bytes
    body = await middleware.read_body(request, limit)
    tenant = caller.scope.resolve(request.headers.get(TENANT_HEADER) or None)
    return await store_export(services, caller.scope, tenant, body, content_type,
                              request.headers.get("content-encoding", ""), limit, as_json)


async def store_export(services: Any, scope: Scope, tenant: str, body: bytes, content_type: str,
                       encoding: str, ceiling: int, as_json: bool) -> Response:
    """Decode an ExportTraceServiceRequest and store its sessions in one write (shared with the
    requests that are ready at the same time: ingest/many.py's GroupWriter)."""
    writer = services.otlp_writer
    overlapping = writer.decoding > 0  # another request is being decoded: the pool may pay off
    with writer.preparing():
        decoded = await services.cpu_pool.run(len(body), _decode, body, content_type, encoding, ceiling,
                                              services.db.is_sqlite, overlapping=overlapping)
    # Counted here, not where it was decoded: see ingest/many.py prepare_uncounted.
    await off_loop_if_large(sum(map(len, decoded.texts)), count_tokens, decoded.ready, decoded.texts)
    metrics.OTLP_SPANS.inc(decoded.spans)
    _count_unnamed(decoded)
    try:
        await writer.write(scope, tenant, decoded.ready)
    except SessionscopeError:
        raise  # its own status (web/middleware.error_response), as a google.rpc.Status
    except Exception:
        log.exception("storing OTLP spans failed")
        raise Unavailable("the store is unavailable; retry later") from None
    return answer(200, _success_body(decoded, as_json), as_json)


@dataclass
class Decoded:
    spans: int
    ready: list[Batch]  # their messages' tokens are counted from `texts` (count_tokens)
    texts: list[str]
    rejected: list[tuple[Rejected, int]]  # with the spans of each rejected session
    by_trace: list[tuple[str, int]]  # sessions keyed by trace (no conversation id), with their spans
    ignored: int  # spans of traces without a GenAI span


def _decode(body: bytes, content_type: str, encoding: str, ceiling: int, words: bool = False) -> Decoded:
    """Inflate (once), decode, map and prepare (and with `words`, a SQLite store, find each
    message's search words); in a worker process or thread (web/cpu_pool.py), as all of it
    grows with the body (bounded by the span cap). The tokens are counted by the caller."""
    body = inflate_once(body, ceiling, encoding)
    if not body:
        raise ImportFormatError("empty body: send an OTLP ExportTraceServiceRequest")
    try:
        spans = decode_spans(body, content_type, max_spans=MAX_SPANS)
    except TooManySpans as exc:
        raise TooLarge(str(exc)) from None
    except SessionscopeError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # A body of the wrong shape (a string where a span belongs, deep nesting): a 400 naming the
        # problem, never a 500.
        raise ImportFormatError(f"not an OTLP trace export: {str(exc)[:300] or type(exc).__name__}") from None
    mapped = spans_to_conversations(spans)
    batches = [SessionBatch(key=c.key, agent=c.agent, channel=c.channel, created_at=c.created_at,
                            items=c.messages, executions=c.executions) for c in mapped.conversations]
    ready, rejected, texts = prepare_uncounted(batches, words=words)
    span_counts = {c.key: c.spans for c in mapped.conversations}
    return Decoded(len(spans), ready, texts, [(r, span_counts.get(r.key, 0)) for r in rejected],
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
