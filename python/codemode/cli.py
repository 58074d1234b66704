"""The ``codemode`` command: run a program against a module's tools, or print the prompt.

    codemode run program.ts --tools package.module [--json] [--timeout S] [--memory-mb M]
    codemode prompt --tools package.module [--compact] [--json]
    codemode mcp serve --tools package.module [--transport stdio|streamable-http] [--port N]
    codemode mcp proxy [--name NAME] [--upstream COMMAND]... [--config FILE] [-- COMMAND ...]
    codemode skills list|show NAME|rm NAME|export DIR|import DIR --store URL
    codemode doctor [--json]
    codemode playground [--tools package.module] [--store URL] [--host H] [--port N]
    codemode runs list|show RUN_ID|replay RUN_ID --store URL

``--tools`` names an importable module (or a ``.py`` file). Its tools are its ``TOOLS``
sequence when it has one, otherwise every :class:`codemode.ToolBinding` at module level.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.util
import json
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from .code_mode import create_code_mode
from .events import Event
from .prompt import approximate_tokens
from .results import ExecutionResult
from .tools import ToolBinding


def load_tools(spec: str) -> list[ToolBinding]:
    """The tools of a module given by dotted name or file path."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).resolve()
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise SystemExit(f"codemode: cannot load {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        module = importlib.import_module(spec)
    listed = getattr(module, "TOOLS", None)
    if listed is not None:
        tools = list(listed)
    else:
        tools = [value for value in vars(module).values() if isinstance(value, ToolBinding)]
    if not all(isinstance(t, ToolBinding) for t in tools):
        raise SystemExit(f"codemode: {spec}.TOOLS must hold codemode tools")
    return tools


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


def _run(args: argparse.Namespace) -> int:
    code = Path(args.program).read_text(encoding="utf-8") if args.program != "-" else sys.stdin.read()
    tools = load_tools(args.tools) if args.tools else []
    limits: dict[str, Any] = {"timeout": args.timeout, "memory_limit_mb": args.memory_mb}
    try:
        driver = _driver_for(args)
    except ValueError as e:
        raise SystemExit(f"codemode run: {e}") from None
    cm = create_code_mode(tools, driver=driver, **limits)
    timeline = Timeline()
    if not args.json:
        print("timeline:")
    result = cm.execute_sync(code, tool_call_id="cli", on_event=None if args.json else timeline)
    if args.json:
        print(json.dumps(result.to_tool_output(), indent=2, ensure_ascii=False))
    else:
        _print_result(result)
    return 0 if result.success else 1


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


def _prompt(args: argparse.Namespace) -> int:
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


def _doctor(args: argparse.Namespace) -> int:
    """Which OS confinement layers hold for ``isolation="process"`` on this machine."""
    from .process import doctor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the problems are printed below
        report = anyio.run(doctor)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        landlock = f"{report['landlock']} (kernel ABI {report['landlock_abi']})"
        print('QuickJS worker processes (isolation="process"):')
        for name, held in [
            ("no_new_privs", report["no_new_privs"]),
            ("landlock", landlock),
            ("seccomp", report["seccomp"]),
            ("rlimits", report["rlimits"]),
            ("capabilities dropped", report["capabilities_dropped"]),
            ("a program runs", report["runs"]),
        ]:
            print(f"  {name:22} {'yes' if held is True else 'NO' if held is False else held}")
        for problem in report["problems"]:
            print(f"warning: {problem}", file=sys.stderr)
    return 0 if report["runs"] and not report["problems"] else 1


def _mcp_module() -> Any:
    try:
        from .integrations import mcp
    except ImportError as e:
        raise SystemExit(f"codemode mcp needs the mcp extra: pip install 'codemode[mcp]' ({e})") from None
    return mcp


def _serving_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"transport": args.transport, "host": args.host, "port": args.port, "path": args.path}


def _code_mode_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "timeout": args.timeout,
        "memory_limit_mb": args.memory_mb,
        "prompt": "compact" if args.compact else "full",
    }


def _announce(args: argparse.Namespace) -> None:
    if args.transport == "streamable-http":
        url = f"http://{args.host}:{args.port}{args.path}"
        print(f"codemode: MCP server at {url}", file=sys.stderr, flush=True)


def _mcp_serve(args: argparse.Namespace) -> int:
    mcp = _mcp_module()
    cm = create_code_mode(load_tools(args.tools), **_code_mode_options(args))

    async def run() -> None:
        try:
            await mcp.serve(cm, name=args.name or "codemode", **_serving_options(args))
        finally:
            await cm.aclose()

    _announce(args)
    _freeze_startup_objects(args.transport)
    try:
        anyio.run(run)
    except KeyboardInterrupt:
        return 130
    return 0


def _freeze_startup_objects(transport: str) -> None:
    """A server's modules, models and schemas live as long as the process: keep them out of
    the garbage collector's full passes, which stop the event loop for as long as they take
    (on a 2-core machine, a full pass over the MCP server's heap under 50 clients took 55-110
    ms with them, 22-35 ms without; ``benches/mcp_loop.py``)."""
    if transport == "streamable-http":  # what it imports to serve, frozen with the rest
        for module in ("uvicorn", "starlette.applications"):
            if importlib.util.find_spec(module.split(".")[0]) is not None:
                importlib.import_module(module)
    gc.collect()
    gc.freeze()


def _mcp_proxy(args: argparse.Namespace) -> int:
    mcp = _mcp_module()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    commands = [*args.upstream, *([command] if command else [])]
    if args.config and commands:
        raise SystemExit("codemode mcp proxy: give upstream servers with --config or as commands, not both")
    if args.config:
        servers: Any = mcp.load_servers_config(args.config)
    elif commands:
        servers = [mcp.server_spec(c) for c in commands]
    else:
        raise SystemExit("codemode mcp proxy: give an upstream server (-- COMMAND, --upstream or --config)")
    _announce(args)
    options = {**_serving_options(args), **_code_mode_options(args)}
    _freeze_startup_objects(args.transport)
    try:
        anyio.run(functools.partial(mcp.serve_proxy, servers, name=args.name or "codemode-proxy", **options))
    except KeyboardInterrupt:
        return 130
    except mcp.McpConnectError as e:
        raise SystemExit(f"codemode mcp proxy: {e}") from None
    return 0


def _add_mcp_commands(commands: Any) -> None:
    mcp = commands.add_parser("mcp", help="serve execute_typescript over MCP, or code mode over MCP servers")
    actions = mcp.add_subparsers(dest="mcp_command", required=True)
    serve = actions.add_parser("serve", help="serve a module's tools as one execute_typescript MCP tool")
    serve.add_argument("--tools", required=True, help="module (dotted name or .py file) holding the tools")
    serve.set_defaults(handler=_mcp_serve)
    proxy = actions.add_parser(
        "proxy",
        help="serve one execute_typescript MCP tool over the tools of other MCP servers",
        usage="%(prog)s [options] [--upstream COMMAND]... [--config FILE] [-- COMMAND [ARGS ...]]",
    )
    proxy.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="COMMAND",
        help="an upstream server: a command line (shell-quoted) or an http(s) URL; repeat for several",
    )
    proxy.add_argument(
        "--config", help='JSON file {"mcpServers": {NAME: {"command", "args", "env"} or {"url"}}}'
    )
    proxy.add_argument("command", nargs=argparse.REMAINDER, help="after --: one upstream server command")
    proxy.set_defaults(handler=_mcp_proxy)
    for action in (serve, proxy):
        action.add_argument("--name", help="the server name this MCP server reports")
        action.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
        action.add_argument("--host", default="127.0.0.1", help="streamable HTTP host (default 127.0.0.1)")
        action.add_argument("--port", type=int, default=8000, help="streamable HTTP port (default 8000)")
        action.add_argument("--path", default="/mcp", help="streamable HTTP path (default /mcp)")
        action.add_argument("--timeout", type=float, default=30.0, help="seconds per execution (default 30)")
        action.add_argument("--memory-mb", type=float, default=128, help="heap limit in MiB (default 128)")
        action.add_argument("--compact", action="store_true", help="compact prompt, get_tool_declarations")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codemode`` console script."""
    parser = argparse.ArgumentParser(prog="codemode", description="Code Mode: one execute_typescript tool.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a TypeScript program and print the result and a timeline")
    run.add_argument("program", help="the program file (- for standard input)")
    run.add_argument("--tools", help="module (dotted name or .py file) holding the tools")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    run.add_argument("--memory-mb", type=float, default=128, help="engine heap limit in MiB (default 128)")
    run.add_argument("--json", action="store_true", help="print the tool output as JSON, no timeline")
    run.add_argument(
        "--driver",
        choices=["quickjs", "quickjs-process", "v8", "cloudflare"],
        default="quickjs",
        help="the engine (default quickjs, in process)",
    )
    run.add_argument(
        "--url", help="--driver cloudflare: the Worker's URL (secret: $CODEMODE_CLOUDFLARE_SECRET)"
    )
    run.set_defaults(handler=_run)
    prompt = commands.add_parser("prompt", help="print the system prompt for a module's tools")
    prompt.add_argument("--tools", required=True, help="module (dotted name or .py file) holding the tools")
    prompt.add_argument("--compact", action="store_true", help="names and one-line descriptions only")
    prompt.add_argument("--json", action="store_true", help="print prompt, token estimate and tool schemas")
    prompt.set_defaults(handler=_prompt)
    doctor = commands.add_parser("doctor", help="report which OS confinement layers hold on this machine")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(handler=_doctor)
    _add_mcp_commands(commands)
    from .approvals.cli import add_runs_commands
    from .bench.cli import add_bench_command
    from .cloudflare.cli import add_cloudflare_commands
    from .playground.cli import add_playground_command
    from .skills.cli import add_skills_commands

    add_bench_command(commands)
    add_cloudflare_commands(commands)
    add_playground_command(commands)
    add_runs_commands(commands)
    add_skills_commands(commands)
    args = parser.parse_args(argv)
    if argv is None and hasattr(signal, "SIGPIPE"):
        # Run as the program: `codemode ... | head` ends quietly. Called from Python (argv
        # given), the host's own SIGPIPE handling stays as it is: with the default action, a
        # write to a worker's closed pipe would kill the host.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
