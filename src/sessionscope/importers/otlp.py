"""OTLP/HTTP trace requests (protobuf or the OTLP JSON encoding) as plain spans.

``decode_otlp`` is the entry point of the ``POST /v1/traces`` receiver: it turns an
ExportTraceServiceRequest into the internal record stream. This module reads the wire
formats into ``Span`` values; ``otlp_genai`` maps GenAI / OpenInference spans to records.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

Record = dict[str, Any]
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


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


def decode_otlp(body: bytes, content_type: str) -> list[Record]:
    """Decode an OTLP/HTTP ExportTraceServiceRequest into session/item/execution records.

    ``content_type`` picks the encoding: ``application/x-protobuf`` or
    ``application/json``. A gzip body is inflated first. Raises ValueError with a
    readable message when the body is not a trace request in that encoding.
    """
    from .otlp_genai import spans_to_records  # the mapping imports Span from here

    return spans_to_records(decode_spans(body, content_type))


def decode_spans(body: bytes, content_type: str) -> list[Span]:
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise ValueError(f"body looks gzip-compressed but does not inflate: {exc}") from exc
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media.endswith("json"):
        return _spans_from_json(body)
    if media in ("application/x-protobuf", "application/protobuf", "application/octet-stream", ""):
        return _spans_from_protobuf(body)
    raise ValueError(
        f"unsupported content type {content_type!r}; send application/x-protobuf or application/json"
    )


# ---------------------------------------------------------------- protobuf


def _spans_from_protobuf(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError) as exc:
        raise ValueError(f"body is not an OTLP ExportTraceServiceRequest protobuf: {exc}") from exc
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


def _spans_from_json(body: bytes) -> list[Span]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceSpans", []), list):
        raise ValueError("OTLP JSON body must be an object with a resourceSpans array")  # noqa: TRY004 - a bad body is a ValueError
    spans: list[Span] = []
    for resource_spans in data.get("resourceSpans", []):
        if not isinstance(resource_spans, dict):
            raise ValueError("resourceSpans entries must be objects")  # noqa: TRY004 - a bad body is a ValueError
        resource = _json_attributes((resource_spans.get("resource") or {}).get("attributes"))
        # "instrumentationLibrarySpans" is the name used before OTLP 0.15.
        scopes = resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans") or []
        for scope_spans in scopes:
            for raw in (scope_spans or {}).get("spans") or []:
                spans.append(_json_span(raw, resource))
    return spans


def _json_span(raw: Any, resource: dict[str, Any]) -> Span:
    if not isinstance(raw, dict):
        raise ValueError("spans entries must be objects")  # noqa: TRY004 - a bad body is a ValueError
    status = found if isinstance(found := raw.get("status"), dict) else {}
    code = status.get("code")
    failed = code in (STATUS_ERROR, "STATUS_CODE_ERROR", str(STATUS_ERROR))
    return Span(
        trace_id=_json_id(raw.get("traceId"), 16, "traceId"),
        span_id=_json_id(raw.get("spanId"), 8, "spanId"),
        parent_id=_json_id(raw.get("parentSpanId"), 8, "parentSpanId") if raw.get("parentSpanId") else "",
        name=str(raw.get("name") or ""),
        start_ns=_json_int(raw.get("startTimeUnixNano"), "startTimeUnixNano"),
        end_ns=_json_int(raw.get("endTimeUnixNano"), "endTimeUnixNano"),
        attributes=_json_attributes(raw.get("attributes")),
        resource=resource,
        error=(status.get("message") or "error") if failed else None,
    )


def _json_id(value: Any, size: int, name: str) -> str:
    """OTLP JSON carries ids as hex; proto3-JSON writers send base64, accepted too."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"span {name} is missing or not a string")
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
        raise ValueError(f"span {name} {value!r} is not {size} bytes of hex")
    return raw.hex()


def _json_int(value: Any, name: str) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"span {name} {value!r} is not an integer") from exc


def _json_attributes(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValueError("attributes must be an array of {key, value}")  # noqa: TRY004 - a bad body is a ValueError
    return {str(kv.get("key")): _json_value(kv.get("value")) for kv in raw if isinstance(kv, dict)}


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:  # int64 travels as a JSON string
        return _json_int(value["intValue"], "intValue")
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [_json_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return _json_attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    return None
