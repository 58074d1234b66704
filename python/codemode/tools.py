"""Tools: what the program can call as ``external_<name>(input)``."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, cast

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python
from typing_extensions import ParamSpec, TypeVar

from . import _core
from .errors import InvalidArgumentsError, InvalidSchemaError
from .handlers import Handler, guard, is_async, logger
from .pydantic_io import ToolSchema, describe_errors, output_adapter, to_json_data, validate_input

P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)
"""A tool's function type: ``Tool`` alone is ``Tool[..., Any]`` (a tool made from a schema)."""

ApprovalRule = bool | Callable[[Any], bool]
"""Whether a tool's calls wait for a person's decision: always, or when a function of the
validated input says so."""

IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
"""A JavaScript identifier name (ASCII): a property key that needs no quotes."""
_NOT_IDENTIFIER_CHARS = re.compile(r"[^A-Za-z0-9_$]+")

JS_RESERVED_WORDS = frozenset(
    # reserved words, strict-mode reserved words, literals, and names strict code cannot bind
    "await break case catch class const continue debugger default delete do else enum export extends "
    "false finally for function if implements import in instanceof interface let new null package "
    "private protected public return static super switch this throw true try typeof var void while "
    "with yield arguments eval".split()
)
"""Names that are not usable as JavaScript identifiers (or not in strict code)."""


def is_js_identifier(name: str) -> bool:
    """True when ``name`` is an ASCII JavaScript identifier and not a reserved word."""
    return bool(IDENTIFIER.match(name)) and name not in JS_RESERVED_WORDS


def js_identifier(name: str) -> str:
    """The JavaScript identifier a tool named ``name`` gets (``name`` itself when it is one).

    MCP- and OpenAPI-style names are converted: accents are dropped (``café`` -> ``cafe``),
    every run of other characters becomes ``_`` (``get-user`` -> ``get_user``,
    ``user.list`` -> ``user_list``), a leading digit gets a ``_`` before it
    (``2fa`` -> ``_2fa``) and a reserved word one after it (``delete`` -> ``delete_``).
    Raises ``ValueError`` for an empty name.
    """
    if is_js_identifier(name):
        return name
    if not name:
        raise ValueError("a tool name cannot be empty")
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_name = "".join(c for c in decomposed if not unicodedata.combining(c))
    converted = _NOT_IDENTIFIER_CHARS.sub("_", ascii_name)
    if converted[0].isdigit():
        converted = "_" + converted
    if converted in JS_RESERVED_WORDS:
        converted += "_"
    return converted


@dataclass(frozen=True)
class Tool(Generic[P, R]):
    """A host function exposed in the sandbox as ``external_<name>``: from a JSON Schema with
    :meth:`Tool.from_schema`, from pydantic models with :meth:`Tool.from_pydantic`, or from a
    typed function with ``@codemode.tool``.

    ``name`` must be a JavaScript identifier (see :func:`js_identifier`); ``original_name``
    is the name the tool had before conversion (it defaults to ``name``). ``handler`` gets
    the validated input and may be async or sync; sync handlers run in a worker thread so
    they never block the event loop. With ``validate_output`` the handler's result is
    checked against ``output_schema`` (or ``output_adapter``).

    Input is validated by pydantic into ``input_model`` when the tool has one (``@tool`` and
    ``from_pydantic``), else against ``input_schema`` by :func:`compile_schema` (the draft its
    ``$schema`` names, 2020-12 when none), with the ``default`` of each missing top-level
    property filled in (a copy of it; nested defaults are not filled).

    Calling the tool calls ``function``, the decorated function, unchanged: ``Tool[P, R]``
    keeps its parameters ``P`` and return type ``R`` for type checkers.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Handler
    output_schema: Mapping[str, Any] | None = None
    original_name: str | None = None
    validate_output: bool = False
    requires_approval: ApprovalRule = field(default=False, compare=False)
    """``True``: every call waits for a person's decision (the execution pauses, see
    :meth:`codemode.CodeMode.resume`); a function of the validated input: the calls it
    returns true for (``lambda args: args["amount"] > 100``)."""
    input_model: type[BaseModel] | None = field(default=None, repr=False, compare=False)
    """The pydantic model the input is validated into (the handler receives an instance)."""
    output_adapter: TypeAdapter[Any] | None = field(default=None, repr=False, compare=False)
    """Validates (with ``validate_output``) and dumps the result of a pydantic tool."""
    redact_errors: bool = False
    """The program sees ``external_<name> failed`` instead of the text of the handler's
    exceptions and of invalid results (which are logged on the ``codemode`` logger)."""
    function: Callable[P, R] | None = field(default=None, repr=False, compare=False)
    """The decorated function (``@codemode.tool``), called when the tool is called."""
    _validate: _core.JsonSchema | None = field(default=None, repr=False, compare=False)
    _validate_result: _core.JsonSchema | None = field(default=None, repr=False, compare=False)
    _is_async: bool = field(default=False, repr=False, compare=False)
    _precheck: str | None = field(default=None, repr=False, compare=False)
    _defaults: tuple[tuple[str, Any], ...] = field(default=(), repr=False, compare=False)
    """The ``default`` of each top-level property of the input schema that has one."""

    def __post_init__(self) -> None:
        if not is_js_identifier(self.name):
            raise ValueError(
                f"tool {self.name!r} is not a valid JavaScript identifier "
                f"(Tool.from_schema converts names: this one would become {_suggestion(self.name)})"
            )
        if self.original_name is None:
            object.__setattr__(self, "original_name", self.name)
        if not callable(self.handler):
            raise TypeError(f"tool {self.name!r}: handler must be callable")
        if self.input_model is None:  # pydantic validates a model's input, not the JSON Schema
            self._compile_schemas()
        object.__setattr__(self, "_is_async", is_async(self.handler))

    def _compile_schemas(self) -> None:
        """Compile the JSON Schema validators (input always, output with ``validate_output``)."""
        text = self._schema_text("input", self.input_schema)
        object.__setattr__(self, "_validate", self._compile("input", text))
        object.__setattr__(self, "_precheck", text)
        object.__setattr__(self, "_defaults", _top_level_defaults(self.input_schema))
        if self.validate_output and self.output_schema is not None:
            text = self._schema_text("output", self.output_schema)
            object.__setattr__(self, "_validate_result", self._compile("output", text))

    def _schema_text(self, which: str, schema: Any) -> str:
        try:
            return schema_text(schema)
        except (TypeError, ValueError) as e:
            raise InvalidSchemaError(f"tool {self.name!r}: invalid {which} schema: {e}") from None

    def _compile(self, which: str, text: str) -> _core.JsonSchema:
        try:
            return _core.JsonSchema(text)
        except _core.InvalidSchema as e:
            path, message = e.args
            raise InvalidSchemaError(
                f"tool {self.name!r}: invalid {which} schema: {which}_schema{path} {message}", path
            ) from None

    @property
    def precheck_schema(self) -> str | None:
        """The input schema as JSON text when the engine checks inputs against it first (with
        the validator :meth:`validate` uses): an input it finds valid skips :meth:`validate`
        (:meth:`fill_defaults` still runs)."""
        return self._precheck

    def needs_approval(self, args: Any) -> bool:
        """Whether this call (its validated input) waits for a person's decision."""
        rule = self.requires_approval
        return bool(rule(args)) if callable(rule) else bool(rule)

    @property
    def sandbox_name(self) -> str:
        """The function's name inside the program."""
        return f"external_{self.name}"

    @property
    def is_async(self) -> bool:
        """True when the handler is a coroutine function (sync handlers run in a thread)."""
        return self._is_async

    def validate(self, args: Any) -> Any:
        """``args`` validated: an ``input_model`` instance, or the input checked against the
        input schema (defaults filled in); raises :class:`~codemode.InvalidArgumentsError`
        naming each problem."""
        if self.input_model is not None:
            return validate_input(self.input_model, self.sandbox_name, args)
        assert self._validate is not None
        problem = self._validate.validate(args)
        if problem is not None:
            path, message = problem
            raise InvalidArgumentsError(f"{self.sandbox_name}: invalid arguments: input{path} {message}")
        return self.fill_defaults(args) if self._defaults else args

    def fill_defaults(self, args: Any) -> Any:
        """``args`` (valid input) with the ``default`` of each missing top-level property."""
        if not isinstance(args, dict):
            return args
        missing = [(key, value) for key, value in self._defaults if key not in args]
        if not missing:
            return args
        filled = dict(args)
        for key, value in missing:
            filled[key] = copy.deepcopy(value)
        return filled

    def check_output(self, result: Any) -> Any:
        """The handler's result as it goes back to the program; raise to fail the call with a
        ToolError.

        A pydantic tool's result is validated against its return type (with
        ``validate_output``) and dumped by it; without a return type, converted generically.
        Another tool's, with ``validate_output``, is converted to JSON data (as
        ``pydantic_core.to_jsonable_python`` does) and checked against the output schema;
        else it is returned unchanged (and converted as it is sent)."""
        if self.input_model is not None:
            return self._dump_output(result)
        if self._validate_result is None:
            return result
        try:
            data = to_jsonable_python(result)
        except PydanticSerializationError as e:
            raise TypeError(str(e)) from None
        problem = self._validate_result.validate(data)
        if problem is not None:
            raise ValueError(f"result{problem[0]} {problem[1]}")
        return data

    def _dump_output(self, result: Any) -> Any:
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
            raise TypeError(f"tool {self.name!r} has no function to call (it was not made by @codemode.tool)")
        return self.function(*args, **kwargs)

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        output_schema: Mapping[str, Any] | None,
        handler: Handler,
        *,
        validate_output: bool = False,
        redact_errors: bool = False,
        requires_approval: ApprovalRule = False,
    ) -> Tool[..., Any]:
        """A tool from raw JSON Schema (MCP and OpenAPI style); ``handler`` gets the input dict.

        ``name`` is converted to a JavaScript identifier when it is not one (see
        :func:`js_identifier`); the given name stays available as ``original_name``.

        ``validate_output`` checks each result against ``output_schema``. It is off by
        default: MCP and OpenAPI output schemas are often advisory rather than exact, and
        validating a large result (a 1 MB one takes milliseconds) costs time on every call.

        ``redact_errors`` hides the text of the handler's exceptions from the program (it
        sees ``external_<name> failed``; the exception is logged on the ``codemode`` logger).

        ``requires_approval`` (``True``, or a function of the input): calls wait for a person's
        decision (see :attr:`Tool.requires_approval`).
        """
        js_name = js_identifier(name)
        return cls(
            name=js_name,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            handler=guard(handler, f"external_{js_name}") if redact_errors else handler,
            original_name=name,
            validate_output=validate_output,
            requires_approval=requires_approval,
            redact_errors=redact_errors,
        )

    @classmethod
    def from_pydantic(
        cls,
        name: str,
        description: str,
        input_model: type[BaseModel],
        output_model: Any | None,
        handler: Callable[[Any], Any],
        *,
        validate_output: bool = True,
        redact_errors: bool = False,
        requires_approval: ApprovalRule = False,
    ) -> Tool[..., Any]:
        """A tool whose input is the pydantic model ``input_model``: ``handler`` (sync or
        async) receives the validated model instance. Its result is validated against
        ``output_model`` (any type pydantic handles; ``None`` for no output schema) unless
        ``validate_output`` is false, and dumped to JSON data by it.

        ``redact_errors`` hides the text of the handler's exceptions from the program (it
        sees ``external_<name> failed``; the exception is logged on the ``codemode`` logger).
        """
        if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
            raise TypeError(f"tool {name!r}: input_model must be a pydantic BaseModel subclass")
        js_name = js_identifier(name)
        adapter, output_schema = output_adapter(output_model, None)
        if redact_errors:
            handler = guard(handler, f"external_{js_name}")
        return cls(
            name=js_name,
            description=description,
            input_schema=input_model.model_json_schema(schema_generator=ToolSchema),
            handler=handler,
            output_schema=output_schema,
            original_name=name,
            validate_output=validate_output,
            input_model=input_model,
            output_adapter=adapter,
            redact_errors=redact_errors,
            function=cast("Callable[P, R]", handler),
            requires_approval=requires_approval,
        )


ToolBinding = Tool
"""The tool as a driver receives it (see :mod:`codemode.drivers`): a :class:`Tool`."""


def schema_text(schema: Any) -> str:
    """``schema`` (a JSON Schema: a mapping or a bool) as the JSON text validators compile."""
    return json.dumps(schema, ensure_ascii=False, default=_mapping)


def compile_schema(schema: Any) -> _core.JsonSchema:
    """The validator of ``schema``: the Rust ``jsonschema`` crate, the one the engine checks tool
    input with, for the draft the schema's ``$schema`` names (4, 6, 7, 2019-09, 2020-12) and
    2020-12 when it names none or one it does not know. ``format`` asserts in drafts 4-7 only.
    Its ``validate(value)`` returns ``None`` or ``(path, message)`` (``(".n", "must be
    integer")``). Raises :class:`codemode.InvalidSchemaError` (a ``ValueError``; ``path``,
    ``message``) for a schema that breaks its meta-schema or cannot be compiled."""
    try:
        return _core.JsonSchema(schema_text(schema))
    except _core.InvalidSchema as e:
        path, message = e.args
        raise InvalidSchemaError(message, path) from None


def _mapping(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _top_level_defaults(schema: Any) -> tuple[tuple[str, Any], ...]:
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(properties, Mapping):
        return ()
    return tuple(
        (key, sub["default"])
        for key, sub in properties.items()
        if isinstance(sub, Mapping) and "default" in sub
    )


def _suggestion(name: str) -> str:
    try:
        return repr(js_identifier(name))
    except ValueError as e:
        return f"nothing: {e}"


def index_tools(tools: Iterable[ToolBinding]) -> dict[str, ToolBinding]:
    """The tools keyed by name; ``ValueError`` when two of them have the same name (naming
    the names they were given, when conversion made them clash)."""
    by_name: dict[str, ToolBinding] = {}
    for tool in tools:
        other = by_name.get(tool.name)
        if other is not None:
            raise ValueError(_clash(other, tool))
        by_name[tool.name] = tool
    return by_name


def _clash(first: ToolBinding, second: ToolBinding) -> str:
    if first.original_name == second.original_name:
        return f"two tools are named {first.original_name!r}"
    return (
        f"tools {first.original_name!r} and {second.original_name!r} both become "
        f"{first.sandbox_name} in the program; rename one of them"
    )
