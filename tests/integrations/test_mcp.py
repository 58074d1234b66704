"""MCP: execute_typescript served to real MCP clients, and code mode over real MCP servers.

Everything runs as real processes over stdio or localhost HTTP, offline: ``codemode mcp serve``
and ``codemode mcp proxy`` as the servers under test, the SDK's client talking to them, and as
upstreams a fixture server (tests/integrations/mcp_servers), ``mcp-server-time`` (PyPI) and
``@modelcontextprotocol/server-everything`` (npm, installed once into the git-ignored
``.cache/node-mcp``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp")

import mcp_types as types
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import codemode
from codemode.integrations.mcp import (
    DECLARATIONS_URI,
    McpConnectError,
    McpProxy,
    build_server,
    load_servers_config,
    server_spec,
    tool_result_value,
    tools_from_session,
)

from ..conftest import CODEMODE_PATH, make_tools

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SERVER = Path(__file__).resolve().parent / "mcp_servers" / "fixture_server.py"
NODE_DIR = ROOT / ".cache" / "node-mcp"  # not .cache/node: other tests' `npm install --no-save` prune it
EVERYTHING_VERSION = "2026.8.31"
EVERYTHING_PACKAGE = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything"
STEP = 30.0  # seconds: the bound on every step that talks to a process
CHECKOUT_ENV = {"PYTHONPATH": CODEMODE_PATH}  # the codemode this run imports (see tests/conftest.py)
BOTH = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


@pytest.fixture
def anyio_backend() -> str:
    """Processes and HTTP on asyncio; the tests marked BOTH also run on trio."""
    return "asyncio"


def fixture_server(name: str = "fixture") -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[str(FIXTURE_SERVER), name])


def codemode_cli(*args: str) -> StdioServerParameters:
    """`codemode ...` run by this interpreter, from the repository root, importing this
    checkout's package (the SDK passes a child only a few environment variables)."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "codemode.cli", *args], cwd=ROOT, env=CHECKOUT_ENV
    )


def time_server() -> list[str]:
    return [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]


@pytest.fixture(scope="session")
def everything_server() -> list[str]:
    """The command running the pinned server-everything over stdio (installed when needed)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node are not installed: the server-everything tests need them")
    package = EVERYTHING_PACKAGE / "package.json"
    if (
        not package.exists()
        or json.loads(package.read_text(encoding="utf-8"))["version"] != EVERYTHING_VERSION
    ):
        subprocess.run(
            [
                *(npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)),
                f"@modelcontextprotocol/server-everything@{EVERYTHING_VERSION}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return [node, str(EVERYTHING_PACKAGE / "dist" / "index.js"), "stdio"]


@asynccontextmanager
async def connected(server: StdioServerParameters) -> AsyncIterator[ClientSession]:
    """An initialized client session with ``server`` running as a subprocess."""
    async with (
        stdio_client(server) as (read_stream, write_stream),
        ClientSession(read_stream, write_stream) as session,
    ):
        with anyio.fail_after(STEP):
            await session.initialize()
        yield session


async def run_program(session: ClientSession | Client, code: str) -> types.CallToolResult:
    """Call execute_typescript, checking that text and structured content agree."""
    with anyio.fail_after(STEP):
        result = await session.call_tool("execute_typescript", {"typescriptCode": code})
    assert isinstance(result, types.CallToolResult)
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    assert json.loads(content.text) == result.structured_content
    assert result.is_error is (result.structured_content["success"] is False)
    return result


def output(result: types.CallToolResult) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def only_tool(session: ClientSession) -> types.Tool:
    with anyio.fail_after(STEP):
        listed = await session.list_tools()
    (tool,) = listed.tools
    assert tool.name == "execute_typescript"
    assert tool.input_schema["required"] == ["typescriptCode"]
    return tool


# --- serving a code mode --------------------------------------------------------------------


@BOTH
async def test_build_server_in_process() -> None:
    cm = codemode.create_code_mode(make_tools(), timeout=10.0)
    async with Client(build_server(cm, name="inventory")) as client:
        with anyio.fail_after(STEP):
            listed = await client.list_tools()
            resources = await client.list_resources()
            declarations = await client.read_resource(DECLARATIONS_URI)
        (tool,) = listed.tools
        assert (tool.name, tool.description) == ("execute_typescript", cm.system_prompt)
        assert tool.input_schema == dict(cm.tool.input_schema)
        assert [r.uri for r in resources.resources] == [DECLARATIONS_URI]
        (text,) = declarations.contents
        assert isinstance(text, types.TextResourceContents)
        assert text.text == cm.declarations and "declare function external_echo" in text.text

        ok = await run_program(
            client,
            """
            const [a, b] = await Promise.all([external_echo({ i: 1 }), external_add({ a: 2, b: 3 })]);
            console.log("sum", b.sum);
            return a.i + b.sum;
            """,
        )
        assert not ok.is_error
        assert output(ok) == {"success": True, "result": 6, "logs": ["sum 5"]}

        failed = await run_program(client, "return await external_fail({ sku: 'A1' })")
        assert failed.is_error
        error = output(failed)["error"]
        assert (error["kind"], error["name"]) == ("tool", "ToolError")
        assert "inventory service unavailable for A1" in error["message"]

        with anyio.fail_after(STEP):
            wrong = await client.call_tool("execute_typescript", {"code": "return 1"})
        assert wrong.is_error

        with pytest.raises(MCPError, match="Unknown tool"), anyio.fail_after(STEP):
            await client.call_tool("nope", {})
    await cm.aclose()


async def test_build_server_compact_prompt_offers_declarations_tool() -> None:
    cm = codemode.create_code_mode(make_tools(), prompt="compact")
    async with Client(build_server(cm)) as client:
        with anyio.fail_after(STEP):
            listed = await client.list_tools()
            found = await client.call_tool("get_tool_declarations", {"names": ["external_add"]})
        assert [t.name for t in listed.tools] == ["execute_typescript", "get_tool_declarations"]
        assert listed.tools[0].description == cm.system_prompt
        assert not found.is_error
        assert "declare function external_add" in found.structured_content["declarations"]
    await cm.aclose()


async def test_cli_serve_stdio() -> None:
    with anyio.fail_after(90):
        async with connected(codemode_cli("mcp", "serve", "--tools", "tests/cli_tools.py")) as session:
            assert session.server_info is not None and session.server_info.name == "codemode"
            tool = await only_tool(session)
            assert tool.description is not None and "declare function external_lookup" in tool.description
            await _check_lookup_programs(session)


async def test_cli_serve_streamable_http() -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    command = [sys.executable, "-m", "codemode.cli", "mcp", "serve", "--tools", "tests/cli_tools.py"]
    command += ["--transport", "streamable-http", "--port", str(port), "--name", "stock"]
    with anyio.fail_after(90):
        env = {**os.environ, **CHECKOUT_ENV}
        async with await anyio.open_process(command, cwd=ROOT, env=env) as process:
            try:
                await _wait_for_port(port, process)
                async with (
                    streamable_http_client(url) as (read_stream, write_stream),
                    ClientSession(read_stream, write_stream) as session,
                ):
                    with anyio.fail_after(STEP):
                        init = await session.initialize()
                    assert init.server_info.name == "stock"
                    await only_tool(session)
                    await _check_lookup_programs(session)
                # the same server as an upstream over streamable HTTP: a code mode over a code mode
                async with McpProxy.connect({"stock": url}) as proxy:
                    assert [t.name for t in proxy.tools] == ["execute_typescript"]
                    cm = proxy.code_mode(timeout=20.0)
                    inner = "return (await external_lookup({ item: 'apple' })).stock"
                    result = await cm.execute(
                        f"return await external_execute_typescript({{ typescriptCode: {inner!r} }})"
                    )
                    assert (result.success, result.result) == (
                        True,
                        {"success": True, "result": 3, "logs": []},
                    )
                    await cm.aclose()
            finally:
                process.terminate()
                with anyio.fail_after(STEP):
                    await process.wait()


async def _check_lookup_programs(session: ClientSession) -> None:
    ok = await run_program(
        session,
        """
        const [apple, pear] = await Promise.all([
          external_lookup({ item: "apple" }),
          external_lookup({ item: "pear" }),
        ]);
        let missing: string = "";
        try { await external_lookup({ item: "plum" }); } catch (e) { missing = `${e.name}: ${e.message}`; }
        return { inStock: [apple, pear].filter((s) => s.stock > 0).map((s) => s.item), missing };
        """,
    )
    assert output(ok)["result"] == {"inStock": ["apple"], "missing": "ToolError: 'no such item: plum'"}
    failed = await run_program(session, "const x: number = ;")
    assert failed.is_error and output(failed)["error"]["kind"] == "syntax"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_for_port(port: int, process: anyio.abc.Process) -> None:
    with anyio.fail_after(STEP):
        while True:
            assert process.returncode is None, "the server exited"
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.1)
            else:
                await stream.aclose()
                return


# --- code mode over MCP servers: the library ------------------------------------------------


@BOTH
async def test_proxy_tools_from_a_paginated_server() -> None:
    with anyio.fail_after(60):
        async with McpProxy.connect([fixture_server()]) as proxy:
            (upstream,) = proxy.upstreams
            assert upstream.name == "fixture" and len(upstream.tools) == 8  # listed 2 per page
            names = {t.name: t.original_name for t in proxy.tools}
            assert "broken" not in names and len(names) == 7  # its schema does not compile: skipped
            assert names["get_stats"] == "get-stats" and names["json_text"] == "json.text"
            cm = proxy.code_mode(timeout=20.0)
            assert "declare function external_get_stats(input: GetStatsInput): Promise<GetStatsOutput>" in (
                cm.declarations
            )
            result = await cm.execute(
                """
                const [stats, parsed, text, halved] = await Promise.all([
                  external_get_stats({ values: [1, 2, 3.5] }),
                  external_json_text({ value: { a: [1, null] } }),
                  external_greet({ name: "Ann" }),
                  external_even({ n: 8 }),
                ]);
                const errors: string[] = [];
                for (const call of [() => external_fail({ reason: "closed" }), () => external_even({ n: 3 })]) {
                  try { await call(); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
                }
                return { stats, parsed, text, halved, errors };
                """
            )
            assert result.success, result.error
            assert result.result == {
                "stats": {"count": 3, "total": 6.5},
                "parsed": {"a": [1, None]},
                "text": "Hello, Ann!",
                "halved": 4,
                "errors": ["ToolError: refused: closed", "InvalidArgumentsError: even: 3 is odd"],
            }
            await cm.aclose()


@BOTH
async def test_proxy_upstream_dies_mid_call() -> None:
    """A stdio upstream whose process exits fails its calls clearly, the others keep working,
    and the proxy restarts it (tests/integrations/test_mcp_resilience.py has more)."""
    with anyio.fail_after(60):
        servers = {"a": fixture_server("a"), "b": fixture_server("b")}
        async with McpProxy.connect(servers, backoff=(0.1, 0.5)) as proxy:
            cm = proxy.code_mode(timeout=20.0)
            crashed = await cm.execute(
                """
                const slow = external_b_sleep({ ms: 50 });
                try { await external_a_crash({}); return "no error"; }
                catch (e) { return { name: e.name, message: e.message, other: await slow }; }
                """
            )
            assert crashed.success, crashed.error
            assert crashed.result["name"] == "ToolError"
            assert crashed.result["message"].startswith("upstream 'a' is unavailable: ")
            assert crashed.result["message"].endswith("; retrying")
            assert crashed.result["other"] == "slept 50 ms"

            still = await cm.execute("return await external_b_greet({ name: 'B' })")
            assert (still.success, still.result) == (True, "Hello, B!")

            while not proxy.upstreams[0].connected:  # restarted
                await anyio.sleep(0.05)
            later = await cm.execute("return await external_a_greet({ name: 'x' })")
            assert (later.success, later.result) == (True, "Hello, x!")
            await cm.aclose()


async def test_proxy_connect_errors_are_clear() -> None:
    with anyio.fail_after(60):
        with pytest.raises(McpConnectError, match="cannot connect to MCP server /nonexistent/server"):
            async with McpProxy.connect([StdioServerParameters(command="/nonexistent/server")]):
                pass
        # the first server starts, the second exits at once: both are cleaned up, one clear error
        exits = StdioServerParameters(command=sys.executable, args=["-c", "pass"])
        with pytest.raises(McpConnectError, match="Connection closed"):
            async with McpProxy.connect([fixture_server(), exits]):
                pass


async def test_tools_from_an_existing_session_and_config(tmp_path: Path) -> None:
    config = tmp_path / "servers.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "fx": {"command": sys.executable, "args": [str(FIXTURE_SERVER)]},
                    "remote": {"url": "http://127.0.0.1:9/mcp"},
                }
            }
        ),
        encoding="utf-8",
    )
    servers = load_servers_config(config)
    assert servers["remote"] == "http://127.0.0.1:9/mcp"
    assert servers["fx"] == StdioServerParameters(command=sys.executable, args=[str(FIXTURE_SERVER)])
    assert server_spec("https://example.invalid/mcp") == "https://example.invalid/mcp"
    assert server_spec("mcp-server-time --local-timezone 'Europe/Paris'") == StdioServerParameters(
        command="mcp-server-time", args=["--local-timezone", "Europe/Paris"]
    )

    with anyio.fail_after(60):
        fx = servers["fx"]
        assert isinstance(fx, StdioServerParameters)
        async with connected(fx) as session:
            tools = await tools_from_session(session, prefix="fx")
            assert tools[0].name == "fx_get_stats" and tools[0].original_name == "fx_get-stats"
            cm = codemode.create_code_mode(tools)
            result = await cm.execute("return (await external_fx_get_stats({ values: [2, 2] })).total")
            assert (result.success, result.result) == (True, 4)
            await cm.aclose()


def test_tool_result_values() -> None:
    text = types.TextContent(type="text", text="plain")
    image = types.ImageContent(type="image", data="AAAA", mime_type="image/png")
    assert tool_result_value(types.CallToolResult(content=[text], structured_content={"a": 1})) == {"a": 1}
    assert tool_result_value(types.CallToolResult(content=[text])) == "plain"
    assert tool_result_value(types.CallToolResult(content=[text.model_copy(update={"text": "[1, 2]"})])) == [
        1,
        2,
    ]
    assert tool_result_value(types.CallToolResult(content=[text.model_copy(update={"text": "NaN"})])) == "NaN"
    assert tool_result_value(types.CallToolResult(content=[])) is None
    assert tool_result_value(types.CallToolResult(content=[text, image])) == [
        {"type": "text", "text": "plain"},
        {"type": "image", "data": "AAAA", "mimeType": "image/png"},
    ]


# --- code mode over MCP servers: `codemode mcp proxy` over real upstreams -------------------


async def test_cli_proxy_over_mcp_server_time() -> None:
    pytest.importorskip("mcp_server_time")
    with anyio.fail_after(90):
        async with connected(
            codemode_cli("mcp", "proxy", "--name", "clock", "--", *time_server())
        ) as session:
            assert session.server_info is not None and session.server_info.name == "clock"
            tool = await only_tool(session)
            assert tool.description is not None
            assert "declare function external_get_current_time(" in tool.description
            assert "declare function external_convert_time(" in tool.description
            result = await run_program(
                session,
                """
                const [now, converted] = await Promise.all([
                  external_get_current_time({ timezone: "Asia/Tokyo" }),
                  external_convert_time({ source_timezone: "UTC", time: "12:00", target_timezone: "Asia/Tokyo" }),
                ]);
                let invalid = "";
                try { await external_get_current_time({ timezone: "Mars/Olympus" }); }
                catch (e) { invalid = `${e.name}: ${e.message}`; }
                return { now, target: converted.target, difference: converted.time_difference, invalid };
                """,
            )
            value = output(result)["result"]
            assert value["now"]["timezone"] == "Asia/Tokyo" and value["now"]["datetime"].endswith("+09:00")
            assert value["now"]["is_dst"] is False and value["now"]["day_of_week"].endswith("day")
            assert value["target"]["timezone"] == "Asia/Tokyo"
            assert value["target"]["datetime"].endswith("T21:00:00+09:00")
            assert value["difference"] == "+9.0h"
            assert value["invalid"].startswith("ToolError: ") and "Mars/Olympus" in value["invalid"]


async def test_cli_proxy_over_server_everything(everything_server: list[str]) -> None:
    with anyio.fail_after(90):
        async with connected(codemode_cli("mcp", "proxy", "--", *everything_server)) as session:
            tool = await only_tool(session)
            assert tool.description is not None
            for name in ("echo", "get_sum", "get_structured_content", "trigger_long_running_operation"):
                assert f"declare function external_{name}(" in tool.description
            result = await run_program(
                session,
                """
                const [echo, sum, weather, long] = await Promise.all([
                  external_echo({ message: "hi" }),
                  external_get_sum({ a: 2, b: 3 }),
                  external_get_structured_content({ location: "Chicago" }),
                  external_trigger_long_running_operation({ duration: 0.2, steps: 2 }),
                ]);
                let failure = "";
                try { await external_get_resource_reference({ resourceId: -1 }); }
                catch (e) { failure = e.name; }
                return { echo, sum, weather, long, failure };
                """,
            )
            assert output(result)["result"] == {
                "echo": "Echo: hi",
                "sum": "The sum of 2 and 3 is 5.",
                "weather": {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82},
                "long": "Long running operation completed. Duration: 0.2 seconds, Steps: 2.",
                "failure": "ToolError",
            }
            uncaught = await run_program(
                session, "return await external_get_resource_reference({ resourceId: -1 })"
            )
            assert uncaught.is_error
            error = output(uncaught)["error"]
            assert error["name"] == "ToolError" and "Invalid resourceId: -1" in error["message"]


async def test_cli_proxy_upstream_dies_and_the_proxy_stays_usable() -> None:
    fixture = f"{sys.executable} {FIXTURE_SERVER}"
    proxy = codemode_cli("mcp", "proxy", "--upstream", f"a={fixture} a", "--upstream", f"b={fixture} b")
    with anyio.fail_after(90):
        async with connected(proxy) as session:
            crashed = await run_program(
                session, "try { await external_a_crash({}); } catch (e) { return e.name; }"
            )
            assert output(crashed)["result"] == "ToolError"

            uncaught = await run_program(session, "return await external_a_crash({})")
            assert uncaught.is_error
            error = output(uncaught)["error"]
            assert error["kind"] == "tool" and "upstream 'a' is unavailable" in error["message"]

            still = await run_program(
                session, "return (await external_b_get_stats({ values: [4, 5] })).total"
            )
            assert output(still) == {"success": True, "result": 9, "logs": []}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_paused_program_asks_the_clients_user_by_elicitation(mode: str) -> None:
    """Each call a program pauses on is one elicitation form to the client (``legacy``: sent
    within the call; ``auto``, the stateless protocol: an ``input_required`` answer carrying the
    resume token); the answers resume the program. A client that cannot elicit gets the paused
    output."""
    from tests.approvals import shop

    shop.REFUNDED.clear()
    cm = codemode.create_code_mode(shop.TOOLS, approval_key=shop.KEY)
    asked: list[str] = []

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        if "o-2" in params.message:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="accept", content={"approve": False, "reason": "too large"})

    async with Client(build_server(cm), elicitation_callback=elicit, mode=mode) as client:
        with anyio.fail_after(STEP):
            done = await client.call_tool("execute_typescript", {"typescriptCode": shop.REFUND_ALL})
    assert len(asked) == 2 and all("external_refund" in message for message in asked)
    assert output(done)["result"] == [
        "refunded o-1",
        "refunded o-2",
        "failed: external_refund was rejected by a person: too large",
    ]
    assert shop.REFUNDED == ["o-1", "o-2"]

    async with Client(build_server(cm), mode=mode) as client:  # no elicitation: the model reads that it waits
        with anyio.fail_after(STEP):
            waiting = await client.call_tool("execute_typescript", {"typescriptCode": shop.REFUND_ALL})
    assert output(waiting)["paused"] is True and [p["call_id"] for p in output(waiting)["pending"]] == [5, 6]
    await cm.aclose()


# --- a skill library ------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_served_skill_context_lists_a_registered_skill_and_tells_the_client(mode: str) -> None:
    """A client's turn 1 calls ``register_skill``: the server sends tools/list_changed, and the
    list (turn 2) has the skill as a tool, which the client calls; the store records the run."""
    from .skill_turns import REGISTRATION, SKILL_ARGUMENTS, executions, make_context

    context, store = await make_context()
    notes: list[str] = []

    async def handle(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            notes.append(message.method)

    async with Client(build_server(context), message_handler=handle, mode=mode) as client:
        with anyio.fail_after(STEP):
            before = [tool.name for tool in (await client.list_tools()).tools]
            saved = await client.call_tool("register_skill", REGISTRATION)
            while not notes:
                await anyio.sleep(0.01)
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            called = await client.call_tool("two_units", SKILL_ARGUMENTS)
            declarations = await client.read_resource(DECLARATIONS_URI)
    assert before[0] == "execute_typescript" and "register_skill" in before and "two_units" not in before
    assert not saved.is_error, saved
    assert notes == ["notifications/tools/list_changed"]
    assert "two_units" in listed and "skill_two_units" in (listed["execute_typescript"].description or "")
    assert output(called) == {"success": True, "result": 8, "logs": []}
    (text,) = declarations.contents
    assert isinstance(text, types.TextResourceContents) and "skill_two_units" in text.text
    assert await executions(store) == 1


async def test_cli_serve_with_a_skills_store(tmp_path: Path) -> None:
    """``codemode mcp serve --skills-store URL``: the management tools are listed; a skill
    registered through them is stored, listed, and runs as a tool of its own."""
    from codemode.skills import SQLiteSkillStore

    url = f"sqlite:///{tmp_path / 'skills.db'}"
    skill = {
        "name": "double",
        "description": "Twice a number.",
        "code": "return input.n * 2",
        "input_schema": {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]},
        "output_schema": {"type": "number"},
    }
    serve = codemode_cli("mcp", "serve", "--tools", "tests/cli_tools.py", "--skills-store", url)
    with anyio.fail_after(90):
        async with connected(serve) as session:
            names = [tool.name for tool in (await session.list_tools()).tools]
            assert {"execute_typescript", "search_skills", "register_skill", "update_skill"} <= set(names)
            failed = await session.call_tool("register_skill", {"name": "double"})
            assert failed.is_error and output(failed)["error"]["message"].startswith("register_skill: ")
            assert not (await session.call_tool("register_skill", skill)).is_error
            assert "double" in [tool.name for tool in (await session.list_tools()).tools]
            assert output(await session.call_tool("double", {"n": 21}))["result"] == 42
    stored = await SQLiteSkillStore(tmp_path / "skills.db").get("double")
    assert stored is not None and stored.stats.executions == 1
