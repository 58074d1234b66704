"""The ``codemode bench`` command's arguments (the runner is imported when it runs)."""

from __future__ import annotations

import argparse
from typing import Any


def add_bench_command(commands: Any) -> None:
    """Add ``codemode bench`` to the ``codemode`` command's subcommands."""
    bench = commands.add_parser("bench", help="run the benchmark workloads on every engine here, beside peers")
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    raise SystemExit("codemode bench: not built yet")
