"""Calling pydantic-ai tools from a program: the agent run an ``execute_typescript`` call belongs
to (set while the call runs), and the codemode handlers that validate a program's arguments the
pydantic-ai way and run the tool through its toolset with that run's context."""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic_core
from pydantic import ValidationError
from pydantic_ai import FunctionToolset, RunContext, ToolReturn
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, ToolFailed
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool

from ...errors import InvalidArgumentsError


@dataclass
class _RunScope:
    """The agent run an ``execute_typescript`` call belongs to, seen by the program's tool calls."""

    ctx: RunContext[Any]
    sandboxed: Mapping[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = field(default_factory=dict)
    """The live tools of this step, as the step's ``get_tools`` listed them (with their toolsets)."""
    listed: dict[int, dict[str, ToolsetTool[Any]]] = field(default_factory=dict)

    async def tool(self, toolset: AbstractToolset[Any], name: str) -> ToolsetTool[Any]:
        """The toolset's tool ``name`` as pydantic-ai lists it for this run (listed once per call)."""
        tools = self.listed.get(id(toolset))
        if tools is None:
            tools = self.listed[id(toolset)] = await toolset.get_tools(self.ctx)
        return tools[name]

    def live_tool(self, name: str, sandbox_name: str) -> tuple[AbstractToolset[Any], ToolsetTool[Any]]:
        """The live toolset that listed ``name`` in this step, and its tool."""
        try:
            return self.sandboxed[name]
        except KeyError:
            raise _ToolCallFailed(f"{sandbox_name} is not offered in this step of the run") from None


_current_run: contextvars.ContextVar[_RunScope | None] = contextvars.ContextVar(
    "codemode_pydantic_ai_run", default=None
)
"""Set while ``execute_typescript`` runs; tool handlers run in copies of that context."""


class _ToolCallFailed(Exception):
    """A wrapped tool failed the pydantic-ai way (ModelRetry, ToolFailed, a deferral): the
    program gets a ToolError with the message."""


def _validation_message(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "input"
        problems.append(f"{location}: {item['msg']}")
    return "; ".join(problems)


async def _validate(
    tool: ToolsetTool[Any], ctx: RunContext[Any], sandbox_name: str, args: Any
) -> dict[str, Any]:
    """pydantic-ai's own argument validation: the tool's validator, then its ``args_validator``."""
    try:
        validated: dict[str, Any] = tool.args_validator.validate_python(args, context=ctx.validation_context)
        if tool.args_validator_func is not None:
            outcome = tool.args_validator_func(ctx, **validated)
            if inspect.isawaitable(outcome):
                await outcome
    except ValidationError as e:
        raise InvalidArgumentsError(f"{sandbox_name}: invalid arguments: {_validation_message(e)}") from None
    except (ModelRetry, ToolFailed) as e:
        raise InvalidArgumentsError(f"{sandbox_name}: invalid arguments: {e.message}") from None
    return validated


def _json_result(result: Any) -> Any:
    """A tool's return value as JSON data for the program (``ToolReturn`` gives its ``return_value``)."""
    if isinstance(result, ToolReturn):
        result = result.return_value
    return pydantic_core.to_jsonable_python(result)


def _scope(sandbox_name: str) -> _RunScope:
    scope = _current_run.get()
    if scope is None:
        raise RuntimeError(
            f"{sandbox_name} is a pydantic-ai tool: it runs inside an agent run, when the model "
            "calls the CodeModeToolset's execute_typescript"
        )
    return scope


async def _run_tool(
    toolset: AbstractToolset[Any], tool: ToolsetTool[Any], name: str, sandbox_name: str, args: Any
) -> Any:
    """Validate ``args`` the pydantic-ai way and call the tool through its toolset."""
    scope = _scope(sandbox_name)
    ctx = dataclasses.replace(scope.ctx, tool_name=name, retry=0, max_retries=tool.max_retries)
    validated = await _validate(tool, ctx, sandbox_name, args)
    try:
        result = await toolset.call_tool(name, validated, ctx, tool)
    except (ModelRetry, ToolFailed) as e:
        raise _ToolCallFailed(e.message) from None
    except (ApprovalRequired, CallDeferred):
        raise _ToolCallFailed(
            f"{sandbox_name} asked for approval or deferral, which a program cannot wait for"
        ) from None
    return _json_result(result)


def _handler(toolset: FunctionToolset[Any], name: str, sandbox_name: str) -> Callable[[Any], Awaitable[Any]]:
    """The codemode handler that runs the pydantic-ai tool ``name`` of ``toolset``."""

    async def call(args: Any) -> Any:
        tool = await _scope(sandbox_name).tool(toolset, name)
        return await _run_tool(toolset, tool, name, sandbox_name, args)

    return call


def _live_handler(name: str, sandbox_name: str) -> Callable[[Any], Awaitable[Any]]:
    """The codemode handler of a live toolset's tool ``name``: the toolset that listed it in the
    current step of the calling run runs it (so one code mode serves every run whose tools look
    the same, and each run calls its own toolsets)."""

    async def call(args: Any) -> Any:
        toolset, tool = _scope(sandbox_name).live_tool(name, sandbox_name)
        return await _run_tool(toolset, tool, name, sandbox_name, args)

    return call
