"""How the ``codemode`` command fails: one line on standard error and an exit code.

Every command raises :class:`CliError` for a mistake it recognizes; :func:`describe` turns
the exceptions of the libraries underneath (a missing module or file, a SQLite or PostgreSQL
store that cannot be opened, an unreachable server, Ctrl-C) into the same one line and code.
``codemode.cli.main`` is the one place that catches them; ``codemode --debug ...`` prints the
traceback as well.

The exit codes (:class:`ExitCode`, documented in ``docs/cli.md``):

=====  ===========  ====================================================================
code   name         meaning
=====  ===========  ====================================================================
0      OK           success
1      FAILED       the program failed at run time (``runtime``, ``tool``, ``invalid_args``,
                    ``result``, ``output_limit``, ``cancelled``), or what the command looked
                    for is not there (no such skill or run), a replay differs, ``doctor``
                    found a problem
2      USAGE        bad arguments: argparse's own errors, a limit out of range, a malformed
                    store URL or MCP config
3      SYNTAX       the program does not parse
4      TIMEOUT      the program ran past ``--timeout``
5      MEMORY       the program ran past ``--memory-mb``
6      ENVIRONMENT  something outside the command line cannot be reached or loaded: a file,
                    a ``--tools`` module, a store, an MCP upstream, an engine, an extra
70     INTERNAL     an unexpected error in codemode itself (a bug: please report it)
130    INTERRUPTED  Ctrl-C
=====  ===========  ====================================================================
"""

from __future__ import annotations

import enum
import sqlite3
import sys

from .errors import CodemodeError

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # anyio's dependency there

__all__ = ["CliError", "ExitCode", "describe", "exit_code_for_error_kind", "one_line", "redact_url"]


class ExitCode(enum.IntEnum):
    """The exit codes of the ``codemode`` command (the table in this module's docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    SYNTAX = 3
    TIMEOUT = 4
    MEMORY = 5
    ENVIRONMENT = 6
    INTERNAL = 70
    INTERRUPTED = 130


class CliError(CodemodeError):
    """A mistake the command recognized: ``message`` is the one line to print (it says what
    to do), ``code`` the exit code. A message that does not start with ``codemode`` gets the
    ``codemode: `` prefix when printed."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_KIND_CODES = {
    "syntax": ExitCode.SYNTAX,
    "timeout": ExitCode.TIMEOUT,
    "memory": ExitCode.MEMORY,
}


def exit_code_for_error_kind(kind: str | None) -> ExitCode:
    """The exit code of a finished execution: ``None`` (it succeeded) is ``OK``; the error
    kinds ``syntax``, ``timeout`` and ``memory`` have their own codes, every other kind is
    ``FAILED``."""
    if kind is None:
        return ExitCode.OK
    return _KIND_CODES.get(kind, ExitCode.FAILED)


def one_line(text: str) -> str:
    """``text`` on one line: its non-empty lines, stripped, joined with ``"; "``."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def redact_url(url: str) -> str:
    """``url`` to print: a password in it (``postgresql://user:secret@host/db``) as ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return url


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or ``[error]``."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _is_network_error(error: BaseException) -> bool:
    """An ``httpx``/``httpcore`` transport error (the MCP client's HTTP library, under either
    of its distribution names) or a connection error of the standard library."""
    module = type(error).__module__.split(".")[0]
    return isinstance(error, ConnectionError) or (
        module in ("httpx", "httpx2", "httpcore", "httpcore2") and "Error" in type(error).__name__
    )


def _is_postgres_error(error: BaseException) -> bool:
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


def describe(error: BaseException) -> tuple[str, ExitCode]:
    """The one line (without the ``codemode:`` prefix) and the exit code for ``error``.

    :class:`CliError` says its own; known exceptions of the libraries underneath get a line
    naming what could not be reached or loaded (``ENVIRONMENT``); anything else is
    ``INTERNAL``, its type and message on the line (``--debug`` for the traceback)."""
    leaves = [leaf for leaf in _leaves(error) if not _is_cancellation(leaf)] or [error]
    if len(leaves) > 1 or leaves[0] is not error:
        # an exception group (from a task group): the first failure that is not a cancellation
        return describe(leaves[0])
    if isinstance(error, CliError):
        return error.message, error.code
    if isinstance(error, KeyboardInterrupt) or _is_cancellation(error):
        # a cancellation that reaches the top: asyncio's runner cancelled the command on Ctrl-C
        return "interrupted", ExitCode.INTERRUPTED
    if isinstance(error, ModuleNotFoundError):
        return f"{error} (is it installed? an extra may be missing, see docs/cli.md)", ExitCode.ENVIRONMENT
    if isinstance(error, ImportError):
        return f"cannot import: {error}", ExitCode.ENVIRONMENT
    if isinstance(error, FileNotFoundError):
        return f"no such file or directory: {error.filename or error}", ExitCode.ENVIRONMENT
    if isinstance(error, PermissionError):
        return f"permission denied: {error.filename or error}", ExitCode.ENVIRONMENT
    if isinstance(error, sqlite3.Error):
        return _sqlite_line(error), ExitCode.ENVIRONMENT
    if _is_postgres_error(error):
        return f"PostgreSQL: {one_line(str(error))}", ExitCode.ENVIRONMENT
    if _is_network_error(error):
        return f"cannot connect: {error or type(error).__name__}", ExitCode.ENVIRONMENT
    if isinstance(error, OSError):
        return str(error), ExitCode.ENVIRONMENT
    name = type(error).__name__
    return (
        f"internal error: {name}: {error} (`codemode --debug ...` prints the traceback; please report it)",
        ExitCode.INTERNAL,
    )


def _sqlite_line(error: sqlite3.Error) -> str:
    text = str(error)
    if "not a database" in text:
        return f"the store is not a SQLite database ({text})"
    if "unable to open" in text:
        return f"cannot open the SQLite database ({text}): does its directory exist, is it writable?"
    return f"SQLite: {text}"


def _is_cancellation(error: BaseException) -> bool:
    # asyncio's and trio's cancellations, without importing trio
    import asyncio

    return isinstance(error, asyncio.CancelledError) or type(error).__name__ == "Cancelled"
