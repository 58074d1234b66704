"""``codemode mcp serve`` and ``codemode mcp proxy``: their parsers, and serving a module's tools
or the tools of other MCP servers as one ``execute_typescript`` MCP tool."""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from ._cli_arguments import mebibytes, port, seconds
from ._cli_run import load_tools
from .cli_errors import CliError, ExitCode, describe, one_line
from .code_mode import create_code_mode


def _mcp_module() -> Any:
    try:
        from .integrations import mcp
    except ImportError as e:
        raise CliError(
            f"codemode mcp needs the mcp extra: pip install 'codemode[mcp]' ({e})", ExitCode.ENVIRONMENT
        ) from None
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
            await mcp.serve(
                cm, name=args.name or "codemode", skills_store=args.skills_store, **_serving_options(args)
            )
        finally:
            await cm.aclose()

    _announce(args)
    freeze_startup_objects(args.transport)
    try:
        anyio.run(run)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return 0


def freeze_startup_objects(transport: str) -> None:
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
    if args.config and (args.upstream or command):
        raise CliError("codemode mcp proxy: give upstream servers with --config or as commands, not both")
    if args.config:
        servers: dict[str, Any] = _servers_config(mcp, args.config)
    elif args.upstream or command:
        servers = _upstreams(mcp, args.upstream, command)
    else:
        raise CliError("codemode mcp proxy: give an upstream server (-- COMMAND, --upstream or --config)")
    for name in servers:
        try:
            mcp.check_upstream_name(name)
        except ValueError as e:
            raise CliError(f"codemode mcp proxy: {e}") from None
    if args.list:
        return _run_proxy(mcp, servers, functools.partial(_list_functions, mcp, servers))
    _announce(args)
    options = {**_serving_options(args), **_code_mode_options(args)}
    freeze_startup_objects(args.transport)
    serve = functools.partial(mcp.serve_proxy, servers, name=args.name or "codemode-proxy", **options)
    return _run_proxy(mcp, servers, serve)


_NAMED = re.compile(r"([^\s=/:'\"]+)=(.*)", re.DOTALL)
"""``NAME=COMMAND``: a name before the first ``=``, in a word with no space, slash or colon
(so that a URL's query, ``http://h/mcp?a=b``, is not a name)."""


def _upstreams(mcp: Any, upstreams: Sequence[str], command: Sequence[str]) -> dict[str, Any]:
    """The servers of ``--upstream [NAME=]COMMAND`` and ``-- COMMAND`` by name: the given
    one, else one derived from the command or URL (``mcp-server-time``: ``time``)."""
    servers: dict[str, Any] = {}
    for text in [*upstreams, *([command] if command else [])]:
        named = _NAMED.fullmatch(text.strip()) if isinstance(text, str) else None
        try:
            spec = mcp.server_spec(named.group(2) if named else text)
        except ValueError as e:  # an empty command, or unbalanced quotes
            raise CliError(f"codemode mcp proxy: --upstream: {e}") from None
        name = named.group(1) if named else mcp.default_name(spec)
        if named and name in servers:
            raise CliError(f"codemode mcp proxy: two upstreams are named {name!r}")
        taken, n = name, 2
        while taken in servers:
            taken, n = f"{name}_{n}", n + 1
        servers[taken] = spec
    return servers


async def _list_functions(mcp: Any, servers: dict[str, Any]) -> None:
    """Print the function each upstream tool becomes, with its description's first line."""
    async with mcp.McpProxy.connect(servers) as proxy:
        functions = [(f"external_{tool.name}", tool.description) for tool in proxy.tools]
    width = max((len(name) for name, _ in functions), default=0)
    for name, description in functions:
        summary = one_line((description or "").strip().split("\n\n")[0])
        summary = summary if len(summary) <= 100 else summary[:99] + "…"
        print(f"{name:{width}}  {summary}".rstrip())


def _run_proxy(mcp: Any, servers: dict[str, Any], main: Callable[[], Awaitable[None]]) -> int:
    """Run ``main`` (serving or listing); an upstream that cannot be reached at first is one
    line and exit 6."""
    try:
        anyio.run(main)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except mcp.McpConnectError as e:
        raise CliError(f"codemode mcp proxy: {e}", ExitCode.ENVIRONMENT) from None
    except Exception as e:  # a task group's failure around an upstream
        message, code = describe(e)
        if code != ExitCode.ENVIRONMENT:
            raise
        urls = ", ".join(spec for spec in servers.values() if isinstance(spec, str))
        upstream = f" to MCP server {urls}" if urls else ""
        reason = message.removeprefix("cannot connect: ")
        raise CliError(
            f"codemode mcp proxy: cannot connect{upstream}: {reason} (is it running?)", code
        ) from e
    return 0


def _servers_config(mcp: Any, path: str) -> Any:
    """The upstream servers of a ``--config`` file, or a :class:`CliError` saying what is wrong."""
    try:
        return mcp.load_servers_config(path)
    except FileNotFoundError:
        raise CliError(f"codemode mcp proxy: no such config file: {path}", ExitCode.ENVIRONMENT) from None
    except json.JSONDecodeError as e:
        raise CliError(
            f"codemode mcp proxy: {path} is not JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    except ValueError as e:
        raise CliError(f"codemode mcp proxy: {e}") from None


def add_mcp_commands(commands: Any) -> None:
    mcp = commands.add_parser("mcp", help="serve execute_typescript over MCP, or code mode over MCP servers")
    actions = mcp.add_subparsers(dest="mcp_command", required=True)
    serve = actions.add_parser("serve", help="serve a module's tools as one execute_typescript MCP tool")
    serve.add_argument("--tools", required=True, help="module (dotted name or .py file) holding the tools")
    serve.add_argument(
        "--skills-store",
        metavar="URL",
        help="also serve the skill library of this store (sqlite:///skills.db, file:skills, "
        "postgresql://...): the management tools and the skills as tools",
    )
    serve.set_defaults(handler=_mcp_serve)
    proxy = actions.add_parser(
        "proxy",
        help="serve one execute_typescript MCP tool over the tools of other MCP servers",
        usage="%(prog)s [options] [--list] [--upstream [NAME=]COMMAND]... [--config FILE] "
        "[-- COMMAND [ARGS ...]]",
    )
    proxy.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="[NAME=]COMMAND",
        help="an upstream server: a command line (shell-quoted) or an http(s) URL, named NAME (its "
        "functions: external_NAME_TOOL; default: from the program or host, mcp-server-time: time); "
        "repeat for several",
    )
    proxy.add_argument(
        "--config", help='JSON file {"mcpServers": {NAME: {"command", "args", "env"} or {"url"}}}'
    )
    proxy.add_argument(
        "--list", action="store_true", help="print the functions the upstream tools become, and exit"
    )
    proxy.add_argument("command", nargs=argparse.REMAINDER, help="after --: one upstream server command")
    proxy.set_defaults(handler=_mcp_proxy)
    for action in (serve, proxy):
        action.add_argument("--name", help="the server name this MCP server reports")
        action.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
        action.add_argument("--host", default="127.0.0.1", help="streamable HTTP host (default 127.0.0.1)")
        action.add_argument("--port", type=port, default=8000, help="streamable HTTP port (default 8000)")
        action.add_argument("--path", default="/mcp", help="streamable HTTP path (default /mcp)")
        action.add_argument(
            "--timeout", type=seconds, default=30.0, help="seconds per execution (default 30)"
        )
        action.add_argument(
            "--memory-mb", type=mebibytes, default=128, help="heap limit in MiB (default 128)"
        )
        action.add_argument("--compact", action="store_true", help="compact prompt, get_tool_declarations")
