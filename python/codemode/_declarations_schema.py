"""Reading JSON Schema for the TypeScript declarations: a document and its ``$ref`` pointers,
``allOf`` members merged in, what a schema says about its type, and what makes two schemas the
same type."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties", "patternProperties", "propertyNames")
_TYPE_KEYWORDS = frozenset(  # what makes a schema say something about the type (not `required`)
    {"type", "items", "prefixItems", "enum", "const", "$ref", "allOf", "anyOf", "oneOf", "nullable"}
    | {"properties", "additionalProperties", "patternProperties"}
)
_MERGE_KEEPS_FIRST = frozenset(  # annotations: the schema's own value wins over an allOf member's
    "title description default examples example deprecated $comment $defs definitions".split()
)


@dataclass
class Document:
    """One schema document: where its ``$ref`` pointers lead, and the type name each got."""

    root: Any
    names: dict[str, str] = field(default_factory=dict)

    def resolve(self, ref: str) -> Any:
        """The schema at a local JSON pointer (``#/$defs/Product``), or None."""
        if not ref.startswith("#"):
            return None
        node = self.root
        for part in pointer_parts(ref):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node

    def follow(self, schema: Mapping[str, Any]) -> Any:
        """``schema`` with a chain of bare ``{"$ref": ...}`` wrappers followed."""
        seen: set[str] = set()
        while _is_bare_ref(schema):
            ref = schema["$ref"]
            if ref in seen:
                break
            seen.add(ref)
            schema = self.resolve(ref)
        return schema


def _is_bare_ref(schema: Any) -> bool:
    """``{"$ref": ...}`` with nothing but annotations beside it."""
    return (
        isinstance(schema, Mapping)
        and isinstance(schema.get("$ref"), str)
        and not _has_type(_without(schema, "$ref"))
    )


def pointer_parts(ref: str) -> list[str]:
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/")[1:]]


def has_index_signature(schema: Mapping[str, Any]) -> bool:
    """Objects with properties have other ones only when the schema says so."""
    extra = schema.get("additionalProperties", False)
    return extra is not False or isinstance(schema.get("patternProperties"), Mapping)


def is_interface(schema: Mapping[str, Any], doc: Document, seen: frozenset[str] = frozenset()) -> bool:
    """True when ``schema`` (normalized) is an object with properties and nothing else that
    TypeScript cannot say in an interface; ``allOf`` members must be ``$ref``s to such."""
    if any(key in schema for key in ("const", "enum", "$ref", "anyOf", "oneOf")):
        return False
    if schema.get("nullable") is True or schema.get("type", implied_type(schema)) != "object":
        return False
    return has_members(schema) and base_refs(schema, doc, seen) is not None


def base_refs(
    schema: Mapping[str, Any], doc: Document, seen: frozenset[str] = frozenset()
) -> list[str] | None:
    """The ``allOf`` members' ``$ref``s when each leads to an interface, else None."""
    members = schema.get("allOf") or []
    if not all(_is_bare_ref(m) for m in members):
        return None
    refs = [m["$ref"] for m in members]
    for ref in refs:
        target = doc.resolve(ref)
        if ref in seen or not isinstance(target, Mapping):
            return None
        if not is_interface(normalize(target), doc, seen | {ref}):
            return None
    return refs


def normalize(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with its inline ``allOf`` members merged in (when they do not conflict with
    it) and ``anyOf``/``oneOf`` dropped when they only validate (``[{required: [a]}, ...]``)."""
    result = dict(schema)
    for key in ("anyOf", "oneOf"):
        variants = result.get(key)
        if isinstance(variants, list) and variants and not any(_has_type(v) for v in variants):
            del result[key]
    members = result.pop("allOf", None)
    if not isinstance(members, list):
        return result
    rest = []
    for member in members:
        merged = _merge(result, normalize(member)) if is_inline(member) else None
        if merged is None:
            rest.append(member)
        else:
            result = merged
    return {**result, "allOf": rest} if rest else result


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """Both schemas as one, or None when they set a keyword to different values."""
    merged = dict(a)
    for key, value in b.items():
        if key not in merged or key in _MERGE_KEEPS_FIRST:
            merged.setdefault(key, value)
        elif key == "properties" and isinstance(value, Mapping) and isinstance(merged[key], Mapping):
            merged[key] = _merge_properties(merged[key], value)
        elif key == "required" and isinstance(value, list) and isinstance(merged[key], list):
            merged[key] = list(dict.fromkeys([*merged[key], *value]))
        elif merged[key] != value:
            return None
    return merged


def _merge_properties(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = {"allOf": [merged[key], value]} if key in merged and merged[key] != value else value
    return merged


def is_inline(schema: Any) -> bool:
    return isinstance(schema, Mapping) and "$ref" not in schema


def _has_type(schema: Any) -> bool:
    """False for schemas that say nothing about the type (``true``, ``{required: [...]}``)."""
    return schema is False or (isinstance(schema, Mapping) and bool(_TYPE_KEYWORDS & set(schema)))


def _without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def has_members(schema: Mapping[str, Any]) -> bool:
    properties = schema.get("properties")
    return bool(properties if isinstance(properties, Mapping) else None) or bool(schema.get("required"))


def implied_type(schema: Mapping[str, Any]) -> str | None:
    if any(key in schema for key in _OBJECT_KEYWORDS):
        return "object"
    return "array" if "items" in schema or "prefixItems" in schema else None


def is_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    return (
        schema.get("type") == "null"
        or ("const" in schema and schema["const"] is None)
        or (schema.get("enum") == [None])
    )


def is_string_literals(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    return isinstance(values, list) and bool(values) and all(isinstance(v, str) for v in values)


def schema_key(schema: Any, doc: Document) -> str:
    """What makes two schemas the same type: the schema and everything its ``$ref``s reach."""
    reached: dict[str, Any] = {}
    pending = list(_refs_in(schema))
    while pending:
        ref = pending.pop()
        if ref not in reached:
            reached[ref] = doc.resolve(ref)
            pending.extend(_refs_in(reached[ref]))
    return json.dumps([schema, reached], sort_keys=True, default=plain)


def _refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs_in(value)


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return list(value) if isinstance(value, tuple | set | frozenset) else str(value)
