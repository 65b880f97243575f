"""docs/rpc.md's method sections, generated from the registry (summary, params, result, roles, errors).

`python -m sessionscope.rpc.reference` rewrites the block between the markers in docs/rpc.md;
`--check` exits 1 when the file is stale, and tests/test_openrpc.py runs the same check, as
Datasette runs `cog --check`. Everything outside the markers is written by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import sessionscope.rpc.methods  # noqa: F401 - registers the methods
from sessionscope.rpc.registry import METHODS, ROLES, Method, method_errors

BEGIN = "<!-- BEGIN methods: generated from the registry by `python -m sessionscope.rpc.reference` -->"
END = "<!-- END methods -->"
DOC = Path(__file__).resolve().parents[3] / "docs" / "rpc.md"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A JSON schema as a short type expression: `string ≤512`, `array of Item`, `"asc" | "desc"`."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        parts = [type_of(s) for s in schema["anyOf"]]
        return " | ".join(dict.fromkeys(parts))
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"array of {type_of(schema.get('items', {}))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of {type_of(schema['additionalProperties'])}"
    else:
        text = str(kind)
    bounds = [f"{sign}{schema[k]}" for k, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
                                                   ("minLength", "len ≥"), ("maxLength", "len ≤"),
                                                   ("minItems", "items ≥"), ("maxItems", "items ≤")) if k in schema]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _params_table(method: Method) -> list[str]:
    schema = method.params.model_json_schema(ref_template="#/components/schemas/{model}")
    props = schema.get("properties", {})
    if not props:
        return ["No params."]
    required = set(schema.get("required", []))
    lines = ["| param | type | required | default |", "|---|---|---|---|"]
    for name, prop in props.items():
        default = "" if name in required or "default" not in prop else f"`{json.dumps(prop['default'])}`"
        lines.append(f"| `{name}` | {_cell(type_of(prop))} | {'yes' if name in required else 'no'} | {default} |")
    if "oneOf" in schema:
        rules = " or ".join("`" + "`, `".join(rule["required"]) + "`" for rule in schema["oneOf"])
        lines += ["", f"Exactly one of {rules}."]
    return lines


def _result_table(method: Method) -> list[str]:
    schema = method.result.model_json_schema(ref_template="#/components/schemas/{model}")
    props = schema.get("properties", {})
    lines = [f"Result `{method.result.__name__}`:", ""]
    if not props:
        return [*lines, "An object."]
    lines += ["| field | type |", "|---|---|"]
    lines += [f"| `{name}` | {_cell(type_of(prop))} |" for name, prop in props.items()]
    return lines


def section(method: Method) -> str:
    roles = ", ".join(sorted(method.roles, key=ROLES.index))
    errors = ", ".join(f"`{e.code}` {e.__name__}" for e in method_errors(method))
    lines = [f"### {method.name}", "", method.summary, ""]
    if method.description:
        lines += [" ".join(method.description.split()), ""]
    lines += [f"Roles: {roles}.", "", *_params_table(method), "", *_result_table(method), "",
              f"Errors: {errors} (and `-32603` for a server bug).", ""]
    return "\n".join(lines)


def render() -> str:
    return "\n".join(section(METHODS[name]) for name in sorted(METHODS))


def updated(text: str) -> str:
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"docs/rpc.md must hold the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{render()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    fresh = updated(text)
    if "--check" in argv:
        if fresh != text:
            print("docs/rpc.md is stale: run python -m sessionscope.rpc.reference", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
