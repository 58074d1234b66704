"""TypeScript declarations of the tools, generated from their JSON Schemas.

The model reads them in the system prompt and calls ``await external_<name>(input)`` with
the shapes they declare. Each tool gets ``<Name>Input`` and ``<Name>Output`` types and a
``declare function`` with its description as JSDoc; ``$defs`` keep their names, every
other object with properties becomes a named interface, and the schema annotations
(description, default, format, bounds, examples, deprecated) become JSDoc on the property.

Names: the tool's name in PascalCase (``get_top_products`` and ``getTopProducts`` both give
``GetTopProductsInput``); a ``$defs``/``definitions`` entry its key (``Product``); any other
object its ``title`` when that is a short name, else its path: ``<Parent><Property>``,
``<Parent>Item`` for array items, ``<Parent>Value`` for ``additionalProperties``, and for
union members ``<Parent><Discriminator>`` (after a ``const`` property) or
``<Parent>Variant<n>``. A name already taken by the same schema (and the same schemas its
``$ref``s reach) is shared; by a different one it gets numbered (``Tag2``). Names of
TypeScript's built-in types get ``Type`` appended (``Date`` -> ``DateType``).

An object's declared properties are all it has unless the schema says otherwise: without
``additionalProperties`` the interface has no index signature, so TypeScript reports a
misspelt property instead of accepting it. A free-form ``{"type": "object"}`` is
``Record<string, unknown>``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .tools import IDENTIFIER, ToolBinding

_WORD_SEPARATORS = re.compile(r"[\W_]+")
_NAME_LIKE_TITLE = re.compile(r"[A-Za-z][A-Za-z0-9_ -]{0,39}")
_ONE_LINE_JSDOC = 100  # longest `/** ... */` line before the block form
_LONGEST_VALUE = 120  # longest JSON value quoted in a JSDoc tag

_UNION, _INTERSECTION, _PRIMARY = 1, 2, 3  # how tightly a type expression binds

_OBJECT_KEYWORDS = ("properties", "required", "additionalProperties", "patternProperties", "propertyNames")
_TYPE_KEYWORDS = frozenset(  # what makes a schema say something about the type (not `required`)
    {"type", "items", "prefixItems", "enum", "const", "$ref", "allOf", "anyOf", "oneOf", "nullable"}
    | {"properties", "additionalProperties", "patternProperties"}
)
_MERGE_KEEPS_FIRST = frozenset(  # annotations: the schema's own value wins over an allOf member's
    "title description default examples example deprecated $comment $defs definitions".split()
)
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
_POINTER_KEYWORDS = frozenset(
    {"items", "prefixItems", "properties", "additionalProperties", "not", "allOf", "anyOf", "oneOf"}
    | {"$defs", "definitions"}
)
_BUILTIN_TYPES = frozenset(
    # global types and namespaces of TypeScript's lib.es2022 (a schema name that shadowed or
    # merged with one of them would change what the program's own code means)
    """AggregateError Array ArrayBuffer ArrayBufferLike ArrayBufferView ArrayLike AsyncGenerator
    AsyncGeneratorFunction AsyncIterable AsyncIterableIterator AsyncIterator Atomics Awaited BigInt
    BigInt64Array BigUint64Array Boolean CallableFunction Capitalize ConcatArray ConstructorParameters
    DataView Date Error EvalError Exclude Extract FinalizationRegistry Float32Array Float64Array
    Function Generator GeneratorFunction IArguments InstanceType Int16Array Int32Array Int8Array Intl
    Iterable IterableIterator Iterator IteratorResult JSON Lowercase Map Math NewableFunction NoInfer
    NonNullable Number Object Omit OmitThisParameter Parameters Partial Pick Promise PromiseLike
    PropertyDescriptor PropertyKey Proxy RangeError Readonly ReadonlyArray ReadonlyMap ReadonlySet
    Record ReferenceError Reflect RegExp Required ReturnType Set SharedArrayBuffer String Symbol
    SyntaxError TemplateStringsArray ThisParameterType ThisType TypeError TypedPropertyDescriptor
    URIError Uint16Array Uint32Array Uint8Array Uint8ClampedArray Uncapitalize Uppercase WeakMap
    WeakRef WeakSet""".split()
)


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


def render_declarations(tools: Sequence[ToolBinding]) -> str:
    """All tools' declarations, in the order given: for each tool its ``<Name>Input`` and
    ``<Name>Output`` types with the named types they use, then
    ``declare function external_<name>(input: <Name>Input): Promise<<Name>Output>;`` under a
    JSDoc block with the tool's description. A type used by several tools (the same
    ``$defs`` entry) is declared once, with the first tool that uses it. The same tools
    give byte-identical text."""
    renderer = _Renderer()
    names = [_root_names(renderer, tool) for tool in tools]
    for tool, (input_name, output_name) in zip(tools, names, strict=True):
        renderer.declare_root(tool.input_schema, input_name)
        if output_name is not None:
            renderer.declare_root(tool.output_schema, output_name)
        renderer.add(_function(tool, input_name, output_name))
    return renderer.text()


def schema_to_typescript(schema: Mapping[str, Any], name: str) -> str:
    """Declarations for one JSON Schema as the type ``name`` (made a PascalCase identifier):
    an interface or a type alias, then the named types it uses (nested objects, ``$defs``)."""
    renderer = _Renderer()
    renderer.declare_root(schema, renderer.reserve(_type_name(name)))
    return renderer.text()


def _root_names(renderer: _Renderer, tool: ToolBinding) -> tuple[str, str | None]:
    base = _type_name(tool.name)
    output = None if tool.output_schema is None else renderer.reserve(f"{base}Output")
    return renderer.reserve(f"{base}Input"), output


def _function(tool: ToolBinding, input_name: str, output_name: str | None) -> str:
    description = tool.description.strip()
    optional = "?" if _accepts_empty_object(tool.input_schema) else ""
    signature = (
        f"declare function {tool.sandbox_name}(input{optional}: {input_name}): "
        f"Promise<{output_name or 'unknown'}>;"
    )
    return "\n".join([*_jsdoc([description] if description else [], ""), signature])


def _accepts_empty_object(schema: Any) -> bool:
    """True when ``{}`` is a valid input, so the call may leave the argument out (the runtime
    passes ``{}`` for a missing one)."""
    if not isinstance(schema, Mapping):
        return schema is True
    root = _Document(schema).follow(schema)
    if not isinstance(root, Mapping):
        return root is True
    if any(key in root for key in ("anyOf", "oneOf", "not", "enum", "const", "$ref")):
        return False
    root = _normalize(root)
    kind = root.get("type", "object")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    return is_object and "allOf" not in root and not (root.get("required") or root.get("minProperties"))


@dataclass
class _Document:
    """One schema document: where its ``$ref`` pointers lead, and the type name each got."""

    root: Any
    names: dict[str, str] = field(default_factory=dict)

    def resolve(self, ref: str) -> Any:
        """The schema at a local JSON pointer (``#/$defs/Product``), or None."""
        if not ref.startswith("#"):
            return None
        node = self.root
        for part in _pointer_parts(ref):
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


def _pointer_parts(ref: str) -> list[str]:
    return [unquote(p).replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/")[1:]]


@dataclass(frozen=True)
class _Inherited:
    """A property an interface gets from a base: where it is declared, and how."""

    owner: str
    schema: Any
    required: bool


class _Renderer:
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
        self._declare(name, schema, _Document(schema, {"#": name}))

    def _claim(self, candidates: Sequence[str], key: str) -> tuple[str, bool]:
        """The first candidate name that is free or already declares ``key`` (then the second
        value is False: nothing to declare), else the first one numbered."""
        names = [f"{c}Type" if c in _BUILTIN_TYPES else c for c in candidates]
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

    def _declare(self, name: str, schema: Any, doc: _Document) -> None:
        self._emit(lambda: self._declaration(name, schema, doc))

    def _declaration(self, name: str, schema: Any, doc: _Document) -> str:
        """``interface name`` for an object with properties, else ``type name = ...``."""
        if not isinstance(schema, Mapping):
            return f"type {name} = {self._type(schema, doc, name).text};"
        schema = _normalize(schema)
        comment = _jsdoc(_doc_entries(schema), "")
        if _is_interface(schema, doc):
            return "\n".join([*comment, self._interface(name, schema, doc, _base_refs(schema, doc) or [])])
        alias = self._type(schema, doc, name, inline=True).text
        alias = "unknown" if alias == name else alias  # a $ref that leads to itself
        return "\n".join([*comment, f"type {name} = {alias};"])

    def _type(self, schema: Any, doc: _Document, hint: str, inline: bool = False) -> _Ts:
        """The type of ``schema``; objects in it are named after ``hint``. ``inline`` writes
        the schema's own object literally (for a type alias named ``hint``)."""
        if schema is False:
            return _NEVER
        if not isinstance(schema, Mapping):
            return _UNKNOWN
        schema = _normalize(schema)
        if "const" in schema:
            result = _literal(schema["const"])
        elif isinstance(schema.get("enum"), list):
            result = _union(_literal(value) for value in schema["enum"])
        else:
            result = self._composite(schema, doc, hint, inline)
        return _union([result, _NULL]) if schema.get("nullable") is True else result

    def _composite(self, schema: Mapping[str, Any], doc: _Document, hint: str, inline: bool) -> _Ts:
        """The intersection of ``$ref``, ``allOf``, ``anyOf``/``oneOf`` and the own type."""
        parts: list[_Ts] = []
        if isinstance(schema.get("$ref"), str):
            parts.append(self._ref(schema["$ref"], doc))
        bases = None if inline or not _is_interface(schema, doc) else _base_refs(schema, doc)
        if bases is None:
            members = schema.get("allOf")
            members = members if isinstance(members, list) else []
            parts.extend(self._type(m, doc, f"{hint}Part{i}") for i, m in enumerate(members, 1))
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                parts.append(self._variants(schema[key], doc, hint))
        parts.append(self._own_type(schema, doc, hint, inline, bases or []))
        return _intersection(parts)

    def _variants(self, variants: list[Any], doc: _Document, hint: str) -> _Ts:
        typed = [v for v in variants if not _is_null(v)]
        return _union(
            self._type(v, doc, hint if len(typed) == 1 else _variant_name(v, hint, i))
            for i, v in enumerate(variants, 1)
        )

    def _own_type(
        self, schema: Mapping[str, Any], doc: _Document, hint: str, inline: bool, bases: list[str]
    ) -> _Ts:
        kind = schema.get("type", _implied_type(schema))
        if isinstance(kind, list):
            return _union(self._own_type({**schema, "type": k}, doc, hint, inline, bases) for k in kind)
        if kind == "object":
            return self._object(schema, doc, hint, inline, bases)
        if kind == "array":
            return self._array(schema, doc, hint)
        return _PRIMITIVES.get(kind, _UNKNOWN) if isinstance(kind, str) else _UNKNOWN

    def _ref(self, ref: str, doc: _Document) -> _Ts:
        name = doc.names.get(ref)
        if name is None:
            target = doc.resolve(ref)
            if target is None:
                return _UNKNOWN
            name, new = self._claim([_ref_name(ref)], _key(target, doc))
            doc.names[ref] = name
            if new:
                self._declare(name, target, doc)
        return _Ts(name)

    def _object(
        self, schema: Mapping[str, Any], doc: _Document, hint: str, inline: bool, bases: list[str]
    ) -> _Ts:
        if not (_has_members(schema) or bases):
            return self._record(schema, doc, hint)
        if inline:
            return _Ts("\n".join(["{", *self._members(schema, doc, hint, {}), "}"]))
        name, new = self._claim([*_title_names(schema), hint], _key(schema, doc))
        if new:
            self._emit(lambda: self._interface(name, schema, doc, bases))
        return _Ts(name)

    def _interface(self, name: str, schema: Mapping[str, Any], doc: _Document, bases: list[str]) -> str:
        base_names = [self._ref(ref, doc).text for ref in bases]
        extends = f" extends {', '.join(base_names)}" if base_names else ""
        members = self._members(schema, doc, name, self._inherited(bases, doc))
        if not members:
            return f"interface {name}{extends} {{}}"
        return "\n".join([f"interface {name}{extends} {{", *members, "}"])

    def _members(
        self, schema: Mapping[str, Any], doc: _Document, hint: str, inherited: dict[str, _Inherited]
    ) -> list[str]:
        """The interface body: properties, then the index signature when there is one."""
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        lines: list[str] = []
        types: list[_Ts] = []  # what an index signature must also admit
        for key, prop in properties.items():
            optional = key not in required and not (key in inherited and inherited[key].required)
            lines += self._property(key, prop, doc, hint + _type_name(key), optional, types)
        for key in dict.fromkeys(r for r in required if r not in properties):
            lines += self._required_only(key, inherited.get(key), doc, types)
        if not _has_index_signature(schema):
            return lines
        for key, base in inherited.items():
            if key not in properties and key not in required:
                self._property(key, base.schema, doc, base.owner + _type_name(key), not base.required, types)
        return lines + self._index_signature(schema, doc, hint, types)

    def _property(
        self, key: str, schema: Any, doc: _Document, hint: str, optional: bool, types: list[_Ts]
    ) -> list[str]:
        """A property's lines; its type (with ``undefined`` when optional) goes to ``types``."""
        prop_type = self._type(schema, doc, hint)
        types.append(_union([prop_type, _UNDEFINED]) if optional else prop_type)
        line = f"  {_property_key(key)}{'?' if optional else ''}: {prop_type.text};"
        return [*_jsdoc(_property_doc(key, schema), "  "), line]

    def _required_only(
        self, key: str, inherited: _Inherited | None, doc: _Document, types: list[_Ts]
    ) -> list[str]:
        """A property named in ``required`` only: ``unknown``, or a base's optional one made required."""
        if inherited is None:
            types.append(_UNKNOWN)
            return [f"  {_property_key(key)}: unknown;"]
        if inherited.required:
            return []
        return self._property(key, inherited.schema, doc, inherited.owner + _type_name(key), False, types)

    def _inherited(self, refs: list[str], doc: _Document) -> dict[str, _Inherited]:
        """The properties the bases (and their bases) declare, by name."""
        found: dict[str, _Inherited] = {}
        pending, seen = list(refs), set()
        while pending:
            ref = pending.pop(0)
            target = doc.resolve(ref)
            if ref in seen or not isinstance(target, Mapping):
                continue
            seen.add(ref)
            owner, target = self._ref(ref, doc).text, _normalize(target)
            properties = target.get("properties")
            for key, schema in properties.items() if isinstance(properties, Mapping) else []:
                required = key in (target.get("required") or [])
                first = found.setdefault(key, _Inherited(owner, schema, required))
                found[key] = _Inherited(first.owner, first.schema, first.required or required)
            pending += _base_refs(target, doc) or []
        return found

    def _index_signature(
        self, schema: Mapping[str, Any], doc: _Document, hint: str, property_types: list[_Ts]
    ) -> list[str]:
        value = self._additional(schema, doc, hint, open_by_default=False)
        signature = _union([value, *property_types])  # the properties must fit it too
        note = _jsdoc([f"Other properties: {value.text}"], "  ") if signature != value else []
        return [*note, f"  [key: string]: {signature.text};"]

    def _additional(self, schema: Mapping[str, Any], doc: _Document, hint: str, open_by_default: bool) -> _Ts:
        """The type of the values of properties the schema does not name."""
        patterns = schema.get("patternProperties")
        values = list(patterns.values()) if isinstance(patterns, Mapping) else []
        extra = schema.get("additionalProperties", open_by_default)
        if extra is not False:
            values.append(extra)
        return _union(self._type(v, doc, f"{hint}Value") for v in values)

    def _record(self, schema: Mapping[str, Any], doc: _Document, hint: str) -> _Ts:
        declares_keys = "properties" in schema or "patternProperties" in schema  # `properties: {}`: none
        value = self._additional(schema, doc, hint, open_by_default=not declares_keys)
        names = schema.get("propertyNames")
        if isinstance(names, Mapping) and _is_string_literals(doc.follow(names)):
            keys = self._type(names, doc, f"{hint}Key")
            return _Ts(f"Partial<Record<{keys.text}, {value.text}>>")
        return _Ts(f"Record<string, {value.text}>")

    def _array(self, schema: Mapping[str, Any], doc: _Document, hint: str) -> _Ts:
        items = schema.get("items")
        if isinstance(items, list):  # draft 4-2019 tuples
            return self._tuple(items, schema.get("additionalItems"), schema, doc, hint)
        if isinstance(schema.get("prefixItems"), list):
            return self._tuple(schema["prefixItems"], items, schema, doc, hint)
        item = _UNKNOWN if items is None else self._type(items, doc, f"{hint}Item")
        return _Ts(f"{item.wrapped(_PRIMARY)}[]")

    def _tuple(
        self, prefix: list[Any], rest: Any, schema: Mapping[str, Any], doc: _Document, hint: str
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


def _has_index_signature(schema: Mapping[str, Any]) -> bool:
    """Objects with properties have other ones only when the schema says so."""
    extra = schema.get("additionalProperties", False)
    return extra is not False or isinstance(schema.get("patternProperties"), Mapping)


def _is_interface(schema: Mapping[str, Any], doc: _Document, seen: frozenset[str] = frozenset()) -> bool:
    """True when ``schema`` (normalized) is an object with properties and nothing else that
    TypeScript cannot say in an interface; ``allOf`` members must be ``$ref``s to such."""
    if any(key in schema for key in ("const", "enum", "$ref", "anyOf", "oneOf")):
        return False
    if schema.get("nullable") is True or schema.get("type", _implied_type(schema)) != "object":
        return False
    return _has_members(schema) and _base_refs(schema, doc, seen) is not None


def _base_refs(
    schema: Mapping[str, Any], doc: _Document, seen: frozenset[str] = frozenset()
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
        if not _is_interface(_normalize(target), doc, seen | {ref}):
            return None
    return refs


def _normalize(schema: Mapping[str, Any]) -> dict[str, Any]:
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
        merged = _merge(result, _normalize(member)) if _is_inline(member) else None
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


def _is_inline(schema: Any) -> bool:
    return isinstance(schema, Mapping) and "$ref" not in schema


def _has_type(schema: Any) -> bool:
    """False for schemas that say nothing about the type (``true``, ``{required: [...]}``)."""
    return schema is False or (isinstance(schema, Mapping) and bool(_TYPE_KEYWORDS & set(schema)))


def _without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _has_members(schema: Mapping[str, Any]) -> bool:
    properties = schema.get("properties")
    return bool(properties if isinstance(properties, Mapping) else None) or bool(schema.get("required"))


def _implied_type(schema: Mapping[str, Any]) -> str | None:
    if any(key in schema for key in _OBJECT_KEYWORDS):
        return "object"
    return "array" if "items" in schema or "prefixItems" in schema else None


def _is_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    return (
        schema.get("type") == "null"
        or ("const" in schema and schema["const"] is None)
        or (schema.get("enum") == [None])
    )


def _is_string_literals(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    return isinstance(values, list) and bool(values) and all(isinstance(v, str) for v in values)


def _key(schema: Any, doc: _Document) -> str:
    """What makes two schemas the same type: the schema and everything its ``$ref``s reach."""
    reached: dict[str, Any] = {}
    pending = list(_refs_in(schema))
    while pending:
        ref = pending.pop()
        if ref not in reached:
            reached[ref] = doc.resolve(ref)
            pending.extend(_refs_in(reached[ref]))
    return json.dumps([schema, reached], sort_keys=True, default=_plain)


def _refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs_in(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return list(value) if isinstance(value, tuple | set | frozenset) else str(value)


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


def _type_name(text: str) -> str:
    """A PascalCase identifier: ``get_top_products`` and ``getTopProducts`` -> ``GetTopProducts``."""
    parts = [p for p in _WORD_SEPARATORS.split(text) if p]
    if len(parts) > 1:
        parts = [p.capitalize() if p.isupper() else p for p in parts]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Type"
    return f"T{name}" if name[0].isdigit() else name


def _ref_name(ref: str) -> str:
    """``#/$defs/Product`` -> ``Product``; pointers not ending in a name use their whole path."""
    parts = _pointer_parts(ref)
    last = parts[-1] if parts else ""
    if not last or last.isdigit() or last in _POINTER_KEYWORDS:
        return _type_name(" ".join(parts))
    return _type_name(last)


def _title_names(schema: Mapping[str, Any]) -> list[str]:
    title = schema.get("title")
    if isinstance(title, str) and _NAME_LIKE_TITLE.fullmatch(title.strip()):
        return [_type_name(title)]
    return []


def _variant_name(variant: Any, hint: str, index: int) -> str:
    """A union member's name: after the value of its discriminator property, or numbered."""
    properties = variant.get("properties") if isinstance(variant, Mapping) else None
    for prop in properties.values() if isinstance(properties, Mapping) else []:
        values = [prop["const"]] if isinstance(prop, Mapping) and "const" in prop else None
        values = values or (prop.get("enum") if isinstance(prop, Mapping) else None)
        if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str):
            return hint + _type_name(values[0])
    return f"{hint}Variant{index}"


def _property_doc(key: str, schema: Any) -> list[str]:
    """The JSDoc of a property; a ``title`` that says more than the property's name stands in
    for a missing description (pydantic's ``Total Sales`` for ``total_sales`` does not)."""
    if not isinstance(schema, Mapping):
        return []
    title = schema.get("title")
    informative = isinstance(title, str) and _squash(title) != _squash(key)
    return _doc_entries(_normalize(schema), title if informative else None)


def _squash(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _doc_entries(schema: Mapping[str, Any], fallback: str | None = None) -> list[str]:
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
            typed = [v for v in variants if not _is_null(v)]
            if len(typed) == 1 and _is_inline(typed[0]):
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
    text = json.dumps(value, ensure_ascii=False, default=_plain)
    return text if len(text) <= _LONGEST_VALUE else text[: _LONGEST_VALUE - 3] + "..."


def _jsdoc(entries: list[str], indent: str) -> list[str]:
    """A ``/** ... */`` comment: one line when it fits, else one line per entry line."""
    if not entries:
        return []
    entries = [e.replace("*/", "*\\/") for e in entries]
    one_line = f"{indent}/** {' '.join(entries)} */"
    if "\n" not in one_line and len(one_line) <= _ONE_LINE_JSDOC:
        return [one_line]
    lines = [f"{indent} * {line}".rstrip() for entry in entries for line in entry.splitlines()]
    return [f"{indent}/**", *lines, f"{indent} */"]
