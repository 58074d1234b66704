"""Tools: what the program can call as ``external_<name>(input)``."""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import fastjsonschema

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]
"""Receives the validated input object; returns (or resolves to) a JSON value."""

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class InvalidArguments(Exception):
    """The program called a tool with arguments that do not match its input schema.

    Raise it from a handler too: the call then rejects inside the program with an
    ``InvalidArgumentsError`` (instead of a ``ToolError``) carrying the message."""


@dataclass(frozen=True)
class ToolBinding:
    """A host function exposed in the sandbox as ``external_<name>``.

    ``handler`` gets the input object and may be async or sync; sync handlers run in a
    worker thread so they never block the event loop.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Handler
    output_schema: Mapping[str, Any] | None = None
    _validate: Callable[[Any], Any] | None = field(default=None, repr=False, compare=False)
    _is_async: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name) or keyword.iskeyword(self.name):
            raise ValueError(f"tool name {self.name!r} is not a valid identifier")
        if not callable(self.handler):
            raise TypeError(f"tool {self.name!r}: handler must be callable")
        try:
            validate = fastjsonschema.compile(dict(self.input_schema))
        except fastjsonschema.JsonSchemaDefinitionException as e:
            raise ValueError(f"tool {self.name!r}: invalid input schema: {e}") from e
        object.__setattr__(self, "_validate", validate)
        call_method = type(self.handler).__dict__.get("__call__")  # async callable objects
        is_async = inspect.iscoroutinefunction(self.handler) or inspect.iscoroutinefunction(call_method)
        object.__setattr__(self, "_is_async", is_async)

    @property
    def sandbox_name(self) -> str:
        """The function name inside the program."""
        return f"external_{self.name}"

    @property
    def is_async(self) -> bool:
        """True when the handler is a coroutine function (sync handlers run in a thread)."""
        return self._is_async

    def check_output(self, result: Any) -> Any:
        """The handler's result as it goes back to the program (hook for output validation;
        raise to fail the call with a ToolError). The default returns it unchanged."""
        return result

    def validate(self, args: Any) -> Any:
        """Check ``args`` against the input schema (defaults filled in); raises InvalidArguments."""
        assert self._validate is not None
        try:
            return self._validate(args)
        except fastjsonschema.JsonSchemaValueException as e:
            message = e.message.replace("data.", "input.", 1).replace("data ", "input ", 1)
            raise InvalidArguments(f"{self.sandbox_name}: invalid arguments: {message}") from None


class Tool(ToolBinding):
    """A tool for a code mode. Build one from a JSON Schema with :meth:`Tool.from_schema`."""

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        output_schema: Mapping[str, Any] | None,
        handler: Handler,
    ) -> Tool:
        """A tool from raw JSON Schema (MCP and OpenAPI style)."""
        return cls(
            name=name,
            description=description,
            input_schema=input_schema,
            output_schema=output_schema,
            handler=handler,
        )
