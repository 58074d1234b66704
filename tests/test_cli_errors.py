"""Every everyday mistake on the ``codemode`` command is one line on stderr and an exit code of
the table in ``codemode.cli_errors`` (``docs/cli.md``), never a traceback unless ``--debug``.

Each case runs the real entry point, ``python -m codemode ...``, in a subprocess importing the
codemode this test run imports (``tests/conftest.py``: ``child_python_path``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

from codemode.cli_errors import CliError, ExitCode, describe, exit_code_for_error_kind, redact_url

from .conftest import child_python_path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120

OK, FAILED, USAGE, SYNTAX = ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.SYNTAX
TIMED_OUT, MEMORY, ENVIRONMENT = ExitCode.TIMEOUT, ExitCode.MEMORY, ExitCode.ENVIRONMENT

needs_mcp = pytest.mark.skipif(importlib.util.find_spec("mcp") is None, reason="needs the mcp extra")
needs_psycopg = pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="needs psycopg")

FILES = {
    "ok.ts": "return 1 + 1",
    "syntax.ts": "const x: number = ;",
    "runtime.ts": "throw new Error('boom')",
    "loop.ts": "while (true) {}",
    "memory.ts": "const a: string[] = []\nwhile (true) a.push('x'.repeat(1000) + a.length)",
    "broken_tools.py": "1 / 0\n",
    "garbage.db": "this is not a SQLite database\n",
    "bad.json": "{",
    "list.json": "[1, 2]",
    "entry.json": '{"mcpServers": {"time": {"args": []}}}',
    "notskills/a.json": '{"x": 1}',
    "notskills/a.ts": "return 1",
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with the programs, modules, stores and configs the cases name."""
    directory = tmp_path_factory.mktemp("cli")
    for name, text in FILES.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def codemode(
    *argv: str, cwd: Path, preexec: bool = False, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m codemode *argv`` from the source tree, in ``cwd``, without the store and
    Cloudflare settings of the environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CODEMODE_SKILLS_STORE", "CODEMODE_RUNS_STORE", "CODEMODE_CLOUDFLARE_URL")
    }
    env["PYTHONPATH"] = child_python_path()
    return subprocess.run(
        [sys.executable, "-m", "codemode", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        input=stdin,
        timeout=TIMEOUT,
    )


def _args(argv: tuple[str, ...], workdir: Path) -> list[str]:
    return [word.replace("{dir}", str(workdir)) for word in argv]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


ERRORS = [
    # usage: argparse's own errors, limits out of range, malformed URLs and configs
    ((), USAGE, "codemode: the following arguments are required: command"),
    (("bogus",), USAGE, "invalid choice: 'bogus'"),
    (("run",), USAGE, "codemode run: the following arguments are required: program"),
    (("run", "ok.ts", "--timeout", "0"), USAGE, "--timeout: must be more than 0"),
    (("run", "ok.ts", "--timeout", "-5"), USAGE, "--timeout: must be more than 0"),
    (("run", "ok.ts", "--timeout", "1e9"), USAGE, "at most 86400 seconds"),
    (("run", "ok.ts", "--timeout", "nan"), USAGE, "'nan' is not a finite number"),
    (("run", "ok.ts", "--timeout", "soon"), USAGE, "'soon' is not a number"),
    (("run", "ok.ts", "--memory-mb", "0"), USAGE, "--memory-mb: must be from 1"),
    (("run", "ok.ts", "--memory-mb", "1e12"), USAGE, "--memory-mb: must be from 1"),
    (("run", "ok.ts", "--driver", "cloudflare"), USAGE, "--driver cloudflare needs --url"),
    (("skills", "list"), USAGE, "codemode skills: give --store URL"),
    (("skills", "list", "--store", "redis://x"), USAGE, "not a skill store URL: 'redis://x' (use sqlite:"),
    (("skills", "list", "--store", "skills.db"), USAGE, "not a skill store URL"),
    (("skills", "list", "--store", "sqlite://host/x.db"), USAGE, "a host is not allowed here"),
    (("skills", "list", "--store", "sqlite:"), USAGE, "names no path"),
    (("runs", "list"), USAGE, "codemode runs: give --store URL"),
    (("runs", "list", "--store", "mysql://x"), USAGE, "not an execution store URL"),
    pytest.param(("mcp", "proxy"), USAGE, "give an upstream server", marks=needs_mcp),
    pytest.param(("mcp", "proxy", "--config", "bad.json"), USAGE, "bad.json is not JSON", marks=needs_mcp),
    pytest.param(("mcp", "proxy", "--config", "list.json"), USAGE, "expected an object", marks=needs_mcp),
    pytest.param(("mcp", "proxy", "--config", "entry.json"), USAGE, "server 'time' must be", marks=needs_mcp),
    (("mcp", "serve", "--tools", "x", "--port", "70000"), USAGE, "a port is from 0 to 65535"),
    # the environment: a file, module, store or server that cannot be reached or loaded
    (("run", "ok.ts", "--tools", "nope"), ENVIRONMENT, "codemode: no module named 'nope' (--tools takes"),
    (("run", "ok.ts", "--tools", "nope.deeper"), ENVIRONMENT, "no module named 'nope'"),
    (("run", "ok.ts", "--tools", "missing.py"), ENVIRONMENT, "no such file: missing.py (--tools takes"),
    (("run", "ok.ts", "--tools", "broken_tools.py"), ENVIRONMENT, "failed to import: ZeroDivisionError"),
    (("run", "missing.ts"), ENVIRONMENT, "codemode: no such program file: missing.ts"),
    (("run", "notskills"), ENVIRONMENT, "notskills is a directory"),
    (("prompt", "--tools", "nope"), ENVIRONMENT, "no module named 'nope'"),
    (("skills", "list", "--store", "sqlite:///nonexistent/dir/x.db"), ENVIRONMENT, "no such store"),
    (("skills", "show", "x", "--store", "sqlite:typo.db"), ENVIRONMENT, "no such store: typo.db"),
    (("skills", "list", "--store", "sqlite:garbage.db"), ENVIRONMENT, "not a SQLite database"),
    (("skills", "list", "--store", "file:notskills"), ENVIRONMENT, "a .json file there is not a skill"),
    (("skills", "import", "missing", "--store", "memory:"), ENVIRONMENT, "missing is not a directory"),
    (("skills", "import", "notskills", "--store", "memory:"), ENVIRONMENT, "is not a skill"),
    (("runs", "list", "--store", "sqlite:///nonexistent/dir/x.db"), ENVIRONMENT, "no such store"),
    (("runs", "show", "r1", "--store", "sqlite:typo.db"), ENVIRONMENT, "no such store: typo.db"),
    (("runs", "list", "--store", "sqlite:garbage.db"), ENVIRONMENT, "not a SQLite database"),
    pytest.param(
        ("skills", "list", "--store", "postgresql://nobody:secret@127.0.0.1:1/x"),
        ENVIRONMENT,
        "PostgreSQL: connection failed",
        marks=needs_psycopg,
    ),
    pytest.param(
        ("runs", "list", "--store", "postgresql://nobody@127.0.0.1:1/x"),
        ENVIRONMENT,
        "PostgreSQL: connection failed",
        marks=needs_psycopg,
    ),
    pytest.param(("mcp", "serve", "--tools", "nope"), ENVIRONMENT, "no module named 'nope'", marks=needs_mcp),
    pytest.param(
        ("mcp", "proxy", "--config", "missing.json"), ENVIRONMENT, "no such config file", marks=needs_mcp
    ),
    pytest.param(
        ("mcp", "proxy", "--upstream", "http://127.0.0.1:1/mcp"),
        ENVIRONMENT,
        "cannot connect to MCP server http://127.0.0.1:1/mcp",
        marks=needs_mcp,
    ),
    pytest.param(
        ("mcp", "proxy", "--", "{dir}/no-such-server"),
        ENVIRONMENT,
        "cannot connect to MCP server",
        marks=needs_mcp,
    ),
    # what the command looked for is not there
    (("skills", "show", "nothing", "--store", "memory:"), FAILED, "codemode skills: no skill 'nothing'"),
]


@pytest.mark.parametrize(("argv", "code", "message"), ERRORS)
def test_a_mistake_is_one_line_and_an_exit_code(
    workdir: Path, argv: tuple[str, ...], code: ExitCode, message: str
) -> None:
    out = codemode(*_args(argv, workdir), cwd=workdir)
    line = _one_line(out.stderr)
    assert out.returncode == code, (out.returncode, line)
    assert message in line, line
    assert ":secret@" not in line  # a store URL's password is not printed


PROGRAMS = [
    (("run", "ok.ts"), OK, "result:"),
    (("run", "syntax.ts"), SYNTAX, "syntax error at line 1"),
    (("run", "runtime.ts"), FAILED, "runtime error at line 1"),
    (("run", "loop.ts", "--timeout", "0.5"), TIMED_OUT, "timeout error"),
    (("run", "memory.ts", "--memory-mb", "8"), MEMORY, "memory error"),
    (("run", "syntax.ts", "--json"), SYNTAX, '"kind": "syntax"'),
]


@pytest.mark.parametrize(("argv", "code", "output"), PROGRAMS)
def test_how_a_program_ends_is_its_exit_code(
    workdir: Path, argv: tuple[str, ...], code: ExitCode, output: str
) -> None:
    out = codemode(*argv, cwd=workdir)
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert output in out.stdout and out.stderr == "", (out.stdout, out.stderr)


def test_debug_prints_the_traceback_then_the_line(workdir: Path) -> None:
    out = codemode("--debug", "run", "ok.ts", "--tools", "nope", cwd=workdir)
    assert out.returncode == ENVIRONMENT
    assert out.stderr.startswith("Traceback") and "ModuleNotFoundError" in out.stderr, out.stderr
    assert out.stderr.splitlines()[-1].startswith("codemode: no module named 'nope'")
    plain = codemode(
        "run", "ok.ts", "--tools", "nope", "--debug", cwd=workdir
    )  # after the command: argparse's
    assert plain.returncode == USAGE and "unrecognized arguments: --debug" in _one_line(plain.stderr)


def test_version(workdir: Path) -> None:
    from codemode.cli import version

    out = codemode("--version", cwd=workdir)
    assert out.returncode == 0 and out.stderr == ""
    first, *rest = out.stdout.splitlines()
    assert first == f"codemode {version()}" and first != "codemode unknown"
    assert rest and "QuickJS" in rest[0]


def test_python_dash_m_codemode_help(workdir: Path) -> None:
    out = codemode("--help", cwd=workdir)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith("usage: codemode") and "--debug" in out.stdout and "exit codes" in out.stdout
    for command in ("run", "prompt", "doctor", "mcp", "skills", "runs", "playground", "cloudflare"):
        assert command in out.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ("skills", "list"),
        ("skills", "show", "x"),
        ("skills", "export", "{dir}/exported"),
        ("skills", "rm", "x"),
        ("runs", "list"),
        ("runs", "show", "r1"),
    ],
)
def test_a_read_command_on_a_typo_makes_no_store(workdir: Path, argv: tuple[str, ...]) -> None:
    typo = workdir / "typo-store.db"
    out = codemode(*_args(argv, workdir), "--store", f"sqlite:///{typo}", cwd=workdir)
    assert out.returncode == ENVIRONMENT and "no such store" in _one_line(out.stderr)
    assert not typo.exists() and not (workdir / "exported").exists()


def test_import_makes_the_store(workdir: Path, tmp_path: Path) -> None:
    import anyio

    from codemode.skills import FileSkillStore, Skill

    export = tmp_path / "export"
    anyio.run(FileSkillStore(export).save, Skill(name="double", description="Double", code="return 2"))
    store = f"sqlite:///{tmp_path / 'new.db'}"
    out = codemode("skills", "import", str(export), "--store", store, cwd=workdir)
    assert out.returncode == 0 and "imported 1 skills" in out.stdout, out.stderr
    listed = codemode("skills", "list", "--store", store, cwd=workdir)
    assert listed.returncode == 0 and listed.stdout.startswith("double"), listed.stderr


def test_ctrl_c_is_130(workdir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": child_python_path()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "codemode", "run", "loop.ts", "--timeout", "60"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored, whatever ran us
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "timeline:\n"  # started: the engine runs the loop
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, (proc.returncode, stdout, stderr)
    assert _one_line(stderr) == "codemode: interrupted"


def test_doctor_reports_engines_and_extras(workdir: Path) -> None:
    import json

    out = codemode("doctor", "--json", cwd=workdir)
    report = json.loads(out.stdout)
    assert report["engines"]["quickjs"] is True
    assert "CODEMODE_CLOUDFLARE_URL" in report["engines"]["cloudflare"]
    assert set(report["extras"]) >= {"pydantic-ai", "mcp", "psycopg", "opentelemetry-api", "rich"}
    assert report["codemode"] and report["python"]
    text = codemode("doctor", cwd=workdir)
    assert "engines (a program runs):" in text.stdout and "extras:" in text.stdout


# -- the mapping itself ------------------------------------------------------------------------


def test_error_kinds_map_to_exit_codes() -> None:
    assert exit_code_for_error_kind(None) == 0
    assert [exit_code_for_error_kind(k) for k in ("syntax", "timeout", "memory")] == [3, 4, 5]
    for kind in ("runtime", "tool", "invalid_args", "result", "output_limit", "cancelled"):
        assert exit_code_for_error_kind(kind) == 1


def test_describe_known_and_unknown_exceptions(tmp_path: Path) -> None:
    import sqlite3

    assert describe(CliError("x", ExitCode.ENVIRONMENT)) == ("x", ExitCode.ENVIRONMENT)
    assert describe(KeyboardInterrupt()) == ("interrupted", ExitCode.INTERRUPTED)
    assert describe(asyncio.CancelledError()) == ("interrupted", ExitCode.INTERRUPTED)
    assert describe(FileNotFoundError(2, "gone", "a.txt")) == (
        "no such file or directory: a.txt",
        ENVIRONMENT,
    )
    assert describe(sqlite3.DatabaseError("file is not a database"))[1] == ENVIRONMENT
    assert describe(ModuleNotFoundError("No module named 'x'"))[1] == ENVIRONMENT
    refused = ExceptionGroup("task group", [ConnectionRefusedError(111, "refused")])
    assert describe(BaseExceptionGroup("outer", [asyncio.CancelledError(), refused]))[1] == ENVIRONMENT
    message, code = describe(TypeError("a bug"))
    assert code == ExitCode.INTERNAL and message.startswith("internal error: TypeError: a bug")
    assert redact_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
