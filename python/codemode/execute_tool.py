"""The tools a code mode gives the model: ``execute_typescript`` (and, for large tool sets,
``get_tool_declarations``), each with a name, description, JSON Schema and async ``call``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .events import EventCallback
from .prompt import DISCOVERY_TOOL_NAME, TOOL_NAME
from .results import ExecutionResult

EXECUTE_DESCRIPTION = (
    "Run a TypeScript program in a sandbox and get its JSON result. The program is the body of an "
    "async function: call the available functions as `await external_<name>({...})`, combine calls "
    "with Promise.all, compute, and `return` the answer. See the system prompt for the functions."
)

EXECUTE_INPUT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "typescriptCode": {
            "type": "string",
            "description": "The TypeScript program: the body of an async function that returns a JSON value.",
        }
    },
    "required": ["typescriptCode"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class ModelTool:
    """A tool as an LLM sees it, with the call that runs it."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    _call: Callable[..., Awaitable[dict[str, Any]]] = field(repr=False)

    async def call(
        self,
        arguments: Mapping[str, Any],
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> dict[str, Any]:
        """Run the tool with the model's arguments; returns the JSON output for the model."""
        return await self._call(arguments, tool_call_id=tool_call_id, on_event=on_event)


def execute_typescript_tool(
    execute: Callable[..., Awaitable[ExecutionResult]], description: str = EXECUTE_DESCRIPTION
) -> ModelTool:
    """The ``execute_typescript`` tool over a code mode's ``execute``."""

    async def call(
        arguments: Mapping[str, Any],
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> dict[str, Any]:
        code = arguments.get("typescriptCode")
        if not isinstance(code, str):
            return {
                "success": False,
                "error": {
                    "kind": "invalid_args",
                    "name": "InvalidArgumentsError",
                    "message": "execute_typescript needs {typescriptCode: string}",
                },
                "logs": [],
            }
        result = await execute(code, tool_call_id=tool_call_id, on_event=on_event)
        return result.to_tool_output()

    return ModelTool(TOOL_NAME, description, EXECUTE_INPUT_SCHEMA, call)


def discovery_tool(declarations_for: Callable[[list[str]], str], names: list[str]) -> ModelTool:
    """``get_tool_declarations``: TypeScript declarations of the named functions, on demand."""

    async def call(
        arguments: Mapping[str, Any],
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> dict[str, Any]:
        wanted = arguments.get("names")
        if not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted):
            return {"success": False, "error": "pass {names: string[]}", "available": names}
        unknown = [n for n in wanted if n.removeprefix("external_") not in names]
        return {
            "success": not unknown,
            "declarations": declarations_for(
                [n.removeprefix("external_") for n in wanted if n not in unknown]
            ),
            **({"unknown": unknown, "available": [f"external_{n}" for n in names]} if unknown else {}),
        }

    schema = {
        "type": "object",
        "properties": {
            "names": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Function names, e.g. ['external_getTopProducts'].",
            }
        },
        "required": ["names"],
        "additionalProperties": False,
    }
    description = "Get the TypeScript declarations of functions available to execute_typescript programs."
    return ModelTool(DISCOVERY_TOOL_NAME, description, schema, call)
