"""Raw tool definitions and tool-call execution for the OpenAI and Anthropic APIs.

No SDK is needed (nor imported): the definitions are plain dicts to put in a request's
``tools``, and :func:`execute_tool_call` takes the tool call as the SDK returns it (a pydantic
object) or as a dict, and returns the tool-result message to send back::

    cm = codemode.create_code_mode(tools)
    response = client.chat.completions.create(
        model=..., tools=[openai_tool(cm)],
        messages=[{"role": "system", "content": cm.system_prompt}, *messages],
    )
    for call in response.choices[0].message.tool_calls or []:
        messages.append(await execute_tool_call(cm, call))

The declarations of the tools go in the system prompt (``cm.system_prompt``) by default: the
tool description stays short, within the 1024-character limit some OpenAI deployments still
enforce. Pass ``include_declarations=True`` to put the whole prompt in the description instead.

Every definition function takes a :class:`~codemode.CodeMode` (its ``execute_typescript``
tool), a :class:`~codemode.skills.SkillContext` (its ``execute_typescript``, which runs
programs with the skills) or one :class:`~codemode.execute_tool.ModelTool` (e.g.
``get_tool_declarations`` with ``prompt="compact"``, or one of a context's tools).
:func:`openai_tools`, :func:`openai_responses_tools` and :func:`anthropic_tools` give every
tool to offer now: ``cm.model_tools``, or a context's ``tools`` (``execute_typescript``, the
skill management tools, each selected skill as a tool of its own).
:func:`execute_tool_call` runs whichever of them a call names. A context's tools and prompt
grow when the model registers a skill: build the definitions and the system message again
before each request::

    skills = await with_skills(cm, store=store, messages=messages)
    # or let the model choose the skills, through the same client:
    # with_skills(cm, store=store, messages=messages, selector="llm", model=(client, "gpt-4o-mini"))
    while True:
        response = client.chat.completions.create(
            model=..., tools=openai_tools(skills),
            messages=[{"role": "system", "content": skills.system_prompt}, *messages],
        )
        ...
        messages += await execute_tool_calls(skills, response.choices[0].message.tool_calls or [])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ..code_mode import CodeMode
from ..events import EventCallback
from ..execute_tool import ModelTool
from ._sources import Source, execute_tool_of, is_skill_context, prompt_of, tools_of

__all__ = [
    "anthropic_tool",
    "anthropic_tools",
    "execute_tool_call",
    "execute_tool_calls",
    "openai_responses_tool",
    "openai_responses_tools",
    "openai_tool",
    "openai_tools",
    "strict_compatible",
]

Provider = Literal["openai_chat", "openai_responses", "anthropic"]


def openai_tool(
    cm: Source | ModelTool, *, strict: bool = True, include_declarations: bool = False
) -> dict[str, Any]:
    """The tool for OpenAI Chat Completions' ``tools``:
    ``{"type": "function", "function": {name, description, parameters, strict}}``.

    ``strict`` asks for OpenAI's strict mode (arguments that always match the schema), which
    it applies only when the schema meets strict mode's rules (:func:`strict_compatible`):
    otherwise ``strict`` is false in the definition, since OpenAI refuses the request."""
    tool, description = _tool_and_description(cm, include_declarations)
    parameters = _schema(tool)
    function: dict[str, Any] = {
        "name": tool.name,
        "description": description,
        "parameters": parameters,
        "strict": strict and strict_compatible(parameters),
    }
    return {"type": "function", "function": function}


def openai_responses_tool(
    cm: Source | ModelTool, *, strict: bool = True, include_declarations: bool = False
) -> dict[str, Any]:
    """The tool for the OpenAI Responses API's ``tools``:
    ``{"type": "function", name, description, parameters, strict}`` (``strict`` as in
    :func:`openai_tool`)."""
    tool, description = _tool_and_description(cm, include_declarations)
    parameters = _schema(tool)
    return {
        "type": "function",
        "name": tool.name,
        "description": description,
        "parameters": parameters,
        "strict": strict and strict_compatible(parameters),
    }


_STRICT_UNSUPPORTED = frozenset(
    {
        "allOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
        "patternProperties", "unevaluatedProperties", "unevaluatedItems", "propertyNames",
        "prefixItems", "contains", "default",
    }
)  # fmt: skip
"""Keywords strict mode does not take (conservatively: those OpenAI has not documented)."""


def strict_compatible(schema: Any, *, root: bool = True) -> bool:
    """Whether ``schema`` meets OpenAI's strict-mode rules: the root is an object; every object
    lists all its properties in ``required`` and has ``additionalProperties: false``; no
    ``anyOf`` at the root; none of the keywords strict mode does not take (``default``,
    ``oneOf``, ``allOf``, ``prefixItems``...). A tool whose input has optional parameters is
    therefore not strict (strict mode spells "optional" as a nullable required property)."""
    if isinstance(schema, list):
        return all(strict_compatible(item, root=False) for item in schema)
    if not isinstance(schema, Mapping):
        return True
    if root and (schema.get("type") != "object" or "anyOf" in schema):
        return False
    if _STRICT_UNSUPPORTED & schema.keys():
        return False
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(
            properties
        ):
            return False
    nested = [v for k, v in schema.items() if k in ("properties", "$defs", "definitions")]
    children = [item for group in nested if isinstance(group, Mapping) for item in group.values()]
    children += [schema[k] for k in ("items", "anyOf", "additionalProperties") if k in schema]
    return all(strict_compatible(child, root=False) for child in children)


def anthropic_tool(cm: Source | ModelTool, *, include_declarations: bool = False) -> dict[str, Any]:
    """The tool for the Anthropic Messages API's ``tools``: ``{name, description, input_schema}``."""
    tool, description = _tool_and_description(cm, include_declarations)
    return {"name": tool.name, "description": description, "input_schema": _schema(tool)}


async def execute_tool_call(
    cm: Source, call: Any, *, on_event: EventCallback | None = None
) -> dict[str, Any]:
    """Run one tool call of the model and return the tool-result message for its provider.

    ``call`` is an SDK object or a dict of one of these shapes:

    - OpenAI Chat Completions ``message.tool_calls[i]`` (``id``, ``function.name``,
      ``function.arguments`` as a JSON string) -> ``{"role": "tool", "tool_call_id", "content"}``
    - OpenAI Responses ``function_call`` output item (``call_id``, ``name``, ``arguments``)
      -> ``{"type": "function_call_output", "call_id", "output"}``
    - Anthropic ``tool_use`` content block (``id``, ``name``, ``input``)
      -> ``{"type": "tool_result", "tool_use_id", "content", "is_error"}``: a content
      **block**, not a message; the API wants every block answering one assistant turn in one
      user message, which :func:`execute_tool_calls` builds (use it for every provider to get
      the messages to append).

    The content is the tool's JSON output as text (``{"success": ..., "result"/"error": ...,
    "logs": [...]}``). The call id becomes the execution's ``tool_call_id`` (in events).
    ``cm`` is a code mode or a skill context: any tool the context offers now runs (the
    management tools, a skill as a direct tool). Arguments that are not a JSON object, or a
    tool name the code mode (or context) does not have, give an
    error result for the model; a ``call`` of none of these shapes raises ``TypeError``.
    """
    parsed = _parse_call(call)
    if parsed.error is not None:
        output = _invalid_arguments(parsed.error)
    else:
        output = await _run(cm, parsed, on_event)
    return _result_message(parsed, output)


async def execute_tool_calls(
    cm: Source, calls: Sequence[Any], *, on_event: EventCallback | None = None
) -> list[dict[str, Any]]:
    """Run the tool calls of one model turn (concurrently) and return the messages to append
    to the conversation, the same way for every provider: one ``tool`` message per call
    (OpenAI Chat Completions), one ``function_call_output`` item per call (OpenAI Responses),
    or one ``user`` message holding every ``tool_result`` block (Anthropic)::

        messages += await execute_tool_calls(cm, response.choices[0].message.tool_calls or [])
        messages += [response_message, *await execute_tool_calls(cm, tool_use_blocks)]  # Anthropic
    """
    results: list[dict[str, Any]] = [{} for _ in calls]

    async def one(index: int, call: Any) -> None:
        results[index] = await execute_tool_call(cm, call, on_event=on_event)

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(one, index, call)
    blocks = [result for result in results if result.get("type") == "tool_result"]
    if not blocks:
        return results
    others = [result for result in results if result.get("type") != "tool_result"]
    if others:
        raise TypeError("execute_tool_calls: one turn's calls come from one provider")
    return [{"role": "user", "content": blocks}]


@dataclass(frozen=True)
class _Call:
    """A provider tool call, normalised."""

    provider: Provider
    call_id: str
    name: str
    arguments: dict[str, Any] | None
    error: str | None = None


def openai_tools(
    source: Source, *, strict: bool = True, include_declarations: bool = False
) -> list[dict[str, Any]]:
    """:func:`openai_tool` for every tool ``source`` offers now (``cm.model_tools``, or a skill
    context's ``tools``); ``include_declarations`` applies to ``execute_typescript``."""
    return [
        openai_tool(tool, strict=strict)
        if index
        else openai_tool(source, strict=strict, include_declarations=include_declarations)
        for index, tool in enumerate(tools_of(source))
    ]


def openai_responses_tools(
    source: Source, *, strict: bool = True, include_declarations: bool = False
) -> list[dict[str, Any]]:
    """:func:`openai_responses_tool` for every tool ``source`` offers now (see :func:`openai_tools`)."""
    return [
        openai_responses_tool(tool, strict=strict)
        if index
        else openai_responses_tool(source, strict=strict, include_declarations=include_declarations)
        for index, tool in enumerate(tools_of(source))
    ]


def anthropic_tools(source: Source, *, include_declarations: bool = False) -> list[dict[str, Any]]:
    """:func:`anthropic_tool` for every tool ``source`` offers now (see :func:`openai_tools`)."""
    return [
        anthropic_tool(tool) if index else anthropic_tool(source, include_declarations=include_declarations)
        for index, tool in enumerate(tools_of(source))
    ]


def _tool_and_description(source: Source | ModelTool, include_declarations: bool) -> tuple[ModelTool, str]:
    if isinstance(source, CodeMode) or is_skill_context(source):
        tool = execute_tool_of(source)
        return tool, prompt_of(source) if include_declarations else tool.description
    if include_declarations:
        raise ValueError("include_declarations needs the CodeMode, not one of its model tools")
    return source, source.description


def _schema(tool: ModelTool) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(tool.input_schema))  # a deep, plain-dict copy
    return schema


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for an SDK object; ``None`` when missing."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _parse_call(call: Any) -> _Call:
    kind = _field(call, "type")
    if kind == "tool_use":
        return _with_arguments("anthropic", _field(call, "id"), _field(call, "name"), _field(call, "input"))
    if kind == "function_call":
        return _with_arguments(
            "openai_responses", _field(call, "call_id"), _field(call, "name"), _field(call, "arguments")
        )
    function = _field(call, "function")
    if function is not None:
        return _with_arguments(
            "openai_chat", _field(call, "id"), _field(function, "name"), _field(function, "arguments")
        )
    raise TypeError(
        "not a tool call: expected an OpenAI chat tool call, a Responses function_call item or "
        f"an Anthropic tool_use block, got {type(call).__name__}"
    )


def _with_arguments(provider: Provider, call_id: Any, name: Any, arguments: Any) -> _Call:
    if not isinstance(call_id, str) or not call_id:
        raise TypeError(f"the {provider} tool call has no id")
    if not isinstance(name, str):
        raise TypeError(f"the {provider} tool call has no tool name")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError as e:
            return _Call(provider, call_id, name, None, f"{name}: the arguments are not valid JSON: {e}")
    if not isinstance(arguments, Mapping):
        return _Call(provider, call_id, name, None, f"{name}: the arguments must be a JSON object")
    return _Call(provider, call_id, name, dict(arguments))


async def _run(cm: Source, call: _Call, on_event: EventCallback | None) -> dict[str, Any]:
    tools = {tool.name: tool for tool in tools_of(cm)}
    tool = tools.get(call.name)
    if tool is None:
        return _invalid_arguments(f"there is no tool {call.name!r}; the tools are: {', '.join(tools)}")
    assert call.arguments is not None
    return await tool.call(call.arguments, tool_call_id=call.call_id, on_event=on_event)


def _invalid_arguments(message: str) -> dict[str, Any]:
    """The output for a call that could not run (same shape as a failed execution)."""
    error = {"kind": "invalid_args", "name": "InvalidArgumentsError", "message": message}
    return {"success": False, "error": error, "logs": []}


def _result_message(call: _Call, output: dict[str, Any]) -> dict[str, Any]:
    content = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
    if call.provider == "openai_chat":
        return {"role": "tool", "tool_call_id": call.call_id, "content": content}
    if call.provider == "openai_responses":
        return {"type": "function_call_output", "call_id": call.call_id, "output": content}
    return {
        "type": "tool_result",
        "tool_use_id": call.call_id,
        "content": content,
        "is_error": output.get("success") is not True,
    }
