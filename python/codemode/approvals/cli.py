"""``codemode runs``: the execution log of a store (paused runs, and every run of a code mode
made with ``record_runs=True``).

    codemode runs list [--status S] [--limit N] [--json] --store URL
    codemode runs show RUN_ID [--json] --store URL
    codemode runs replay RUN_ID --tools MODULE --store URL

``--store`` defaults to ``$CODEMODE_RUNS_STORE`` (``sqlite:runs.db``, ``postgresql://...``).
``replay`` runs a finished run's program again with every tool call answered from its log (no
tool runs) and says whether the result is the one recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio

from ..cli_errors import CliError, ExitCode, describe, redact_url
from .models import RunRecord
from .store import ExecutionStore
from .url import EXECUTION_STORE_URL_FORMS, execution_store_from_url

STORE_ENVIRONMENT = "CODEMODE_RUNS_STORE"


def _fail(message: str) -> int:
    print(f"codemode runs: {message}", file=sys.stderr)
    return 1


async def _list(store: ExecutionStore, args: argparse.Namespace) -> int:
    runs = await store.list(limit=args.limit, status=args.status)
    if args.json:
        print(json.dumps([run.model_dump(mode="json") for run in runs], indent=2))
        return 0
    if not runs:
        print("no runs")
    for run in runs:
        pending = f", {run.pending} pending" if run.pending else ""
        print(f"{run.run_id}  {run.status:9}  {run.updated_at:%Y-%m-%d %H:%M:%S}  {run.calls} calls{pending}")
    return 0


def _show_text(record: RunRecord) -> None:
    print(f"run {record.run_id}: {record.status} (version {record.version})")
    print(f"  created {record.created_at.isoformat()}, updated {record.updated_at.isoformat()}")
    if record.tool_call_id:
        print(f"  tool call {record.tool_call_id}")
    print("program:")
    print(record.code.rstrip())
    print("calls:")
    for call in record.calls:
        if call.outcome is None:
            outcome = "waits for a decision" if call.index in record.pending else "no answer"
        elif "error" in call.outcome:
            outcome = f"error: {call.outcome['error']}"
        else:
            outcome = json.dumps(call.outcome.get("result"), ensure_ascii=False)
        decided = f" [{call.approval}]" if call.approval else ""
        args = json.dumps(call.args, ensure_ascii=False)
        print(
            f"  {call.index}. external_{call.tool}({args}){decided} -> {outcome} ({call.duration_ms:.2f} ms)"
        )
    if record.result is not None:
        print("result:")
        print(json.dumps(record.result, indent=2, ensure_ascii=False))


async def _show(store: ExecutionStore, args: argparse.Namespace) -> int:
    record = await store.load(args.run_id)
    if record is None:
        return _fail(f"no run {args.run_id!r} in this store")
    if args.json:
        print(record.model_dump_json(indent=2))
    else:
        _show_text(record)
    return 0


async def _replay(store: ExecutionStore, args: argparse.Namespace) -> int:
    from ..cli import load_tools
    from ..code_mode import create_code_mode
    from .replay import ResumeError

    record = await store.load(args.run_id)
    if record is None:
        return _fail(f"no run {args.run_id!r} in this store")
    tools = load_tools(args.tools)  # its mistakes are CliError, one line
    cm = create_code_mode(tools, execution_store=store)
    assert cm.approvals is not None
    try:
        result = await cm.approvals.replay(cm, args.run_id)
    except ResumeError as e:
        return _fail(str(e))
    finally:
        await cm.aclose()
    output = result.to_tool_output()
    print(json.dumps(output, indent=2, ensure_ascii=False))
    if output == record.result:
        print("replayed: the same result as recorded")
        return 0
    return _fail("the replay's result differs from the recorded one")


def _run(args: argparse.Namespace, command: Any) -> int:
    url = args.store or os.environ.get(STORE_ENVIRONMENT)
    if not url:
        raise CliError(
            f"codemode runs: give --store URL (or set ${STORE_ENVIRONMENT}): {EXECUTION_STORE_URL_FORMS}"
        )
    try:
        # No command here writes a new store: a missing SQLite file is a typo, not a store to make.
        store = execution_store_from_url(url, create=False)
    except ValueError as e:
        raise CliError(f"codemode runs: {e}") from None
    except FileNotFoundError as e:
        raise CliError(
            f"codemode runs: no such store: {e.filename} (a code mode with this execution store "
            "makes it when it records or pauses a run)",
            ExitCode.ENVIRONMENT,
        ) from None
    except ImportError as e:
        raise CliError(
            f"codemode runs: {e} (a PostgreSQL store needs pip install 'codemode[postgres]')",
            ExitCode.ENVIRONMENT,
        ) from None

    async def main() -> int:
        async with store:
            return int(await command(store, args))

    try:
        return anyio.run(main)
    except CliError:
        raise
    except Exception as e:
        message, code = describe(e)
        if code != ExitCode.ENVIRONMENT:
            raise
        raise CliError(f"codemode runs: the store {redact_url(url)}: {message}", code) from e


def add_runs_commands(commands: Any) -> None:
    """Add ``runs list|show|replay`` to the ``codemode`` command's subparsers."""
    runs: argparse.ArgumentParser = commands.add_parser(
        "runs", help="the execution log: list, show and replay recorded runs"
    )
    actions = runs.add_subparsers(dest="runs_command", required=True)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", help=f"the store URL (default ${STORE_ENVIRONMENT})")

    def add(name: str, help: str, command: Any) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, parents=[store])
        parser.set_defaults(handler=lambda args: _run(args, command))
        return parser

    listing = add("list", "the newest runs: id, status, calls", _list)
    listing.add_argument("--status", choices=["running", "paused", "resuming", "finished"])
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print the summaries as JSON")
    show = add("show", "one run: its program, every call with its outcome, its result", _show)
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--json", action="store_true", help="print the whole record as JSON")
    replay = add("replay", "run a finished run again from its log and compare the result", _replay)
    replay.add_argument("run_id", metavar="RUN_ID")
    replay.add_argument("--tools", required=True, help="the module holding the run's tools")
