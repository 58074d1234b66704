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
import logging
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

import docstring_parser
import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .errors import InvalidArgumentsError
from .tools import ApprovalRule, Tool, js_identifier

logger = logging.getLogger("codemode")

P = ParamSpec("P")
R = TypeVar("R")

_MAX_ERRORS = 10  # problems listed in an InvalidArgumentsError message
_MAX_PREVIEW = 40  # characters of a bad value quoted in it
_NO_OUTPUT_TYPES: tuple[Any, ...] = (None, type(None), Any, inspect.Signature.empty)
# orjson serialises these natively; passed through (so that it fails) they mark a value to convert
_PLAIN_JSON = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class _Schema(GenerateJsonSchema):
    """JSON Schema without the titles pydantic derives from property names. Of an output (the
    serialization-mode schema), every field the dump writes is required: a field with a default
    is always there in what the tool returns (``tags: list[str] = []`` is ``tags: string[]``,
    not ``tags?: string[]``), as are computed fields."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def field_is_required(self, field: Any, total: bool) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)


@dataclass(frozen=True)
class PydanticTool(Tool, Generic[P, R]):
    """A tool whose input pydantic validates into ``input_model`` and whose result pydantic
    validates (with ``validate_output``) and dumps with ``output_adapter``.

    Made by ``@codemode.tool`` and :meth:`Tool.from_pydantic`; calling it calls ``function``,
    the decorated function, unchanged: ``PydanticTool[P, R]`` keeps that function's
    parameters ``P`` and return type ``R`` for type checkers.
    """

    input_model: type[BaseModel] | None = field(default=None, repr=False, compare=False)
    output_adapter: TypeAdapter[Any] | None = field(default=None, repr=False, compare=False)
    redact_errors: bool = False
    function: Callable[P, R] | None = field(default=None, repr=False, compare=False)

    def _compile_schemas(self) -> None:
        """Nothing to compile: pydantic validates, not the JSON Schema validator."""
        if self.input_model is None:
            raise TypeError(f"tool {self.name!r}: a PydanticTool needs an input_model")

    def validate(self, args: Any) -> BaseModel:
        """``args`` as an ``input_model`` instance; raises InvalidArgumentsError naming each problem."""
        assert self.input_model is not None
        return validate_input(self.input_model, self.sandbox_name, args)

    def check_output(self, result: Any) -> Any:
        """The result as JSON data: validated against the return type (with
        ``validate_output``) and dumped by it; without one, converted generically."""
        adapter = self.output_adapter
        try:
            if adapter is None:
                return to_json_data(result)
            if self.validate_output:
                result = adapter.validate_python(result)
            return adapter.dump_python(result, mode="json", by_alias=True, warnings=False)
        except ValidationError as e:
            raise ValueError(self._output_problem(e)) from None
        except PydanticSerializationError as e:
            raise TypeError(str(e)) from None

    def _output_problem(self, error: ValidationError) -> str:
        problem = describe_errors(error, root="result")
        if not self.redact_errors:
            return problem
        logger.warning("%s returned an invalid result: %s", self.sandbox_name, problem)
        return "it does not match the declared output type"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the decorated function directly (no validation)."""
        if self.function is None:
            raise TypeError(f"tool {self.name!r} has no function to call")
        return self.function(*args, **kwargs)


# -- the decorator -----------------------------------------------------------------------


@overload
def tool(function: Callable[P, R], /) -> PydanticTool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    validate_output: bool = True,
    redact_errors: bool = False,
    requires_approval: ApprovalRule = False,
) -> Callable[[Callable[P, R]], PydanticTool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    validate_output: bool = True,
    redact_errors: bool = False,
    requires_approval: ApprovalRule = False,
) -> PydanticTool[P, R] | Callable[[Callable[P, R]], PydanticTool[P, R]]:
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

    def decorate(fn: Callable[P, R]) -> PydanticTool[P, R]:
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


def pydantic_tool(
    name: str,
    description: str,
    input_model: type[BaseModel],
    output_model: Any | None,
    handler: Callable[[Any], Any],
    *,
    validate_output: bool = True,
    redact_errors: bool = False,
    requires_approval: ApprovalRule = False,
) -> PydanticTool[..., Any]:
    """A tool over a pydantic input model; the implementation of :meth:`Tool.from_pydantic`."""
    if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
        raise TypeError(f"tool {name!r}: input_model must be a pydantic BaseModel subclass")
    js_name = js_identifier(name)
    output_adapter, output_schema = _output(output_model, None)
    if redact_errors:
        handler = _guard(handler, _is_async(handler), f"external_{js_name}")
    return PydanticTool(
        name=js_name,
        description=description,
        input_schema=input_model.model_json_schema(schema_generator=_Schema),
        handler=handler,
        output_schema=output_schema,
        original_name=name,
        validate_output=validate_output,
        input_model=input_model,
        output_adapter=output_adapter,
        redact_errors=redact_errors,
        function=handler,
        requires_approval=requires_approval,
    )


def _make_tool(
    fn: Callable[P, R],
    *,
    name: str | None,
    description: str | None,
    validate_output: bool,
    redact_errors: bool,
    localns: Mapping[str, Any],
    requires_approval: ApprovalRule = False,
) -> PydanticTool[P, R]:
    original_name = name if name is not None else _function_name(fn)
    js_name = js_identifier(original_name)
    docs = _Docs.of(fn)
    hints = _type_hints(fn, localns)
    input_model, fields = _input_model(fn, js_name, hints, docs.params)
    output_adapter, output_schema = _output(hints.get("return", inspect.Signature.empty), docs.returns)
    input_schema = input_model.model_json_schema(schema_generator=_Schema)
    input_schema.pop("title", None)
    return PydanticTool(
        name=js_name,
        description=docs.description if description is None else description,
        input_schema=input_schema,
        handler=_handler(fn, input_model, fields, f"external_{js_name}", redact_errors),
        output_schema=output_schema,
        original_name=original_name,
        validate_output=validate_output,
        input_model=input_model,
        output_adapter=output_adapter,
        redact_errors=redact_errors,
        function=fn,
        requires_approval=requires_approval,
    )


def _function_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise TypeError(f"@codemode.tool: {fn!r} has no usable name; pass name=...")
    return name


def _is_async(fn: Callable[..., Any]) -> bool:
    call_method = type(fn).__dict__.get("__call__")
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call_method)


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


_Output = tuple[TypeAdapter[Any] | None, dict[str, Any] | None]


def _output(return_type: Any, returns_doc: str | None) -> _Output:
    """The adapter and JSON Schema of a return type; ``(None, None)`` when it says nothing."""
    if any(return_type is t for t in _NO_OUTPUT_TYPES):
        return None, None
    adapter: TypeAdapter[Any] = TypeAdapter(return_type)
    schema = adapter.json_schema(mode="serialization", schema_generator=_Schema)
    if returns_doc and "description" not in schema:
        schema["description"] = returns_doc
    return adapter, schema


def to_json_data(value: Any) -> Any:
    """``value`` as JSON data: unchanged when it already is (checked at serialisation speed,
    about 2 ms a MB), else converted by pydantic (models, dataclasses, datetimes, Decimal,
    sets...; about 20 ms a MB, as it builds new objects)."""
    try:
        orjson.dumps(value, option=_PLAIN_JSON)
    except TypeError:
        return to_jsonable_python(value)
    return value


# -- calling -----------------------------------------------------------------------------


def validate_input(model: type[BaseModel], sandbox_name: str, args: Any) -> BaseModel:
    """``args`` validated into ``model``; raises InvalidArgumentsError with every problem."""
    try:
        return model.model_validate(args)
    except ValidationError as e:
        raise InvalidArgumentsError(f"{sandbox_name}: invalid arguments: {describe_errors(e)}") from None


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

    if _is_async(fn):

        async def call_async(args: Any) -> Any:
            return await fn(**arguments(args))

        return _guard(call_async, True, sandbox_name) if redact else call_async

    def call(args: Any) -> Any:
        return fn(**arguments(args))

    return _guard(call, False, sandbox_name) if redact else call


def _guard(handler: Callable[[Any], Any], is_async: bool, sandbox_name: str) -> Callable[[Any], Any]:
    """``handler`` with its exceptions (but InvalidArgumentsError) logged and replaced by a generic
    ``<sandbox_name> failed``."""
    if is_async:

        async def guarded_async(args: Any) -> Any:
            try:
                return await handler(args)
            except InvalidArgumentsError:
                raise
            except Exception as e:
                raise _redacted(sandbox_name, e) from None

        return guarded_async

    def guarded(args: Any) -> Any:
        try:
            return handler(args)
        except InvalidArgumentsError:
            raise
        except Exception as e:
            raise _redacted(sandbox_name, e) from None

    return guarded


def _redacted(sandbox_name: str, error: Exception) -> RuntimeError:
    logger.error("%s failed", sandbox_name, exc_info=error)
    return RuntimeError(f"{sandbox_name} failed")


# -- error messages ----------------------------------------------------------------------


def describe_errors(error: ValidationError, *, root: str = "input") -> str:
    """A pydantic error as ``path: problem (got value)`` items joined by ``; `` (at most
    ten, then how many more)."""
    problems = [_describe(item, root) for item in error.errors(include_url=False)]
    text = "; ".join(problems[:_MAX_ERRORS])
    if len(problems) > _MAX_ERRORS:
        text += f"; and {len(problems) - _MAX_ERRORS} more"
    return text


def _describe(item: Mapping[str, Any], root: str) -> str:
    path = _path(item["loc"]) or root
    if item["type"] == "missing":
        return f"{path}: {item['msg']}"
    return f"{path}: {item['msg']} (got {_preview(item.get('input'))})"


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _preview(value: Any) -> str:
    try:
        text = orjson.dumps(value, default=str).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _MAX_PREVIEW else text[: _MAX_PREVIEW - 3] + "..."
