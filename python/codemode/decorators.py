"""``@codemode.tool``: tools from typed Python functions, validated by pydantic.

The input schema comes from the function's signature (one property per parameter, its
description from the docstring), the output schema from its return annotation. Arguments are
validated and converted by pydantic before the function runs (models arrive as model
instances, enums as members, datetimes as ``datetime``); results are validated against the
return annotation and dumped to JSON data.

Input is validated with ``validate_python`` in lax mode on the dict the driver has already
parsed: for JSON data it coerces as ``validate_json`` would (ISO strings to datetimes, values
to enum members, lists to tuples, numeric strings to numbers) without serialising the
arguments again.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, create_model

from .handlers import guard, is_async
from .pydantic_io import ToolSchema, output_adapter, validate_input
from .tools import ApprovalRule, Tool, js_identifier

P = ParamSpec("P")
R = TypeVar("R")


# -- the decorator -----------------------------------------------------------------------


@overload
def tool(function: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    validate_output: bool = True,
    redact_errors: bool = False,
    requires_approval: ApprovalRule = False,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    validate_output: bool = True,
    redact_errors: bool = False,
    requires_approval: ApprovalRule = False,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Make a tool of a typed function (sync or async, or a bound method).

    Use it bare (``@codemode.tool``) or with options (``@codemode.tool(name=...)``).

    - ``name``: the tool's name, by default the function's; converted to a JavaScript
      identifier when it is not one (``get-items`` -> ``get_items``, ``delete`` -> ``delete_``).
    - ``description``: by default the docstring's summary and body. Parameter descriptions
      always come from the docstring (Google, NumPy or reST style).
    - ``validate_output``: validate each result against the return annotation (a mismatch
      fails the call with a ToolError).
    - ``redact_errors``: the program sees ``external_<name> failed`` instead of the text of
      the function's exceptions (which are logged on the ``codemode`` logger).
    - ``requires_approval``: ``True``, or a function of the validated input (``lambda args:
      args.amount > 100``): such calls wait for a person's decision; the execution pauses
      and :meth:`codemode.CodeMode.resume` continues it.

    Every parameter becomes a property of the input object; ``*args``, ``**kwargs`` and
    positional-only parameters are rejected with a ``TypeError``.
    """
    caller = sys._getframe(1)  # its local classes may be named in string annotations
    localns = {} if caller.f_locals is caller.f_globals else dict(caller.f_locals)

    def decorate(fn: Callable[P, R]) -> Tool[P, R]:
        return _make_tool(
            fn,
            name=name,
            description=description,
            validate_output=validate_output,
            redact_errors=redact_errors,
            requires_approval=requires_approval,
            localns=localns,
        )

    return decorate if function is None else decorate(function)


def _make_tool(
    fn: Callable[P, R],
    *,
    name: str | None,
    description: str | None,
    validate_output: bool,
    redact_errors: bool,
    localns: Mapping[str, Any],
    requires_approval: ApprovalRule = False,
) -> Tool[P, R]:
    original_name = name if name is not None else _function_name(fn)
    js_name = js_identifier(original_name)
    docs = _Docs.of(fn)
    hints = _type_hints(fn, localns)
    input_model, fields = _input_model(fn, js_name, hints, docs.params)
    adapter, output_schema = output_adapter(hints.get("return", inspect.Signature.empty), docs.returns)
    input_schema = input_model.model_json_schema(schema_generator=ToolSchema)
    input_schema.pop("title", None)
    return Tool(
        name=js_name,
        description=docs.description if description is None else description,
        input_schema=input_schema,
        handler=_handler(fn, input_model, fields, f"external_{js_name}", redact_errors),
        output_schema=output_schema,
        original_name=original_name,
        validate_output=validate_output,
        input_model=input_model,
        output_adapter=adapter,
        redact_errors=redact_errors,
        function=fn,
        requires_approval=requires_approval,
    )


def _function_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise TypeError(f"@codemode.tool: {fn!r} has no usable name; pass name=...")
    return name


# -- docstrings --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Docs:
    """What a docstring says: the description, each parameter's, and the return value's."""

    description: str
    params: dict[str, str]
    returns: str | None

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> _Docs:
        doc = inspect.getdoc(fn)
        if not doc:
            return cls("", {}, None)
        parsed = docstring_parser.parse(doc)
        parts = (parsed.short_description, parsed.long_description)
        params: dict[str, str] = {}
        for param in parsed.params:
            if param.description:
                for arg_name in param.arg_name.split(","):  # NumPy: "a, b : int"
                    params[arg_name.strip().lstrip("*")] = param.description
        returns = parsed.returns.description if parsed.returns else None
        return cls("\n\n".join(part for part in parts if part), params, returns or None)


# -- the input model ---------------------------------------------------------------------


def _type_hints(fn: Callable[..., Any], localns: Mapping[str, Any]) -> dict[str, Any]:
    target: Any = fn
    if not inspect.isroutine(fn) and callable(fn):
        target = target.__call__  # a callable object: its __call__'s annotations
    try:
        return typing.get_type_hints(target, localns=dict(localns), include_extras=True)
    except (NameError, TypeError) as e:
        raise TypeError(f"@codemode.tool {_label(fn)}: cannot resolve its type annotations: {e}") from e


def _label(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _input_model(
    fn: Callable[..., Any], js_name: str, hints: Mapping[str, Any], docs: Mapping[str, str]
) -> tuple[type[BaseModel], list[tuple[str, str]]]:
    """The pydantic model of ``fn``'s parameters, and (field name, parameter name) pairs."""
    parameters = list(inspect.signature(fn).parameters.values())
    definitions: dict[str, Any] = {}
    fields: list[tuple[str, str]] = []
    for index, param in enumerate(parameters):
        _check_parameter(fn, param, index)
        field_name = param.name if _usable_field_name(param.name) else f"arg{index}"
        annotation = hints.get(param.name, Any)
        definitions[field_name] = (annotation, _field_info(param, field_name, docs.get(param.name)))
        fields.append((field_name, param.name))
    config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=False)
    try:
        model = create_model(f"{js_name}_arguments", __config__=config, **definitions)
    except Exception as e:
        raise TypeError(f"@codemode.tool {_label(fn)}: cannot build the input schema: {e}") from e
    return model, fields


def _check_parameter(fn: Callable[..., Any], param: inspect.Parameter, index: int) -> None:
    where = f"@codemode.tool {_label(fn)}: parameter"
    if param.kind is param.VAR_POSITIONAL:
        raise TypeError(f"{where} *{param.name} is not supported: tool arguments are named (use a list)")
    if param.kind is param.VAR_KEYWORD:
        raise TypeError(f"{where} **{param.name} is not supported: tool arguments are named (use a dict)")
    if param.kind is param.POSITIONAL_ONLY:
        raise TypeError(f"{where} {param.name!r} is positional-only: tool arguments are passed by name")
    if index == 0 and param.name in ("self", "cls") and not inspect.ismethod(fn):
        raise TypeError(f"{where} {param.name!r}: decorate the bound method (codemode.tool(obj.method))")


def _usable_field_name(name: str) -> bool:
    """Whether a parameter can be a pydantic field of that name (else it gets an alias)."""
    return not name.startswith("_") and not hasattr(BaseModel, name)


def _field_info(param: inspect.Parameter, field_name: str, description: str | None) -> Any:
    options: dict[str, Any] = {}
    if description:
        options["description"] = description
    if field_name != param.name:
        options["alias"] = param.name
    default = ... if param.default is param.empty else param.default
    return Field(default, **options)


# -- the output --------------------------------------------------------------------------


# -- calling -----------------------------------------------------------------------------


def _handler(
    fn: Callable[..., Any],
    model: type[BaseModel],
    fields: list[tuple[str, str]],
    sandbox_name: str,
    redact: bool,
) -> Callable[[Any], Any]:
    """The handler: the validated input (validated here if it is still a dict) as keyword
    arguments to ``fn``; async when ``fn`` is."""

    def arguments(args: Any) -> dict[str, Any]:
        instance = args if isinstance(args, model) else validate_input(model, sandbox_name, args)
        return {param: getattr(instance, field_name) for field_name, param in fields}

    if is_async(fn):

        async def call_async(args: Any) -> Any:
            return await fn(**arguments(args))

        return guard(call_async, sandbox_name) if redact else call_async

    def call(args: Any) -> Any:
        return fn(**arguments(args))

    return guard(call, sandbox_name) if redact else call
