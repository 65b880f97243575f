"""rpc.discover: the OpenRPC document, generated from the registry's Pydantic models."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from sessionscope import __version__
from sessionscope.rpc.models import Params
from sessionscope.rpc.registry import METHODS, ROLES, Context, method_errors, rpc_method


class DiscoverResult(BaseModel):
    openrpc: str
    info: dict[str, Any]
    methods: list[dict[str, Any]]
    components: dict[str, Any]


def _schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs.update(schema.pop("$defs", {}))
    return schema


@functools.cache
def _cached_document(method_names: tuple[str, ...]) -> dict[str, Any]:
    del method_names  # only the cache key: a newly registered method builds a new document
    return openrpc_document()


def openrpc_document() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    methods = []
    for method in sorted(METHODS.values(), key=lambda m: m.name):
        params_schema = _schema(method.params, defs)
        required = set(params_schema.get("required", []))
        params = [
            {"name": name, "required": name in required, "schema": prop}
            for name, prop in params_schema.get("properties", {}).items()
        ]
        entry: dict[str, Any] = {
            "name": method.name,
            "summary": method.summary,
            "description": method.description,
            "paramStructure": "by-name",
            "params": params,
            "result": {"name": "result", "schema": _schema(method.result, defs)},
            "x-roles": sorted(method.roles, key=ROLES.index),
            "errors": [{"code": e.code, "message": e.__doc__.strip().split("\n")[0] if e.__doc__ else e.__name__}
                       for e in method_errors(method)],
        }
        if "oneOf" in params_schema:  # by-name params cannot say "exactly one of these" in OpenRPC
            entry["x-params-one-of"] = [rule["required"] for rule in params_schema["oneOf"]]
        methods.append(entry)
    return {
        "openrpc": "1.3.2",
        "info": {"title": "sessionscope", "version": __version__},
        "methods": methods,
        "components": {"schemas": defs},
    }


@rpc_method("rpc.discover", params=Params, result=DiscoverResult, roles=frozenset(ROLES))
async def discover(ctx: Context, p: Params) -> Any:
    """This API's OpenRPC document: every method with its params and result schema."""
    return _cached_document(tuple(sorted(METHODS)))
