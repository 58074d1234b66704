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

This module holds the declaration file's layout; reading a schema is
:mod:`codemode._declarations_schema`, rendering it as types :mod:`codemode._declarations_renderer`,
the names :mod:`codemode._declarations_names` and the JSDoc :mod:`codemode._declarations_jsdoc`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._declarations_jsdoc import jsdoc
from ._declarations_names import type_name
from ._declarations_renderer import Renderer
from ._declarations_schema import Document, normalize
from .tools import ToolBinding


def render_declarations(tools: Sequence[ToolBinding]) -> str:
    """All tools' declarations, in the order given: for each tool its ``<Name>Input`` and
    ``<Name>Output`` types with the named types they use, then
    ``declare function external_<name>(input: <Name>Input): Promise<<Name>Output>;`` under a
    JSDoc block with the tool's description. A type used by several tools (the same
    ``$defs`` entry) is declared once, with the first tool that uses it. The same tools
    give byte-identical text."""
    renderer = Renderer()
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
    renderer = Renderer()
    renderer.declare_root(schema, renderer.reserve(type_name(name)))
    return renderer.text()


def _root_names(renderer: Renderer, tool: ToolBinding) -> tuple[str, str | None]:
    base = type_name(tool.name)
    output = None if tool.output_schema is None else renderer.reserve(f"{base}Output")
    return renderer.reserve(f"{base}Input"), output


def _function(tool: ToolBinding, input_name: str, output_name: str | None) -> str:
    description = tool.description.strip()
    optional = "?" if _accepts_empty_object(tool.input_schema) else ""
    signature = (
        f"declare function {tool.sandbox_name}(input{optional}: {input_name}): "
        f"Promise<{output_name or 'unknown'}>;"
    )
    return "\n".join([*jsdoc([description] if description else [], ""), signature])


def _accepts_empty_object(schema: Any) -> bool:
    """True when ``{}`` is a valid input, so the call may leave the argument out (the runtime
    passes ``{}`` for a missing one)."""
    if not isinstance(schema, Mapping):
        return schema is True
    root = Document(schema).follow(schema)
    if not isinstance(root, Mapping):
        return root is True
    if any(key in root for key in ("anyOf", "oneOf", "not", "enum", "const", "$ref")):
        return False
    root = normalize(root)
    kind = root.get("type", "object")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    return is_object and "allOf" not in root and not (root.get("required") or root.get("minProperties"))
