"""OTLP/HTTP trace requests (protobuf or the OTLP JSON encoding) as plain spans.

``decode_otlp`` is the entry point of the ``POST /v1/traces`` receiver: it turns an
ExportTraceServiceRequest into the internal record stream. This module reads the wire
formats into ``Span`` values; ``otlp_genai`` maps GenAI / OpenInference spans to records.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from sessionscope.importers.inflate import inflate_once

Record = dict[str, Any]
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
GZIP_MAGIC = b"\x1f\x8b"
MAX_TIME_NS = 253_402_300_799_999_999_999  # 9999-12-31T23:59:59.999Z: later times are refused


@dataclass
class Span:
    """The parts of an OTLP span the mapping needs, with attributes as Python values."""

    trace_id: str  # lowercase hex
    span_id: str
    parent_id: str  # "" for a root span
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # status message when the status is ERROR


class TooManySpans(ValueError):
    """A request past the span cap: its work is refused before it starts."""


def decode_otlp(body: bytes, content_type: str, *, max_inflated: int = 64 * 1024 * 1024) -> list[Record]:
    """Decode an OTLP/HTTP ExportTraceServiceRequest into session/item/execution records.

    ``content_type`` picks the encoding: ``application/x-protobuf`` or
    ``application/json``. A gzip body is inflated first (to at most ``max_inflated`` bytes).
    Raises ValueError with a readable message when the body is not a trace request in that
    encoding.
    """
    from .otlp_genai import spans_to_records  # the mapping imports Span from here

    body = inflate_once(body, max_inflated)
    return spans_to_records(decode_spans(body, content_type))


def decode_spans(body: bytes, content_type: str, *, max_spans: int | None = None) -> list[Span]:
    """The spans of an inflated request; TooManySpans past `max_spans`, ValueError for a body
    that is not an ExportTraceServiceRequest in its content type's encoding."""
    if body[:2] == GZIP_MAGIC:  # no protobuf or JSON body starts so (0x1f is an invalid tag)
        raise ValueError("the body is still gzip-compressed once inflated (nested or unlabelled compression "
                         "is refused): send it once compressed, with Content-Encoding: gzip")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if media.endswith("json"):
            return _spans_from_json(body, max_spans)
        if media in ("application/x-protobuf", "application/protobuf", "application/octet-stream", ""):
            return _spans_from_protobuf(body, max_spans)
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    raise ValueError(
        f"unsupported content type {content_type!r}; send application/x-protobuf or application/json"
    )


def _check_count(count: int, max_spans: int | None) -> None:
    if max_spans is not None and count > max_spans:
        raise TooManySpans(f"{count} spans in one request; the limit is {max_spans}: export smaller batches "
                           f"(BatchSpanProcessor max_export_batch_size, OTEL_BSP_MAX_EXPORT_BATCH_SIZE)")


# ---------------------------------------------------------------- protobuf


def _spans_from_protobuf(body: bytes, max_spans: int | None) -> list[Span]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError) as exc:
        raise ValueError(f"body is not an OTLP ExportTraceServiceRequest protobuf: {exc}") from exc
    # Counted on the parsed message (C code) before any span becomes a Python object.
    _check_count(sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans), max_spans)
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                error = (span.status.message or "error") if span.status.code == STATUS_ERROR else None
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: _any_value(kv.value) for kv in span.attributes},
                        resource=resource,
                        error=error,
                    )
                )
    return spans


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if kind is None:
        return None
    return getattr(value, kind)


# ---------------------------------------------------------------- OTLP JSON


def _spans_from_json(body: bytes, max_spans: int | None) -> list[Span]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("OTLP JSON body must be an object with a resourceSpans array")  # noqa: TRY004 - a bad body is a ValueError
    blocks = []  # (resource attributes, raw spans, where)
    for i, resource_spans in enumerate(_list(data.get("resourceSpans"), "resourceSpans")):
        where = f"resourceSpans[{i}]"
        resource_spans = _object(resource_spans, where)
        resource = _object(resource_spans.get("resource"), f"{where}.resource")
        attributes = _json_attributes(resource.get("attributes"), f"{where}.resource.attributes")
        # "instrumentationLibrarySpans" is the name used before OTLP 0.15.
        name = "scopeSpans" if "scopeSpans" in resource_spans else "instrumentationLibrarySpans"
        for j, scope_spans in enumerate(_list(resource_spans.get(name), f"{where}.{name}")):
            here = f"{where}.{name}[{j}]"
            blocks.append((attributes, _list(_object(scope_spans, here).get("spans"), f"{here}.spans"), here))
    _check_count(sum(len(raw) for _, raw, _ in blocks), max_spans)
    return [_json_span(raw, attributes, f"{here}.spans[{k}]")
            for attributes, spans, here in blocks for k, raw in enumerate(spans)]


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object, not {type(value).__name__}")  # noqa: TRY004 - a bad body is a ValueError
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where} must be an array, not {type(value).__name__}")  # noqa: TRY004 - a bad body is a ValueError
    return value


def _json_span(raw: Any, resource: dict[str, Any], where: str) -> Span:
    raw = _object(raw, where)
    status = _object(raw.get("status"), f"{where}.status")
    code = status.get("code")
    failed = code in (STATUS_ERROR, "STATUS_CODE_ERROR", str(STATUS_ERROR))
    message = status.get("message")
    return Span(
        trace_id=_json_id(raw.get("traceId"), 16, f"{where}.traceId"),
        span_id=_json_id(raw.get("spanId"), 8, f"{where}.spanId"),
        parent_id=_json_id(raw.get("parentSpanId"), 8, f"{where}.parentSpanId") if raw.get("parentSpanId") else "",
        name=raw["name"] if isinstance(raw.get("name"), str) else "",
        start_ns=_json_time(raw.get("startTimeUnixNano"), f"{where}.startTimeUnixNano"),
        end_ns=_json_time(raw.get("endTimeUnixNano"), f"{where}.endTimeUnixNano"),
        attributes=_json_attributes(raw.get("attributes"), f"{where}.attributes"),
        resource=resource,
        error=((message if isinstance(message, str) else "") or "error") if failed else None,
    )


def _json_id(value: Any, size: int, name: str) -> str:
    """OTLP JSON carries ids as hex; proto3-JSON writers send base64, accepted too."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} is missing or not a string")
    if len(value) == size * 2:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise ValueError(f"{name} {value[:40]!r} is not {size} bytes of hex")
    return raw.hex()


def _json_int(value: Any, name: str) -> int:
    """int64 travels as a JSON string, or a number."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, str) and len(value) > 24):
        raise ValueError(f"{name} {str(value)[:40]!r} is not an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} {str(value)[:40]!r} is not an integer") from None


def _json_time(value: Any, name: str) -> int:
    ns = _json_int(value, name)
    if not 0 <= ns <= MAX_TIME_NS:
        raise ValueError(f"{name} {ns} is not a time between 1970 and 9999")
    return ns


def _json_attributes(raw: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, kv in enumerate(_list(raw, where)):
        kv = _object(kv, f"{where}[{i}]")
        if isinstance(kv.get("key"), str):
            out[kv["key"]] = _json_value(kv.get("value"), f"{where}[{i}].value")
    return out


def _json_value(value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        text = value["stringValue"]
        return text if isinstance(text, str) else None
    if "boolValue" in value:
        return value["boolValue"] if isinstance(value["boolValue"], bool) else None
    if "intValue" in value:
        return _json_int(value["intValue"], f"{where}.intValue")
    if "doubleValue" in value:
        number = value["doubleValue"]
        if isinstance(number, int | float) and not isinstance(number, bool):
            return float(number)
        return None
    if "arrayValue" in value:
        values = _object(value["arrayValue"], f"{where}.arrayValue").get("values")
        return [_json_value(v, f"{where}.arrayValue") for v in _list(values, f"{where}.arrayValue.values")]
    if "kvlistValue" in value:
        return _json_attributes(_object(value["kvlistValue"], f"{where}.kvlistValue").get("values"),
                                f"{where}.kvlistValue.values")
    if "bytesValue" in value and isinstance(value["bytesValue"], str):
        try:
            return base64.b64decode(value["bytesValue"])
        except (binascii.Error, ValueError):
            raise ValueError(f"{where}.bytesValue is not base64") from None
    return None
