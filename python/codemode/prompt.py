"""The system prompt: when to use execute_typescript, the rules, and the tool declarations."""

from __future__ import annotations

from collections.abc import Sequence

from .limits import Limits
from .tools import ToolBinding

TOOL_NAME = "execute_typescript"
DISCOVERY_TOOL_NAME = "get_tool_declarations"

_RULES = """\
You can run TypeScript with the `execute_typescript` tool. Use it whenever a task needs the \
functions below: write one short program that makes all the calls, loops, filters and does the \
arithmetic, and returns the answer, instead of calling tools one at a time.

Rules:
- The program is the body of an async function: use top-level `await` and `return` a JSON value; \
that value is what you get back. Bytes (`Uint8Array`, `ArrayBuffer`, `DataView`) cross as base64 \
strings, other typed arrays as arrays of numbers, in results and in tool arguments alike.
- Call a function as `await external_<name>({{ ... }})` with one object argument shaped as declared. \
Every call returns a Promise: await it.
- Run independent calls together with `await Promise.all([...])`.
- `console.log` output comes back with the result; keep it short.
- There is no network, file system, `require` or `import`: only standard JavaScript and the \
functions below.
- A failing call throws an Error named `ToolError` or `InvalidArgumentsError` with the reason; \
catch it to recover or let it fail and fix the program.
- Each run is fresh (nothing is kept between runs) and limited to {timeout} s and {memory} MiB."""


def _limits_line(limits: Limits) -> dict[str, str]:
    return {"timeout": f"{limits.timeout:g}", "memory": f"{limits.memory_limit_mb:g}"}


def system_prompt(declarations: str, limits: Limits) -> str:
    """The full prompt: rules and every tool's TypeScript declaration."""
    rules = _RULES.format(**_limits_line(limits))
    return f"{rules}\n\nAvailable functions:\n```typescript\n{declarations.strip()}\n```\n"


def compact_system_prompt(tools: Sequence[ToolBinding], limits: Limits) -> str:
    """The prompt for large tool sets: names and one-line descriptions only; the model asks
    for the declarations it needs with the discovery tool before writing the program."""
    rules = _RULES.format(**_limits_line(limits))
    lines = [f"- {tool.sandbox_name}: {_first_line(tool.description)}" for tool in tools]
    return (
        f"{rules}\n- Before using a function, get its exact TypeScript declaration with the "
        f"`{DISCOVERY_TOOL_NAME}` tool (pass the function names you need).\n\n"
        "Available functions:\n" + "\n".join(lines) + "\n"
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 160 else line[:157] + "..."


def approximate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters per token for English and code)."""
    return (len(text) + 3) // 4
