"""A program that computes never holds the host's event loop for longer than its slice,
before or after its first tool call."""

from __future__ import annotations

import anyio
import pytest

import codemode

from ..conftest import make_tools

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "code",
    [
        "while (true) {}",
        "await external_echo({ i: 1 })\nwhile (true) {}",
        "for (let i = 0; i < 3; i++) await external_echo({ i })\nwhile (true) {}",
        "await new Promise(r => setTimeout(r, 5))\nwhile (true) {}",
    ],
    ids=["first-step", "after-a-call", "after-three-calls", "after-a-timer"],
)
async def test_the_loop_keeps_running_while_a_program_computes(code: str) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=codemode.QuickJSDriver(), timeout=1.0)
    ticks = 0
    result: codemode.ExecutionResult | None = None

    async def run() -> None:
        nonlocal result
        result = await cm.execute(code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        while result is None:
            await anyio.sleep(0.01)
            ticks += 1
    assert result.error is not None and result.error.kind == "timeout"
    # a blocked loop would tick once or twice in the second the program runs
    assert ticks >= 20, ticks
    assert (await cm.execute("return 1")).result == 1
