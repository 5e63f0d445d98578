"""JSON Schema as go-micro's CLI shows a message: a name, then one field per line with its type.

::

    HelloRequest {
        name string
        tags []string = []
        address Address {
            city string
        }
        lines []Line {
            sku string
        }
    }

Types read as JSON Schema names them (``string``, ``integer``, ``number``, ``boolean``),
``[]T`` for an array, ``map[string]T`` for an object of one value type, ``A | B`` for a
choice, ``"a" | "b"`` for an enum, ``string(date-time)`` for a format. A field with a default
shows it after ``=``; a field neither required nor defaulted is marked ``optional``. Nested
models (``$ref``) are expanded in place, once per path, so a recursive model ends in its name.
A pure function of the schema: ``describe`` prints it, and tests read it without a broker.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["message_lines", "type_name"]

_INDENT = "    "
_MAX_DEFAULT = 40


def message_lines(schema: dict[str, Any]) -> list[str]:
    """The lines of a message: ``Name {`` fields ``}``, or its one type (``any JSON``)."""
    if not schema:
        return ["any JSON"]
    defs = schema.get("$defs", {})
    ref = _single_ref(schema)  # a recursive model's schema is a reference to its own $defs
    name = ref or schema.get("title", "object")
    return _block(schema, defs, name, "", frozenset({ref} if ref else ()))


def type_name(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """The one-line type of a schema (nested objects by name)."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(type_name(choice, defs) for choice in schema[key])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_name(schema["allOf"][0], defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(type_name({**schema, "type": k}, defs) for k in kind)
    if kind == "array":
        items = schema.get("items", {})
        return "[]" + (type_name(items, defs) if isinstance(items, dict) else "any")
    if kind == "object" and "properties" not in schema:
        values = schema.get("additionalProperties", {})
        return "map[string]" + (type_name(values, defs) if isinstance(values, dict) else "any")
    if kind == "object":
        return str(schema.get("title", "object"))
    if kind == "string" and "format" in schema:
        return f"string({schema['format']})"
    return str(kind) if kind else "any"


def _block(
    schema: dict[str, Any], defs: dict[str, Any], name: str, indent: str, seen: frozenset[str]
) -> list[str]:
    """``name {`` one line per field ``}``; a schema that is not an object is its type."""
    schema = _resolve(schema, defs)
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict):
        return [f"{indent}{name if name != 'object' else ''}{type_name(schema, defs)}".rstrip()]
    lines = [f"{indent}{name} {{"]
    required = set(schema.get("required", []))
    for field, field_schema in properties.items():
        lines += _field(field, field_schema, field in required, defs, indent + _INDENT, seen)
    lines.append(f"{indent}}}")
    return lines


def _field(
    field: str,
    schema: dict[str, Any],
    required: bool,
    defs: dict[str, Any],
    indent: str,
    seen: frozenset[str],
) -> list[str]:
    note = ""
    if "default" in schema:
        default = json.dumps(schema["default"])
        note = " = " + (default if len(default) <= _MAX_DEFAULT else default[:_MAX_DEFAULT] + "…")
    elif not required:
        note = " optional"
    ref, prefix = _single_ref(schema), ""
    if ref is None and schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        ref, prefix = _single_ref(schema["items"]), "[]"
    if ref is not None and ref not in seen:
        target = defs.get(ref, {})
        if target.get("type") == "object" and "properties" in target:
            nested = _block(target, defs, f"{field} {prefix}{ref}", indent, seen | {ref})
            nested[-1] += note
            return nested
    return [f"{indent}{field} {type_name(schema, defs)}{note}"]


def _single_ref(schema: dict[str, Any]) -> str | None:
    """The model a field holds (``$ref``, or ``allOf`` of one ``$ref``), if it is one."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    parts = schema.get("allOf")
    if isinstance(parts, list) and len(parts) == 1 and "$ref" in parts[0]:
        return _ref_name(parts[0]["$ref"])
    return None


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = _single_ref(schema)
    if ref is not None and ref in defs:
        resolved: dict[str, Any] = defs[ref]
        return resolved
    return schema


def _ref_name(ref: str) -> str:
    return ref.rpartition("/")[2]
