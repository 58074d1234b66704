"""The names of the declared TypeScript types: PascalCase identifiers made from tool names,
``$ref`` pointers, titles and union members' discriminators, and TypeScript's own type names
that a declaration must not take."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._declarations_schema import pointer_parts

_WORD_SEPARATORS = re.compile(r"[\W_]+")
_NAME_LIKE_TITLE = re.compile(r"[A-Za-z][A-Za-z0-9_ -]{0,39}")
_POINTER_KEYWORDS = frozenset(
    {"items", "prefixItems", "properties", "additionalProperties", "not", "allOf", "anyOf", "oneOf"}
    | {"$defs", "definitions"}
)
BUILTIN_TYPES = frozenset(
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


def type_name(text: str) -> str:
    """A PascalCase identifier: ``get_top_products`` and ``getTopProducts`` -> ``GetTopProducts``."""
    parts = [p for p in _WORD_SEPARATORS.split(text) if p]
    if len(parts) > 1:
        parts = [p.capitalize() if p.isupper() else p for p in parts]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Type"
    return f"T{name}" if name[0].isdigit() else name


def ref_name(ref: str) -> str:
    """``#/$defs/Product`` -> ``Product``; pointers not ending in a name use their whole path."""
    parts = pointer_parts(ref)
    last = parts[-1] if parts else ""
    if not last or last.isdigit() or last in _POINTER_KEYWORDS:
        return type_name(" ".join(parts))
    return type_name(last)


def title_names(schema: Mapping[str, Any]) -> list[str]:
    title = schema.get("title")
    if isinstance(title, str) and _NAME_LIKE_TITLE.fullmatch(title.strip()):
        return [type_name(title)]
    return []


def variant_name(variant: Any, hint: str, index: int) -> str:
    """A union member's name: after the value of its discriminator property, or numbered."""
    properties = variant.get("properties") if isinstance(variant, Mapping) else None
    for prop in properties.values() if isinstance(properties, Mapping) else []:
        values = [prop["const"]] if isinstance(prop, Mapping) and "const" in prop else None
        values = values or (prop.get("enum") if isinstance(prop, Mapping) else None)
        if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str):
            return hint + type_name(values[0])
    return f"{hint}Variant{index}"
