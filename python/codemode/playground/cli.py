"""``codemode playground [--tools MODULE] [--store URL] [--host H] [--port 8765]``."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import threading
import webbrowser
from typing import Any, NoReturn

from ..cli_errors import CliError, ExitCode

DEFAULT_PORT = 8765


def add_playground_command(commands: Any) -> None:
    """Register ``codemode playground`` on the CLI's subcommands."""
    playground = commands.add_parser(
        "playground", help="a local web app: run programs on every engine, chat, manage skills"
    )
    playground.add_argument("--tools", default="codemode.demo", help="the tools' module (default: the demo)")
    playground.add_argument("--store", default="memory:", help="skill store URL (default memory:, not kept)")
    playground.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    playground.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    playground.add_argument(
        "--model", help="the chat's pydantic-ai model (default: from the environment, else the offline demo)"
    )
    playground.add_argument(
        "--token", help="the access token (default: a new one, required when --host is not loopback)"
    )
    playground.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    playground.set_defaults(handler=_playground)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _fail(message: str, code: ExitCode = ExitCode.ENVIRONMENT) -> NoReturn:
    raise CliError(f"codemode playground: {message}", code)


def _playground(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..cli import load_tools
        from ..skills.url import store_from_url
        from .app import BUNDLE, create_app
        from .chat import model_from_environment
    except ImportError as e:
        _fail(f"{e} (pip install 'codemode[playground]')")
    if not BUNDLE.is_file():
        _fail("the page is not built: run python3 python/codemode/playground/build_web.py")
    tools = load_tools(args.tools)  # its mistakes are CliError, one line
    try:
        store = store_from_url(args.store)
    except ValueError as e:
        _fail(str(e), ExitCode.USAGE)
    except ImportError as e:
        _fail(f"{e} (a PostgreSQL store needs pip install 'codemode[postgres]')")
    loopback = _is_loopback(args.host)
    token = args.token or (None if loopback else secrets.token_urlsafe(24))
    app = create_app(
        tools,
        store,
        store_url=args.store,
        token=token,
        loopback_only=loopback,
        model=model_from_environment(args.model),
    )
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"codemode playground: {url}", flush=True)
    if token and not args.token:
        print(f"  token: {token} (required on every request)", flush=True)
    if not args.no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
