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
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ._cli_arguments import MAX_MEMORY_MB, MAX_TIMEOUT, mebibytes, seconds
from ._cli_doctor import EXTRAS, doctor_command, engine_versions, version
from ._cli_mcp import add_mcp_commands
from ._cli_mcp import freeze_startup_objects as _freeze_startup_objects  # noqa: F401 (benches/mcp_loop.py)
from ._cli_run import Timeline, load_tools, prompt_command, run_command
from .cli_errors import ExitCode, describe, one_line

__all__ = ["EXTRAS", "MAX_MEMORY_MB", "MAX_TIMEOUT", "Timeline", "load_tools", "main", "version"]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (and exit code ``USAGE``); its subparsers
    are of this class too."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: <message> (see <prog> --help)`` and exit with ``USAGE``."""
        self.exit(ExitCode.USAGE, f"{self.prog}: {one_line(message)} (see `{self.prog} --help`)\n")


class _VersionAction(argparse.Action):
    """``--version``: ``codemode <version>``, then Python's and the engines' versions."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(f"codemode {version()}")
        print(engine_versions())
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
    run.add_argument("--timeout", type=seconds, default=30.0, help="seconds (default 30)")
    run.add_argument(
        "--memory-mb", type=mebibytes, default=128, help="engine heap limit in MiB (default 128)"
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
    run.set_defaults(handler=run_command)
    prompt = commands.add_parser("prompt", help="print the system prompt for a module's tools")
    prompt.add_argument("--tools", required=True, help="module (dotted name or .py file) holding the tools")
    prompt.add_argument("--compact", action="store_true", help="names and one-line descriptions only")
    prompt.add_argument("--json", action="store_true", help="print prompt, token estimate and tool schemas")
    prompt.set_defaults(handler=prompt_command)
    doctor = commands.add_parser(
        "doctor", help="report what is installed, which engines run, and which OS confinement layers hold"
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(handler=doctor_command)
    add_mcp_commands(commands)
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
