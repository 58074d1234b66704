"""The JSDoc of the declarations: a schema's description and annotations (bounds, default,
examples, deprecated) as ``/** ... */`` lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._declarations_schema import is_inline, is_null, normalize, plain

_ONE_LINE_JSDOC = 100  # longest `/** ... */` line before the block form
_LONGEST_VALUE = 120  # longest JSON value quoted in a JSDoc tag

_BOUNDS = (
    "format",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


def property_doc(key: str, schema: Any) -> list[str]:
    """The JSDoc of a property; a ``title`` that says more than the property's name stands in
    for a missing description (pydantic's ``Total Sales`` for ``total_sales`` does not)."""
    if not isinstance(schema, Mapping):
        return []
    title = schema.get("title")
    informative = isinstance(title, str) and _squash(title) != _squash(key)
    return doc_entries(normalize(schema), title if informative else None)


def _squash(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def doc_entries(schema: Mapping[str, Any], fallback: str | None = None) -> list[str]:
    """Description, then ``@integer``, the bounds, ``@default``, ``@example`` and
    ``@deprecated``; for ``anyOf: [X, {type: null}]`` X's own annotations count too."""
    sources = _doc_sources(schema)
    description = _first(sources, "description")
    description = description if isinstance(description, str) and description.strip() else fallback
    entries = [description.strip()] if description else []
    if any(_is_integer(s) for s in sources):
        entries.append("@integer")
    tuple_size = ("minItems", "maxItems") if _is_tuple(schema) else ()  # the tuple type says it
    for key in _BOUNDS:
        value = None if key in tuple_size else _first(sources, key)
        if value is not None:
            entries.append(f"@{key} {value if isinstance(value, str) else _json(value)}")
    if "default" in schema:
        entries.append(f"@default {_json(schema['default'])}")
    entries += [f"@example {_json(e)}" for e in _examples(schema)]
    if _first(sources, "deprecated") is True:
        entries.append("@deprecated")
    return entries


def _is_tuple(schema: Mapping[str, Any]) -> bool:
    return isinstance(schema.get("prefixItems"), list) or isinstance(schema.get("items"), list)


def _examples(schema: Mapping[str, Any]) -> list[Any]:
    examples = schema.get("examples")
    if isinstance(examples, list):
        return examples
    return [schema["example"]] if "example" in schema else []  # OpenAPI 3.0


def _doc_sources(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("anyOf", "oneOf"):
        variants = schema.get(key)
        if isinstance(variants, list):
            typed = [v for v in variants if not is_null(v)]
            if len(typed) == 1 and is_inline(typed[0]):
                return [schema, typed[0]]
    return [schema]


def _first(sources: list[Mapping[str, Any]], key: str) -> Any:
    return next((s[key] for s in sources if key in s), None)


def _is_integer(schema: Mapping[str, Any]) -> bool:
    """True for integers (and nullable ones) that are not literals."""
    kind = schema.get("type")
    kinds = set(kind) - {"null"} if isinstance(kind, list) else {kind}
    return kinds == {"integer"} and "enum" not in schema and "const" not in schema


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=plain)
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


def jsdoc(entries: list[str], indent: str) -> list[str]:
    """A ``/** ... */`` comment: one line when it fits, else one line per entry line."""
    if not entries:
        return []
    entries = [e.replace("*/", "*\\/") for e in entries]
    one_line = f"{indent}/** {' '.join(entries)} */"
    if "\n" not in one_line and len(one_line) <= _ONE_LINE_JSDOC:
        return [one_line]
    lines = [f"{indent} * {line}".rstrip() for entry in entries for line in entry.splitlines()]
    return [f"{indent}/**", *lines, f"{indent} */"]
