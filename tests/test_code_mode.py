"""The Code Mode layer: system prompt, the execute_typescript tool, streaming, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import codemode

from .conftest import make_tools

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent


def test_system_prompt_is_stable_and_complete() -> None:
    first = codemode.create_code_mode(make_tools()).system_prompt
    second = codemode.create_code_mode(make_tools()).system_prompt
    assert first == second
    for expected in (
        "execute_typescript",
        "Promise.all",
        "external_echo",
        "external_add",
        "declare function",
    ):
        assert expected in first
    assert "30 s" in first and "128 MiB" in first


def test_compact_prompt_lists_names_and_offers_discovery() -> None:
    cm = codemode.create_code_mode(make_tools(), prompt="compact")
    assert "- external_echo: Return the input" in cm.system_prompt
    assert "declare function" not in cm.system_prompt
    assert [t.name for t in cm.model_tools] == ["execute_typescript", "get_tool_declarations"]


async def test_discovery_tool_returns_declarations() -> None:
    cm = codemode.create_code_mode(make_tools(), prompt="compact")
    discovery = cm.model_tools[1]
    found = await discovery.call({"names": ["external_add"]})
    assert found["success"] and "external_add" in found["declarations"]
    assert "external_echo" not in found["declarations"]
    missing = await discovery.call({"names": ["external_nope"]})
    assert not missing["success"] and "external_echo" in missing["available"]


async def test_execute_typescript_tool(cm: codemode.CodeMode) -> None:
    tool = cm.tool
    assert tool.name == "execute_typescript"
    assert tool.input_schema["required"] == ["typescriptCode"]
    events: list[codemode.Event] = []
    output = await tool.call(
        {"typescriptCode": "return (await external_add({ a: 2, b: 3 })).sum"},
        tool_call_id="t1",
        on_event=events.append,
    )
    assert output == {"success": True, "result": 5, "logs": []}
    assert {e.value["toolCallId"] for e in events} == {"t1"}
    bad = await tool.call({"code": "return 1"})
    assert bad["success"] is False and bad["error"]["kind"] == "invalid_args"


async def test_stream_yields_live_events_then_the_result(cm: codemode.CodeMode) -> None:
    items: list[Any] = [
        item async for item in cm.stream("console.log('x')\nreturn await external_echo({ i: 4 })")
    ]
    names = [i.name for i in items[:-1]]
    assert names[0] == "code_mode:execution_started" and names[-1] == "code_mode:execution_finished"
    assert "code_mode:external_result" in names
    assert isinstance(items[-1], codemode.ExecutionResult) and items[-1].result == {"i": 4}


def test_execute_sync() -> None:
    cm = codemode.create_code_mode(make_tools())
    assert cm.execute_sync("return [1, 2].length").result == 2


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codemode.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        timeout=60,
    )


def test_cli_run_prints_timeline_and_result(tmp_path: Path) -> None:
    program = tmp_path / "p.ts"
    program.write_text(
        "const r: { stock: number } = await external_lookup({ item: 'apple' })\nconsole.log('ok')\nreturn r.stock * 2"
    )
    out = _cli("run", str(program), "--tools", "tests/cli_tools.py")
    assert out.returncode == 0, out.stderr
    assert "call     external_lookup" in out.stdout and "console  ok" in out.stdout
    assert out.stdout.rstrip().endswith("6")


def test_cli_run_json_and_failure(tmp_path: Path) -> None:
    out = _cli(
        "run",
        "-",
        "--tools",
        "tests/cli_tools.py",
        "--json",
        stdin="return await external_lookup({ item: 'kiwi' })",
    )
    assert out.returncode == 1
    payload = json.loads(out.stdout)
    assert payload["error"]["kind"] == "tool" and "kiwi" in payload["error"]["message"]
    out = _cli("run", "-", stdin="const x: number = ;")
    assert out.returncode == 3 and "syntax error at line 1" in out.stdout and "^" in out.stdout  # SYNTAX


def test_cli_prompt() -> None:
    out = _cli("prompt", "--tools", "tests/cli_tools.py", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert "external_lookup" in payload["system_prompt"]
    assert payload["approximate_tokens"] > 0
    assert payload["tools"][0]["name"] == "execute_typescript"
