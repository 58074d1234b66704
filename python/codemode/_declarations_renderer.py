"""JSON Schemas rendered as TypeScript types: the type expressions, and :class:`Renderer`, which
declares the named types (interfaces and type aliases) a schema needs, parents before children."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._declarations_jsdoc import doc_entries, jsdoc, property_doc
from ._declarations_names import BUILTIN_TYPES, ref_name, title_names, type_name, variant_name
from ._declarations_schema import (
    Document,
    base_refs,
    has_index_signature,
    has_members,
    implied_type,
    is_interface,
    is_null,
    is_string_literals,
    normalize,
    schema_key,
)
from .tools import IDENTIFIER

_UNION, _INTERSECTION, _PRIMARY = 1, 2, 3  # how tightly a type expression binds


@dataclass(frozen=True)
class _Ts:
    """A TypeScript type expression; ``members`` are a union's or an intersection's operands."""

    text: str
    binding: int = _PRIMARY
    members: tuple[_Ts, ...] = ()

    def wrapped(self, binding: int) -> str:
        """The text, in parentheses when it binds more loosely than ``binding``."""
        return self.text if self.binding >= binding else f"({self.text})"


_UNKNOWN = _Ts("unknown")
_NEVER = _Ts("never")
_NULL = _Ts("null")
_UNDEFINED = _Ts("undefined")
_PRIMITIVES = {
    "string": _Ts("string"),
    "number": _Ts("number"),
    "integer": _Ts("number"),
    "boolean": _Ts("boolean"),
    "null": _NULL,
}


@dataclass(frozen=True)
class _Inherited:
    """A property an interface gets from a base: where it is declared, and how."""

    owner: str
    schema: Any
    required: bool


class Renderer:
    """Declarations in the making: the named types so far, in the order they are read."""

    def __init__(self) -> None:
        self._declarations: list[str] = []
        self._owners: dict[str, str] = {}  # type name -> key of the schema it declares
        self._roots = itertools.count()

    def text(self) -> str:
        """Every declaration, a blank line between them."""
        return "\n\n".join(self._declarations) + "\n" if self._declarations else ""

    def add(self, declaration: str) -> None:
        """Append a finished declaration."""
        self._declarations.append(declaration)

    def reserve(self, name: str) -> str:
        """Claim a root type's name (numbered when taken) before any ``$defs`` name can."""
        return self._claim([name], f"root {next(self._roots)}")[0]

    def declare_root(self, schema: Any, name: str) -> None:
        """Declare a document's root schema as ``name`` (its ``$ref: "#"`` points there)."""
        self._declare(name, schema, Document(schema, {"#": name}))

    def _claim(self, candidates: Sequence[str], key: str) -> tuple[str, bool]:
        """The first candidate name that is free or already declares ``key`` (then the second
        value is False: nothing to declare), else the first one numbered."""
        names = [f"{c}Type" if c in BUILTIN_TYPES else c for c in candidates]
        for name in itertools.chain(names, (f"{names[0]}{i}" for i in itertools.count(2))):
            owner = self._owners.get(name)
            if owner is None:
                self._owners[name] = key
                return name, True
            if owner == key:
                return name, False
        raise AssertionError("unreachable: the numbered names never run out")

    def _emit(self, build: Callable[[], str]) -> None:
        """Add a declaration before the ones ``build`` adds: parents come before children."""
        slot = len(self._declarations)
        self._declarations.append("")
        self._declarations[slot] = build()

    def _declare(self, name: str, schema: Any, doc: Document) -> None:
        self._emit(lambda: self._declaration(name, schema, doc))

    def _declaration(self, name: str, schema: Any, doc: Document) -> str:
        """``interface name`` for an object with properties, else ``type name = ...``."""
        if not isinstance(schema, Mapping):
            return f"type {name} = {self._type(schema, doc, name).text};"
        schema = normalize(schema)
        comment = jsdoc(doc_entries(schema), "")
        if is_interface(schema, doc):
            return "\n".join([*comment, self._interface(name, schema, doc, base_refs(schema, doc) or [])])
        alias = self._type(schema, doc, name, inline=True).text
        alias = "unknown" if alias == name else alias  # a $ref that leads to itself
        return "\n".join([*comment, f"type {name} = {alias};"])

    def _type(self, schema: Any, doc: Document, hint: str, inline: bool = False) -> _Ts:
        """The type of ``schema``; objects in it are named after ``hint``. ``inline`` writes
        the schema's own object literally (for a type alias named ``hint``)."""
        if schema is False:
            return _NEVER
        if not isinstance(schema, Mapping):
            return _UNKNOWN
        schema = normalize(schema)
        if "const" in schema:
            result = _literal(schema["const"])
        elif isinstance(schema.get("enum"), list):
            result = _union(_literal(value) for value in schema["enum"])
        else:
            result = self._composite(schema, doc, hint, inline)
        return _union([result, _NULL]) if schema.get("nullable") is True else result

    def _composite(self, schema: Mapping[str, Any], doc: Document, hint: str, inline: bool) -> _Ts:
        """The intersection of ``$ref``, ``allOf``, ``anyOf``/``oneOf`` and the own type."""
        parts: list[_Ts] = []
        if isinstance(schema.get("$ref"), str):
            parts.append(self._ref(schema["$ref"], doc))
        bases = None if inline or not is_interface(schema, doc) else base_refs(schema, doc)
        if bases is None:
            members = schema.get("allOf")
            members = members if isinstance(members, list) else []
            parts.extend(self._type(m, doc, f"{hint}Part{i}") for i, m in enumerate(members, 1))
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                parts.append(self._variants(schema[key], doc, hint))
        parts.append(self._own_type(schema, doc, hint, inline, bases or []))
        return _intersection(parts)

    def _variants(self, variants: list[Any], doc: Document, hint: str) -> _Ts:
        typed = [v for v in variants if not is_null(v)]
        return _union(
            self._type(v, doc, hint if len(typed) == 1 else variant_name(v, hint, i))
            for i, v in enumerate(variants, 1)
        )

    def _own_type(
        self, schema: Mapping[str, Any], doc: Document, hint: str, inline: bool, bases: list[str]
    ) -> _Ts:
        kind = schema.get("type", implied_type(schema))
        if isinstance(kind, list):
            return _union(self._own_type({**schema, "type": k}, doc, hint, inline, bases) for k in kind)
        if kind == "object":
            return self._object(schema, doc, hint, inline, bases)
        if kind == "array":
            return self._array(schema, doc, hint)
        return _PRIMITIVES.get(kind, _UNKNOWN) if isinstance(kind, str) else _UNKNOWN

    def _ref(self, ref: str, doc: Document) -> _Ts:
        name = doc.names.get(ref)
        if name is None:
            target = doc.resolve(ref)
            if target is None:
                return _UNKNOWN
            name, new = self._claim([ref_name(ref)], schema_key(target, doc))
            doc.names[ref] = name
            if new:
                self._declare(name, target, doc)
        return _Ts(name)

    def _object(
        self, schema: Mapping[str, Any], doc: Document, hint: str, inline: bool, bases: list[str]
    ) -> _Ts:
        if not (has_members(schema) or bases):
            return self._record(schema, doc, hint)
        if inline:
            return _Ts("\n".join(["{", *self._members(schema, doc, hint, {}), "}"]))
        name, new = self._claim([*title_names(schema), hint], schema_key(schema, doc))
        if new:
            self._emit(lambda: self._interface(name, schema, doc, bases))
        return _Ts(name)

    def _interface(self, name: str, schema: Mapping[str, Any], doc: Document, bases: list[str]) -> str:
        base_names = [self._ref(ref, doc).text for ref in bases]
        extends = f" extends {', '.join(base_names)}" if base_names else ""
        members = self._members(schema, doc, name, self._inherited(bases, doc))
        if not members:
            return f"interface {name}{extends} {{}}"
        return "\n".join([f"interface {name}{extends} {{", *members, "}"])

    def _members(
        self, schema: Mapping[str, Any], doc: Document, hint: str, inherited: dict[str, _Inherited]
    ) -> list[str]:
        """The interface body: properties, then the index signature when there is one."""
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        lines: list[str] = []
        types: list[_Ts] = []  # what an index signature must also admit
        for key, prop in properties.items():
            optional = key not in required and not (key in inherited and inherited[key].required)
            lines += self._property(key, prop, doc, hint + type_name(key), optional, types)
        for key in dict.fromkeys(r for r in required if r not in properties):
            lines += self._required_only(key, inherited.get(key), doc, types)
        if not has_index_signature(schema):
            return lines
        for key, base in inherited.items():
            if key not in properties and key not in required:
                self._property(key, base.schema, doc, base.owner + type_name(key), not base.required, types)
        return lines + self._index_signature(schema, doc, hint, types)

    def _property(
        self, key: str, schema: Any, doc: Document, hint: str, optional: bool, types: list[_Ts]
    ) -> list[str]:
        """A property's lines; its type (with ``undefined`` when optional) goes to ``types``."""
        prop_type = self._type(schema, doc, hint)
        types.append(_union([prop_type, _UNDEFINED]) if optional else prop_type)
        line = f"  {_property_key(key)}{'?' if optional else ''}: {prop_type.text};"
        return [*jsdoc(property_doc(key, schema), "  "), line]

    def _required_only(
        self, key: str, inherited: _Inherited | None, doc: Document, types: list[_Ts]
    ) -> list[str]:
        """A property named in ``required`` only: ``unknown``, or a base's optional one made required."""
        if inherited is None:
            types.append(_UNKNOWN)
            return [f"  {_property_key(key)}: unknown;"]
        if inherited.required:
            return []
        return self._property(key, inherited.schema, doc, inherited.owner + type_name(key), False, types)

    def _inherited(self, refs: list[str], doc: Document) -> dict[str, _Inherited]:
        """The properties the bases (and their bases) declare, by name."""
        found: dict[str, _Inherited] = {}
        pending, seen = list(refs), set()
        while pending:
            ref = pending.pop(0)
            target = doc.resolve(ref)
            if ref in seen or not isinstance(target, Mapping):
                continue
            seen.add(ref)
            owner, target = self._ref(ref, doc).text, normalize(target)
            properties = target.get("properties")
            for key, schema in properties.items() if isinstance(properties, Mapping) else []:
                required = key in (target.get("required") or [])
                first = found.setdefault(key, _Inherited(owner, schema, required))
                found[key] = _Inherited(first.owner, first.schema, first.required or required)
            pending += base_refs(target, doc) or []
        return found

    def _index_signature(
        self, schema: Mapping[str, Any], doc: Document, hint: str, property_types: list[_Ts]
    ) -> list[str]:
        value = self._additional(schema, doc, hint, open_by_default=False)
        signature = _union([value, *property_types])  # the properties must fit it too
        note = jsdoc([f"Other properties: {value.text}"], "  ") if signature != value else []
        return [*note, f"  [key: string]: {signature.text};"]

    def _additional(self, schema: Mapping[str, Any], doc: Document, hint: str, open_by_default: bool) -> _Ts:
        """The type of the values of properties the schema does not name."""
        patterns = schema.get("patternProperties")
        values = list(patterns.values()) if isinstance(patterns, Mapping) else []
        extra = schema.get("additionalProperties", open_by_default)
        if extra is not False:
            values.append(extra)
        return _union(self._type(v, doc, f"{hint}Value") for v in values)

    def _record(self, schema: Mapping[str, Any], doc: Document, hint: str) -> _Ts:
        declares_keys = "properties" in schema or "patternProperties" in schema  # `properties: {}`: none
        value = self._additional(schema, doc, hint, open_by_default=not declares_keys)
        names = schema.get("propertyNames")
        if isinstance(names, Mapping) and is_string_literals(doc.follow(names)):
            keys = self._type(names, doc, f"{hint}Key")
            return _Ts(f"Partial<Record<{keys.text}, {value.text}>>")
        return _Ts(f"Record<string, {value.text}>")

    def _array(self, schema: Mapping[str, Any], doc: Document, hint: str) -> _Ts:
        items = schema.get("items")
        if isinstance(items, list):  # draft 4-2019 tuples
            return self._tuple(items, schema.get("additionalItems"), schema, doc, hint)
        if isinstance(schema.get("prefixItems"), list):
            return self._tuple(schema["prefixItems"], items, schema, doc, hint)
        item = _UNKNOWN if items is None else self._type(items, doc, f"{hint}Item")
        return _Ts(f"{item.wrapped(_PRIMARY)}[]")

    def _tuple(
        self, prefix: list[Any], rest: Any, schema: Mapping[str, Any], doc: Document, hint: str
    ) -> _Ts:
        min_items, max_items = schema.get("minItems"), schema.get("maxItems")
        required = min_items if isinstance(min_items, int) else len(prefix)
        elements = []
        for i, item in enumerate(prefix, 1):
            element = self._type(item, doc, f"{hint}Item{i}")
            elements.append(element.text if i <= required else f"{element.wrapped(_PRIMARY)}?")
        if not (rest is False or (isinstance(max_items, int) and max_items <= len(prefix))):
            element = _UNKNOWN if rest is None else self._type(rest, doc, f"{hint}Item")
            elements.append(f"...{element.wrapped(_PRIMARY)}[]")
        return _Ts(f"[{', '.join(elements)}]")


def _union(types: Iterable[_Ts]) -> _Ts:
    """``A | B``, flattened and without repeats; ``unknown`` absorbs the rest, ``null`` goes last."""
    members: list[_Ts] = []
    for t in types:
        for member in t.members if t.binding == _UNION else (t,):
            if member == _UNKNOWN:
                return _UNKNOWN
            if member != _NEVER and member not in members:
                members.append(member)
    members.sort(key=lambda m: m in (_NULL, _UNDEFINED))
    if len(members) < 2:
        return members[0] if members else _NEVER
    return _Ts(" | ".join(m.text for m in members), _UNION, tuple(members))


def _intersection(types: Iterable[_Ts]) -> _Ts:
    """``A & B``, flattened and without repeats; ``unknown`` parts drop out."""
    members: list[_Ts] = []
    for t in types:
        for member in t.members if t.binding == _INTERSECTION else (t,):
            if member == _NEVER:
                return _NEVER
            if member != _UNKNOWN and member not in members:
                members.append(member)
    if len(members) < 2:
        return members[0] if members else _UNKNOWN
    return _Ts(" & ".join(m.wrapped(_INTERSECTION) for m in members), _INTERSECTION, tuple(members))


def _literal(value: Any) -> _Ts:
    """The literal type of a JSON value (``enum`` and ``const``)."""
    if isinstance(value, Mapping):
        if not value:
            return _Ts("Record<string, never>")
        fields = "; ".join(f"{_property_key(str(k))}: {_literal(v).text}" for k, v in value.items())
        return _Ts(f"{{ {fields} }}")
    if isinstance(value, list | tuple):
        return _Ts(f"[{', '.join(_literal(v).text for v in value)}]")
    return _Ts(json.dumps(value, ensure_ascii=False))


def _property_key(key: str) -> str:
    return key if IDENTIFIER.match(key) else json.dumps(key, ensure_ascii=False)
