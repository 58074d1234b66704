"""Raw OpenAI / Anthropic tool definitions and tool-call execution (no SDK needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

import codemode
from codemode.execute_tool import EXECUTE_DESCRIPTION, EXECUTE_INPUT_SCHEMA
from codemode.integrations.providers import (
    anthropic_tool,
    execute_tool_call,
    openai_responses_tool,
    openai_tool,
)

from ..conftest import make_tools

pytestmark = pytest.mark.anyio

PROGRAM = "console.log('adding')\nreturn (await external_add({ a: 2, b: 3 })).sum"
PARAMETERS = json.loads(json.dumps(EXECUTE_INPUT_SCHEMA))


@pytest.fixture
def cm() -> codemode.CodeMode:
    return codemode.create_code_mode(make_tools(), timeout=10.0)


def _typed(type_: Any, value: Any) -> Any:
    """``value`` validated against one of an SDK's request TypedDicts."""
    from pydantic import TypeAdapter

    return TypeAdapter(type_).validate_python(value)


# -- definitions -----------------------------------------------------------------------------


def test_openai_chat_tool(cm: codemode.CodeMode) -> None:
    assert openai_tool(cm) == {
        "type": "function",
        "function": {
            "name": "execute_typescript",
            "description": EXECUTE_DESCRIPTION,
            "parameters": PARAMETERS,
            "strict": True,
        },
    }
    assert PARAMETERS["additionalProperties"] is False and PARAMETERS["required"] == ["typescriptCode"]
    assert openai_tool(cm, strict=False)["function"]["strict"] is False
    assert openai_tool(cm, include_declarations=True)["function"]["description"] == cm.system_prompt


def test_openai_responses_tool(cm: codemode.CodeMode) -> None:
    assert openai_responses_tool(cm) == {
        "type": "function",
        "name": "execute_typescript",
        "description": EXECUTE_DESCRIPTION,
        "parameters": PARAMETERS,
        "strict": True,
    }


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
                "additionalProperties": False,
            },
            True,
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": []},
            False,
        ),  # open, optional
        (
            {
                "type": "object",
                "properties": {"a": {"type": "integer", "default": 1}},
                "required": ["a"],
                "additionalProperties": False,
            },
            False,
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "object", "properties": {}}},
                "required": ["a"],
                "additionalProperties": False,
            },
            False,
        ),  # nested open object
        (
            {
                "type": "object",
                "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
                "required": ["a"],
                "additionalProperties": False,
            },
            True,
        ),
        (
            {
                "type": "object",
                "properties": {"t": {"type": "array", "prefixItems": [{"type": "integer"}]}},
                "required": ["t"],
                "additionalProperties": False,
            },
            False,
        ),
        ({"type": "array"}, False),  # the root must be an object
    ],
)
def test_strict_only_on_schemas_that_meet_openais_rules(schema: dict[str, Any], strict: bool) -> None:
    from codemode.execute_tool import ModelTool
    from codemode.integrations.providers import strict_compatible

    async def call(arguments: Any, **_: Any) -> Any:
        return arguments

    tool = ModelTool("t", "A tool", schema, call)
    assert strict_compatible(schema) is strict
    assert openai_tool(tool)["function"]["strict"] is strict
    assert openai_responses_tool(tool)["strict"] is strict
    assert openai_tool(tool, strict=False)["function"]["strict"] is False


async def test_strict_on_the_skill_and_management_tools(cm: codemode.CodeMode) -> None:
    """Each tool of a skill context gets strict mode only when its schema allows it."""
    from codemode.integrations.providers import strict_compatible
    from codemode.skills import MemorySkillStore, Skill, with_skills

    store = MemorySkillStore()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    await store.save(
        Skill(name="double", description="Double a number", code="return input.n * 2", input_schema=schema)
    )
    await store.set_trust("double", "trusted")
    context = await with_skills(cm, store=store, messages=["double"])
    names = {tool.name: openai_tool(tool)["function"]["strict"] for tool in context.tools}
    assert {"execute_typescript", "register_skill", "double"} <= names.keys()
    assert names["execute_typescript"] is True
    for tool in context.tools:
        assert names[tool.name] is strict_compatible(tool.input_schema)
    assert names["double"] is False  # its object is open (no additionalProperties: false)


def test_anthropic_tool(cm: codemode.CodeMode) -> None:
    assert anthropic_tool(cm) == {
        "name": "execute_typescript",
        "description": EXECUTE_DESCRIPTION,
        "input_schema": PARAMETERS,
    }
    described = anthropic_tool(cm, include_declarations=True)["description"]
    assert "declare function external_add" in described


def test_definitions_are_copies(cm: codemode.CodeMode) -> None:
    tool = openai_tool(cm)
    tool["function"]["parameters"]["properties"]["extra"] = {}
    assert "extra" not in cm.tool.input_schema["properties"]


def test_compact_prompt_discovery_tool() -> None:
    cm = codemode.create_code_mode(make_tools(), prompt="compact")
    discovery = cm.model_tools[1]
    assert openai_tool(discovery)["function"]["name"] == "get_tool_declarations"
    assert anthropic_tool(discovery)["input_schema"]["required"] == ["names"]
    with pytest.raises(ValueError, match="CodeMode"):
        openai_responses_tool(discovery, include_declarations=True)


def test_definitions_match_the_sdk_types(cm: codemode.CodeMode) -> None:
    pytest.importorskip("openai")
    pytest.importorskip("anthropic")
    from anthropic.types import ToolParam
    from openai.types.chat import ChatCompletionFunctionToolParam
    from openai.types.responses import FunctionToolParam

    assert _typed(ChatCompletionFunctionToolParam, openai_tool(cm)) == openai_tool(cm)
    assert _typed(FunctionToolParam, openai_responses_tool(cm)) == openai_responses_tool(cm)
    assert _typed(ToolParam, anthropic_tool(cm)) == anthropic_tool(cm)


# -- executing calls (dicts) -------------------------------------------------------------------


def _output(content: str) -> dict[str, Any]:
    return json.loads(content)


OK = {"success": True, "result": 5, "logs": ["adding"]}


async def test_openai_chat_call(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "execute_typescript", "arguments": json.dumps({"typescriptCode": PROGRAM})},
    }
    message = await execute_tool_call(cm, call, on_event=events.append)
    assert message["role"] == "tool" and message["tool_call_id"] == "call_abc"
    assert set(message) == {"role", "tool_call_id", "content"}
    assert _output(message["content"]) == OK
    assert events and {e.value["toolCallId"] for e in events} == {"call_abc"}


async def test_openai_responses_call(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    item = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_xyz",
        "name": "execute_typescript",
        "arguments": json.dumps({"typescriptCode": PROGRAM}),
    }
    message = await execute_tool_call(cm, item, on_event=events.append)
    assert message == {"type": "function_call_output", "call_id": "call_xyz", "output": message["output"]}
    assert _output(message["output"]) == OK
    assert {e.value["toolCallId"] for e in events} == {"call_xyz"}


async def test_anthropic_call(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    block = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "execute_typescript",
        "input": {"typescriptCode": PROGRAM},
    }
    message = await execute_tool_call(cm, block, on_event=events.append)
    assert message == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": message["content"],
        "is_error": False,
    }
    assert _output(message["content"]) == OK
    assert {e.value["toolCallId"] for e in events} == {"toolu_1"}


async def test_one_turns_calls_become_the_messages_to_append(cm: codemode.CodeMode) -> None:
    """execute_tool_calls: the same call for every provider; Anthropic's tool_result blocks
    come back in one user message, in the order of the calls."""
    from codemode.integrations.providers import execute_tool_calls

    blocks = [
        {
            "type": "tool_use",
            "id": f"toolu_{n}",
            "name": "execute_typescript",
            "input": {"typescriptCode": f"return {n}"},
        }
        for n in range(3)
    ]
    (message,) = await execute_tool_calls(cm, blocks)
    assert message["role"] == "user" and [b["tool_use_id"] for b in message["content"]] == [
        "toolu_0",
        "toolu_1",
        "toolu_2",
    ]
    assert [_output(b["content"])["result"] for b in message["content"]] == [0, 1, 2]
    chat = [
        {
            "id": f"c{n}",
            "type": "function",
            "function": {
                "name": "execute_typescript",
                "arguments": json.dumps({"typescriptCode": f"return {n}"}),
            },
        }
        for n in range(2)
    ]
    messages = await execute_tool_calls(cm, chat)
    assert [(m["role"], m["tool_call_id"]) for m in messages] == [("tool", "c0"), ("tool", "c1")]
    assert await execute_tool_calls(cm, []) == []


async def test_failing_program_is_an_error_result(cm: codemode.CodeMode) -> None:
    block = {
        "type": "tool_use",
        "id": "toolu_2",
        "name": "execute_typescript",
        "input": {"typescriptCode": "await external_fail({ sku: 'X-1' })"},
    }
    message = await execute_tool_call(cm, block)
    assert message["is_error"] is True
    output = _output(message["content"])
    assert output["success"] is False and output["error"]["kind"] == "tool"
    assert "inventory service unavailable for X-1" in output["error"]["message"]

    chat = {
        "id": "c",
        "function": {"name": "execute_typescript", "arguments": '{"typescriptCode": "return ("}'},
    }
    assert _output((await execute_tool_call(cm, chat))["content"])["error"]["kind"] == "syntax"


@pytest.mark.parametrize("arguments", ['{"typescriptCode": "return 1"', "not json", "[1, 2]", '"return 1"'])
async def test_malformed_arguments_are_an_error_result(cm: codemode.CodeMode, arguments: str) -> None:
    chat = {
        "id": "call_bad",
        "type": "function",
        "function": {"name": "execute_typescript", "arguments": arguments},
    }
    message = await execute_tool_call(cm, chat)
    assert message["tool_call_id"] == "call_bad"
    output = _output(message["content"])
    assert output["success"] is False and output["error"]["kind"] == "invalid_args"
    assert output["error"]["name"] == "InvalidArgumentsError"

    item = {
        "type": "function_call",
        "call_id": "call_bad2",
        "name": "execute_typescript",
        "arguments": arguments,
    }
    assert _output((await execute_tool_call(cm, item))["output"])["success"] is False


async def test_wrong_arguments_and_unknown_tools_are_error_results(cm: codemode.CodeMode) -> None:
    block = {"type": "tool_use", "id": "t", "name": "execute_typescript", "input": {"code": "return 1"}}
    message = await execute_tool_call(cm, block)
    assert message["is_error"] and _output(message["content"])["error"]["kind"] == "invalid_args"

    block = {"type": "tool_use", "id": "t", "name": "execute_python", "input": {"typescriptCode": "return 1"}}
    output = _output((await execute_tool_call(cm, block))["content"])
    assert output["success"] is False and "execute_python" in output["error"]["message"]
    assert "execute_typescript" in output["error"]["message"]


async def test_not_a_tool_call_raises(cm: codemode.CodeMode) -> None:
    with pytest.raises(TypeError, match="not a tool call"):
        await execute_tool_call(cm, {"role": "assistant", "content": "hi"})
    with pytest.raises(TypeError, match="no id"):
        await execute_tool_call(cm, {"type": "tool_use", "name": "execute_typescript", "input": {}})


async def test_discovery_call_in_compact_mode() -> None:
    cm = codemode.create_code_mode(make_tools(), prompt="compact")
    item = {
        "type": "function_call",
        "call_id": "call_d",
        "name": "get_tool_declarations",
        "arguments": '{"names": ["external_echo"]}',
    }
    output = _output((await execute_tool_call(cm, item))["output"])
    assert output["success"] and "external_echo" in output["declarations"]


# -- executing calls (the SDKs' own objects) ---------------------------------------------------


async def test_openai_sdk_objects(cm: codemode.CodeMode) -> None:
    pytest.importorskip("openai")
    from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionToolMessageParam
    from openai.types.chat.chat_completion_message_function_tool_call import Function
    from openai.types.responses import ResponseFunctionToolCall
    from openai.types.responses.response_input_param import FunctionCallOutput

    arguments = json.dumps({"typescriptCode": PROGRAM})
    chat_call = ChatCompletionMessageFunctionToolCall(
        id="call_sdk", type="function", function=Function(name="execute_typescript", arguments=arguments)
    )
    message = await execute_tool_call(cm, chat_call)
    assert _typed(ChatCompletionToolMessageParam, message) == message
    assert message["tool_call_id"] == "call_sdk" and _output(message["content"]) == OK

    item = ResponseFunctionToolCall(
        type="function_call", id="fc_sdk", call_id="call_sdk2", name="execute_typescript", arguments=arguments
    )
    result = await execute_tool_call(cm, item)
    assert _typed(FunctionCallOutput, result) == result
    assert result["call_id"] == "call_sdk2" and _output(result["output"]) == OK

    broken = ResponseFunctionToolCall(
        type="function_call", call_id="call_sdk3", name="execute_typescript", arguments='{"typescriptCode": '
    )
    assert _output((await execute_tool_call(cm, broken))["output"])["error"]["kind"] == "invalid_args"


async def test_anthropic_sdk_objects(cm: codemode.CodeMode) -> None:
    pytest.importorskip("anthropic")
    from anthropic.types import ToolResultBlockParam, ToolUseBlock

    block = ToolUseBlock(
        type="tool_use", id="toolu_sdk", name="execute_typescript", input={"typescriptCode": PROGRAM}
    )
    result = await execute_tool_call(cm, block)
    assert _typed(ToolResultBlockParam, result) == result
    assert result["tool_use_id"] == "toolu_sdk" and result["is_error"] is False
    assert _output(result["content"]) == OK

    failing = ToolUseBlock(
        type="tool_use",
        id="toolu_f",
        name="execute_typescript",
        input={"typescriptCode": "throw new Error('no')"},
    )
    result = await execute_tool_call(cm, failing)
    assert result["is_error"] is True and _output(result["content"])["error"]["message"] == "no"


# -- no SDK imports ------------------------------------------------------------------------------


def test_providers_imports_no_sdk() -> None:
    code = (
        "import sys, codemode.integrations.providers\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'openai', 'anthropic', 'agents'})\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- a skill context -------------------------------------------------------------------------


async def test_a_skill_context_loop_registers_a_skill_then_calls_it_directly() -> None:
    """A raw OpenAI Chat Completions loop over a skill context (the model scripted): the tools
    and prompt are built again before each request; turn 1 registers a skill with the
    ``register_skill`` tool, turn 2 calls it as a tool of its own."""
    from codemode.integrations.providers import execute_tool_calls, openai_tools

    from .skill_turns import REGISTRATION, SKILL_ARGUMENTS, executions, make_context

    context, store = await make_context()
    offered: list[list[str]] = []
    prompts: list[str] = []
    turns = [("register_skill", REGISTRATION), ("two_units", SKILL_ARGUMENTS)]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "price two units of B-2"}]
    for index, (name, arguments) in enumerate(turns):
        tools = openai_tools(context)  # as the request would send them
        offered.append([tool["function"]["name"] for tool in tools])
        prompts.append(context.system_prompt)
        call = {"id": f"call_{index}", "type": "function"}
        call["function"] = {"name": name, "arguments": json.dumps(arguments)}
        messages.append({"role": "assistant", "tool_calls": [call]})
        messages += await execute_tool_calls(context, [call])
    outputs = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
    assert outputs[0]["success"] is True, outputs[0]
    assert outputs[1] == {"success": True, "result": 8, "logs": []}
    assert "register_skill" in offered[0] and "two_units" not in offered[0]
    assert "two_units" in offered[1]
    assert "skill_two_units" not in prompts[0] and "skill_two_units" in prompts[1]
    assert await executions(store) == 1


async def test_a_skill_contexts_definitions_for_each_provider() -> None:
    from codemode.integrations.providers import anthropic_tools, openai_responses_tools, openai_tools

    from .skill_turns import make_context

    context, _ = await make_context()
    names = [tool.name for tool in context.tools]
    assert names[0] == "execute_typescript" and "register_skill" in names
    assert [t["function"]["name"] for t in openai_tools(context)] == names
    assert [t["name"] for t in openai_responses_tools(context)] == names
    assert [t["name"] for t in anthropic_tools(context)] == names
    described = anthropic_tools(context, include_declarations=True)[0]["description"]
    assert described == context.system_prompt and "register_skill" in described
    assert openai_tool(context) == openai_tools(context)[0]
    cm = codemode.create_code_mode(make_tools())
    assert openai_tools(cm) == [openai_tool(cm)]


async def test_anthropic_calls_of_a_skill_context() -> None:
    """An Anthropic turn with a management tool: one user message with the tool_result block;
    an unknown tool names the context's tools."""
    from codemode.integrations.providers import execute_tool_calls

    from .skill_turns import make_context

    context, _ = await make_context()
    block = {"type": "tool_use", "id": "toolu_1", "name": "search_skills", "input": {"query": "price"}}
    unknown = {"type": "tool_use", "id": "toolu_2", "name": "two_units", "input": {}}
    [message] = await execute_tool_calls(context, [block, unknown])
    found, missing = message["content"]
    assert found["is_error"] is False and missing["is_error"] is True
    assert "register_skill" in json.loads(missing["content"])["error"]["message"]


async def test_register_skill_errors_name_the_direct_tool() -> None:
    """Called by the model as a tool, register_skill's errors say ``register_skill: ...``
    (a program's call says ``external_register_skill``: that is not what the model called)."""
    from codemode.integrations.providers import execute_tool_call

    from .skill_turns import REGISTRATION, make_context

    context, store = await make_context()
    cases = [{"name": "two_units"}, {**REGISTRATION, "description": ""}]
    for index, arguments in enumerate(cases):
        call = {"type": "function_call", "call_id": f"c{index}", "name": "register_skill"}
        message = await execute_tool_call(context, {**call, "arguments": json.dumps(arguments)})
        error = json.loads(message["output"])["error"]
        assert error["message"].startswith("register_skill: "), error
        assert "external_" not in error["message"]
    assert await store.get("two_units") is None
