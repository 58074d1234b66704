"""``codemode run`` and ``codemode prompt``: the tools of a ``--tools`` module, a program run
against them with its timeline of events, and the system prompt they make."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from .cli_errors import CliError, ExitCode, exit_code_for_error_kind, one_line
from .code_mode import create_code_mode
from .events import Event
from .prompt import approximate_tokens
from .results import ExecutionResult
from .tools import ToolBinding

_TOOLS_HINT = "--tools takes a dotted module name or a .py file"


def load_tools(spec: str) -> list[ToolBinding]:
    """The tools of a module given by dotted name or file path.

    Raises :class:`~.cli_errors.CliError` (``ENVIRONMENT``) when there is no such module or
    file, when importing it fails, or when its ``TOOLS`` holds something else than tools."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise CliError(f"no such file: {spec} ({_TOOLS_HINT})", ExitCode.ENVIRONMENT)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise CliError(f"cannot load {spec} as a module ({_TOOLS_HINT})", ExitCode.ENVIRONMENT)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            raise _import_failed(spec, e) from e
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(spec)
        except ModuleNotFoundError as e:
            if e.name and (spec == e.name or spec.startswith(e.name + ".")):
                raise CliError(f"no module named {e.name!r} ({_TOOLS_HINT})", ExitCode.ENVIRONMENT) from e
            raise _import_failed(spec, e) from e
        except Exception as e:
            raise _import_failed(spec, e) from e
    listed = getattr(module, "TOOLS", None)
    if listed is not None:
        tools = list(listed)
    else:
        tools = [value for value in vars(module).values() if isinstance(value, ToolBinding)]
    if not all(isinstance(t, ToolBinding) for t in tools):
        raise CliError(f"{spec}.TOOLS must hold codemode tools", ExitCode.ENVIRONMENT)
    return tools


def _import_failed(spec: str, error: Exception) -> CliError:
    where = f" (line {error.lineno})" if isinstance(error, SyntaxError) and error.lineno else ""
    return CliError(
        f"the tools module {spec} failed to import: {type(error).__name__}: {one_line(str(error))}{where}",
        ExitCode.ENVIRONMENT,
    )


class Timeline:
    """Prints each event as a line, relative to the start of the execution."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event.to_dict())
        value = event.value
        if self.start is None:
            self.start = value["timestamp"]
        at = value["timestamp"] - self.start
        name = event.name.removeprefix("code_mode:")
        print(f"{at:9.2f} ms  {_describe(name, value)}", flush=True)


def _describe(name: str, value: dict[str, Any]) -> str:
    if name == "execution_started":
        return "started"
    if name == "console":
        return f"console  {value['text']}"
    if name == "external_call":
        return f"call     {value['function']}({_short(value['args'])})"
    if name == "external_result":
        return f"result   {value['function']} -> {_short(value['result'])}  ({value['duration_ms']:.2f} ms)"
    if name == "external_error":
        return f"error    {value['function']}: {value['error']}  ({value['duration_ms']:.2f} ms)"
    outcome = "ok" if value.get("success") else f"failed ({value.get('error', {}).get('kind', '?')})"
    return f"finished {outcome} in {value['duration_ms']:.2f} ms"


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _print_result(result: ExecutionResult) -> None:
    if result.success:
        print("result:")
        print(json.dumps(result.result, indent=2, ensure_ascii=False))
        return
    error = result.error
    assert error is not None
    where = f" at line {error.line}, column {error.column}" if error.line else ""
    print(f"{error.kind} error{where}: {error.name}: {error.message}")
    if error.frame:
        print(error.frame)


def _read_program(name: str) -> str:
    """The program's text: the file ``name``, or standard input for ``-``."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"no such program file: {name}", ExitCode.ENVIRONMENT) from None
    except IsADirectoryError:
        raise CliError(f"{name} is a directory, not a program file", ExitCode.ENVIRONMENT) from None
    except UnicodeDecodeError as e:
        raise CliError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start})", ExitCode.USAGE) from None


def run_command(args: argparse.Namespace) -> int:
    code = _read_program(args.program)
    tools = load_tools(args.tools) if args.tools else []
    limits: dict[str, Any] = {"timeout": args.timeout, "memory_limit_mb": args.memory_mb}
    try:
        driver = _driver_for(args)
    except ValueError as e:
        raise CliError(f"codemode run: {e}", ExitCode.USAGE) from None
    cm = create_code_mode(tools, driver=driver, **limits)
    timeline = Timeline()
    if not args.json:
        print("timeline:")
    result = cm.execute_sync(code, tool_call_id="cli", on_event=None if args.json else timeline)
    if args.json:
        print(json.dumps(result.to_tool_output(), indent=2, ensure_ascii=False))
    else:
        _print_result(result)
    kind = result.error.kind if result.error is not None else None
    if kind == "cancelled":  # nothing but Ctrl-C cancels the command's one execution
        raise CliError("interrupted", ExitCode.INTERRUPTED)
    return exit_code_for_error_kind(kind)


def _driver_for(args: argparse.Namespace) -> Any:
    """The engine ``--driver`` names (``None``: the default, QuickJS in process)."""
    import os

    if args.driver == "quickjs-process":
        from .quickjs import QuickJSDriver

        return QuickJSDriver(isolation="process")
    if args.driver == "v8":
        from .v8 import V8Driver

        return V8Driver()
    if args.driver == "cloudflare":
        from .cloudflare import CloudflareDriver

        url = args.url or os.environ.get("CODEMODE_CLOUDFLARE_URL")
        if not url:
            raise ValueError(
                "--driver cloudflare needs --url or $CODEMODE_CLOUDFLARE_URL "
                "(and the secret in $CODEMODE_CLOUDFLARE_SECRET)"
            )
        return CloudflareDriver(url)
    return None


def prompt_command(args: argparse.Namespace) -> int:
    tools = load_tools(args.tools)
    cm = create_code_mode(tools, prompt="compact" if args.compact else "full")
    if args.json:
        payload = {
            "system_prompt": cm.system_prompt,
            "approximate_tokens": approximate_tokens(cm.system_prompt),
            "tools": [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in cm.model_tools
            ],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(cm.system_prompt)
    return 0
