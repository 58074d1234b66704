"""MCP that survives its upstreams: ``codemode mcp proxy`` keeps serving while an upstream goes
away, reconnects it (restarts its command) with backoff, lists its tools again when it is back
and tells the client; upstream progress reaches the client; upstream names and ``--list``;
``codemode mcp serve`` over stdio ends on SIGINT.

Real processes throughout: the proxy under test, a streamable HTTP upstream
(mcp_servers/http_server.py) killed and restarted on the same port, and the stdio fixture
server (mcp_servers/fixture_server.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

pytest.importorskip("mcp")

import mcp_types as types
from mcp import ClientSession, StdioServerParameters, stdio_client

from codemode.integrations.mcp import McpProxy, check_upstream_name, default_name, server_spec

from .test_mcp import CHECKOUT_ENV, FIXTURE_SERVER, ROOT, _free_port, _wait_for_port, codemode_cli, output

pytestmark = pytest.mark.anyio

HTTP_SERVER = Path(__file__).resolve().parent / "mcp_servers" / "http_server.py"
FIXTURE = f"{sys.executable} {FIXTURE_SERVER}"
BOUND = 15.0  # seconds: each test's bound


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def http_upstream(port: int, *extra: str) -> AsyncIterator[anyio.abc.Process]:
    """The HTTP fixture server on ``port``, until killed (or the block ends)."""
    command = [sys.executable, str(HTTP_SERVER), str(port), *extra]
    process = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _wait_for_port(port, process)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        await process.aclose()


@asynccontextmanager
async def client(
    server: StdioServerParameters, notes: list[str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized client of ``server``; the methods of the notifications it gets go to ``notes``."""

    async def handle(message: Any) -> None:
        if notes is not None and isinstance(message, types.ToolListChangedNotification):
            notes.append(message.method)

    async with (
        stdio_client(server) as (read_stream, write_stream),
        ClientSession(read_stream, write_stream, message_handler=handle) as session,
    ):
        await session.initialize()
        yield session


async def run(session: ClientSession, code: str, **options: Any) -> dict[str, Any]:
    result = await session.call_tool("execute_typescript", {"typescriptCode": code}, **options)
    return output(result)


async def description(session: ClientSession) -> str:
    (tool,) = (await session.list_tools()).tools
    return tool.description or ""


async def test_http_upstream_killed_and_restarted() -> None:
    """Killed: its calls fail clearly, the stdio upstream still answers, the proxy lives on.
    Restarted on the same port (with one more tool): calls succeed again, the client gets
    tools/list_changed and the new tool is in the prompt."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    proxy = codemode_cli("mcp", "proxy", "--upstream", f"web={url}", "--upstream", f"fx={FIXTURE} fx")
    notes: list[str] = []
    with anyio.fail_after(BOUND):
        async with http_upstream(port) as upstream, client(proxy, notes) as session:
            assert (await run(session, "return await external_web_ping({})"))["result"] == "pong"
            assert "external_web_extra" not in await description(session)
            upstream.kill()
            await upstream.wait()

            down = await run(session, "return await external_web_ping({})")
            assert down["success"] is False and down["error"]["name"] == "ToolError"
            assert down["error"]["message"].startswith("upstream 'web' is unavailable: ")
            assert down["error"]["message"].endswith("; retrying")
            fx = await run(session, "return (await external_fx_get_stats({ values: [1, 2] })).total")
            assert fx["result"] == 3

            async with http_upstream(port, "--extra"):
                while not notes:  # the proxy reconnects (backoff 0.5 s, 1 s, ...) and lists again
                    await anyio.sleep(0.05)
                assert notes == ["notifications/tools/list_changed"]
                assert "declare function external_web_extra(" in await description(session)
                back = await run(
                    session, "return [await external_web_ping({}), await external_web_extra({})]"
                )
                assert back["result"] == ["pong", "extra"]


async def test_stdio_upstream_that_exits_is_restarted() -> None:
    proxy = codemode_cli("mcp", "proxy", "--upstream", f"fx={FIXTURE} fx", "--upstream", f"other={FIXTURE}")
    with anyio.fail_after(BOUND):
        async with client(proxy) as session:
            crashed = await run(session, "return await external_fx_crash({})")
            assert crashed["error"]["message"].startswith("upstream 'fx' is unavailable: ")
            assert (await run(session, "return await external_other_greet({ name: 'o' })"))["result"] == (
                "Hello, o!"
            )
            while True:  # restarted after 0.5 s
                again = await run(session, "return await external_fx_greet({ name: 'x' })")
                if again["success"]:
                    break
                assert "upstream 'fx' is unavailable" in again["error"]["message"]
                await anyio.sleep(0.1)
            assert again["result"] == "Hello, x!"


async def test_upstream_progress_reaches_the_client() -> None:
    port = _free_port()
    proxy = codemode_cli("mcp", "proxy", "--upstream", f"http://127.0.0.1:{port}/mcp")
    received: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        received.append((value, total, message))

    with anyio.fail_after(BOUND):
        async with http_upstream(port), client(proxy) as session:
            done = await run(session, "return await external_count({ n: 3 })", progress_callback=progress)
            assert done["result"] == "counted to 3"
    assert received == [
        (1.0, None, "external_count: 1/3 step 1"),
        (2.0, None, "external_count: 2/3 step 2"),
        (3.0, None, "external_count: 3/3 step 3"),
    ]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **CHECKOUT_ENV}
    command = [sys.executable, "-m", "codemode.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BOUND)


def test_names_and_list() -> None:
    listed = cli("mcp", "proxy", "--list", "--upstream", f"fx={FIXTURE}", "--upstream", FIXTURE)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "external_fx_get_stats" in lines[0] and "Structured statistics of a list of numbers" in lines[0]
    names = [line.split()[0] for line in lines]
    assert len(names) == 14 and "external_fixture_greet" in names and "external_fx_crash" in names

    bad = cli("mcp", "proxy", "--list", "--upstream", f"my-fx={FIXTURE}")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "upstream name 'my-fx' is not an identifier" in bad.stderr

    assert default_name(server_spec("mcp-server-time")) == "time"
    assert default_name(server_spec(f"{sys.executable} -m mcp_server_time")) == "time"
    assert default_name(server_spec("npx -y @modelcontextprotocol/server-everything")) == "everything"
    assert default_name(server_spec("node x/server-everything/dist/index.js stdio")) == "everything"
    assert default_name(server_spec("https://mcp.deepwiki.com/mcp")) == "deepwiki"
    assert default_name(server_spec("http://127.0.0.1:8000/mcp")) == "local"
    with pytest.raises(ValueError, match="not an identifier"):
        check_upstream_name("2fa")


def test_config_keys_must_be_identifiers(tmp_path: Path) -> None:
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {"my time": {"command": "mcp-server-time"}}}), "utf-8")
    bad = cli("mcp", "proxy", "--list", "--config", str(config))
    assert bad.returncode == 2 and "upstream name 'my time' is not an identifier" in bad.stderr


async def test_library_names_from_a_sequence() -> None:
    fixture = StdioServerParameters(command=sys.executable, args=[str(FIXTURE_SERVER), "self-reported"])
    with anyio.fail_after(BOUND):
        async with McpProxy.connect([fixture, fixture]) as proxy:
            assert [u.name for u in proxy.upstreams] == ["fixture", "fixture_2"]
            assert "fixture_2_greet" in [t.name for t in proxy.tools]
        with pytest.raises(ValueError, match="not an identifier"):
            async with McpProxy.connect({"a-b": fixture}):
                pass


def test_mcp_serve_stdio_exits_on_sigint() -> None:
    env = {**os.environ, **CHECKOUT_ENV}
    command = [sys.executable, "-m", "codemode.cli", "mcp", "serve", "--tools", "tests/cli_tools.py"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        hello = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        }
        process.stdin.write((json.dumps(hello) + "\n").encode())
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 1  # serving, stdin left open
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 130
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
