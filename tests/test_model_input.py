"""What models send: code in a markdown fence runs as the code inside, with the line numbers
of the text the model wrote; on every engine."""

from __future__ import annotations

import pytest

import codemode
from codemode.code_mode import unfence

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("sent", "runs"),
    [
        ("```ts\nreturn 1 + 1\n```", "\nreturn 1 + 1\n"),
        ("```typescript\nconst a: number = 2\nreturn a\n```\n", "\nconst a: number = 2\nreturn a\n"),
        ("\n```javascript\nreturn 3\n```", "\n\nreturn 3\n"),
        ("```\nreturn 4\n```", "\nreturn 4\n"),
        ("return 5", "return 5"),  # no fence: as it is
        ("```ts\nreturn 6", "```ts\nreturn 6"),  # an open fence is not a fence: the program's error
        ("const s = `a`; return s + '```'", "const s = `a`; return s + '```'"),
    ],
)
def test_unfence(sent: str, runs: str) -> None:
    assert unfence(sent) == runs


async def test_fenced_code_runs_as_the_code_inside(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode([], driver=driver)
    result = await cm.execute("```ts\nconst xs: number[] = [1, 2, 3]\nreturn xs.map((x) => x * 2)\n```")
    assert result.success and result.result == [2, 4, 6]


async def test_a_fenced_programs_error_points_at_the_models_line(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = codemode.create_code_mode([], driver=driver)
    thrown = await cm.execute("```ts\nconst a = 1\nthrow new Error('on line 3')\n```")
    assert thrown.error is not None and thrown.error.line == 3
    syntax = await cm.execute("```typescript\nconst a = 1\nreturn (\n```")
    assert syntax.error is not None and syntax.error.kind == "syntax" and syntax.error.line in (3, 4)
