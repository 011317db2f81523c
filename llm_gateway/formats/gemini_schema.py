"""Tool schemas rewritten to the subset of OpenAPI 3.0 that Gemini accepts.

Theory of operation: Gemini's ``functionDeclarations[].parameters`` is a
``Schema`` object, a select subset of OpenAPI 3.0; it rejects much of what
Claude Code and Codex send (``$schema``, ``additionalProperties``,
``$ref``/``$defs``, ``exclusiveMinimum``, ``propertyNames``, ...).
``to_gemini_schema`` walks a JSON Schema once and builds a new one,
deterministically (same input, same output, key order kept):

* ``$ref`` to ``#/$defs/...`` or ``#/definitions/...`` is inlined (a
  reference back into itself becomes a bare ``{"type": "object"}``);
* ``type: [T, "null"]`` and ``anyOf``/``oneOf`` with a ``{"type": "null"}``
  member become ``nullable: true``; a union left with one member is that
  member; ``allOf`` members are merged into one object;
* ``const`` becomes a one-value ``enum``; enums keep string values only;
* ``format`` is kept where Gemini knows it (``date-time``/``enum`` for
  strings, ``int32``/``int64``, ``float``/``double``);
* ``required`` keeps only names that are among ``properties``;
* every other keyword is dropped (one DEBUG line per schema lists them).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.formats import policy

__all__ = ["to_gemini_schema"]

# Keywords copied as they are (their values are not schemas).
_PLAIN = (
    "description",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
)
_FORMATS = {
    "string": frozenset({"date-time", "enum"}),
    "integer": frozenset({"int32", "int64"}),
    "number": frozenset({"float", "double"}),
}
_HANDLED = frozenset(
    (*_PLAIN, "type", "format", "enum", "const", "nullable", "properties", "required", "items")
    + ("anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions")
)
_MAX_DEPTH = 64


def to_gemini_schema(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """``schema`` (a JSON Schema object) as a Gemini ``Schema``; ``where`` names it in the log."""
    walker = _Walker(schema)
    result = walker.walk(schema, (), 0)
    if walker.dropped:
        policy.dropped(
            f"{where} keywords {', '.join(sorted(walker.dropped))}",
            "Gemini's schema subset has no counterpart",
        )
    if "type" not in result:
        result = {"type": "object", **result}
    return result


class _Walker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = {}
        for key in ("definitions", "$defs"):
            table = root.get(key)
            if isinstance(table, dict):
                for name, value in table.items():
                    self.defs[f"#/{key}/{name}"] = value
        self.dropped: set[str] = set()

    def walk(self, node: object, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self.defs.get(ref)
            if target is None or ref in refs:
                self.dropped.add("$ref")
                return {"type": "object"} if ref in refs else {}
            inlined = self.walk(target, (*refs, ref), depth + 1)
            if isinstance(node.get("description"), str):
                inlined["description"] = node["description"]
            return inlined
        for key in node:
            if key not in _HANDLED:
                self.dropped.add(key)
        merged = self._merge_all_of(node)
        out: dict[str, Any] = {}
        nullable = merged.get("nullable") is True
        kind, nullable_type = self._type_of(merged.get("type"))
        nullable = nullable or nullable_type
        union = merged.get("anyOf", merged.get("oneOf"))
        if isinstance(union, list):
            members = [m for m in union if not (isinstance(m, dict) and m.get("type") == "null")]
            nullable = nullable or len(members) < len(union)
            walked = [self.walk(m, refs, depth + 1) for m in members]
            if len(walked) == 1:
                out.update(walked[0])
            elif walked:
                out["anyOf"] = walked
        if isinstance(kind, list):  # several non-null types: a union of them
            out["anyOf"] = [{"type": k} for k in kind]
        elif kind is not None:
            out["type"] = kind
        self._copy_values(merged, out)
        properties = merged.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {
                name: self.walk(value, refs, depth + 1) for name, value in properties.items()
            }
            out.setdefault("type", "object")
            required = merged.get("required")
            if isinstance(required, list):
                kept = [r for r in required if isinstance(r, str) and r in properties]
                if kept:
                    out["required"] = kept
        items = merged.get("items")
        if isinstance(items, list):  # tuple validation: any of the item schemas
            walked = [self.walk(item, refs, depth + 1) for item in items]
            out["items"] = walked[0] if len(walked) == 1 else {"anyOf": walked}
        elif isinstance(items, dict):
            out["items"] = self.walk(items, refs, depth + 1)
        if nullable:
            out["nullable"] = True
        return out

    def _merge_all_of(self, node: dict[str, Any]) -> dict[str, Any]:
        members = node.get("allOf")
        if not isinstance(members, list):
            return node
        merged = {k: v for k, v in node.items() if k != "allOf"}
        for member in members:
            if isinstance(member, dict) and isinstance(member.get("$ref"), str):
                member = self.defs.get(member["$ref"], {})
            if not isinstance(member, dict):
                continue
            for key, value in member.items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged

    @staticmethod
    def _type_of(value: object) -> tuple[str | list[str] | None, bool]:
        """(the type or types without "null", whether "null" was among them)."""
        if isinstance(value, str):
            return (None, True) if value == "null" else (value, False)
        if isinstance(value, list):
            kinds = [v for v in value if isinstance(v, str) and v != "null"]
            nullable = "null" in value
            if not kinds:
                return None, nullable
            return (kinds[0] if len(kinds) == 1 else kinds), nullable
        return None, False

    def _copy_values(self, node: dict[str, Any], out: dict[str, Any]) -> None:
        for key in _PLAIN:
            if key in node:
                out[key] = node[key]
        fmt = node.get("format")
        if isinstance(fmt, str):
            if fmt in _FORMATS.get(str(out.get("type")), frozenset()):
                out["format"] = fmt
            else:
                self.dropped.add(f"format {fmt}")
        values = node.get("enum")
        if "const" in node:
            values = [node["const"]]
        if isinstance(values, list):
            strings = [v for v in values if isinstance(v, str)]
            if strings and len(strings) == len(values):
                out["enum"] = strings
                out.setdefault("type", "string")
            else:
                self.dropped.add("enum" if "const" not in node else "const")
