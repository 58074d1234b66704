"""Proof from inside: code running in a QuickJS worker process, outside the JavaScript sandbox
(as if the engine had been broken), is denied everything but its pipe.

The payloads are Python run in the worker through a test-only hook (``WorkerPool(_test_hooks=
True)``, honoured only with ``CODEMODE_TEST_HOOKS=1``; no program can reach it). Each makes
the system calls a broken engine would; the OS refuses them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import codemode
from codemode.process import WorkerGone, WorkerPool

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OS confinement is Linux only"),
]

SECRET = "codemode-secret-4b1d"


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerPool]:
    monkeypatch.setenv("CODEMODE_TEST_HOOKS", "1")
    monkeypatch.setenv("CODEMODE_TEST_SECRET", SECRET)  # in the host's environment only
    pool = WorkerPool(workers=1, _test_hooks=True)
    yield pool
    pool.close()


async def payload(pool: WorkerPool, source: str) -> dict[str, Any]:
    return await pool.run_payload(source)


def assert_denied(outcome: dict[str, Any]) -> None:
    assert not outcome["ok"], outcome
    assert outcome["error"] in ("PermissionError", "OSError"), outcome


async def test_every_layer_holds(pool: WorkerPool) -> None:
    report = await pool.report()
    assert report["no_new_privs"] and report["seccomp"] and report["rlimits"], report
    assert report["capabilities_dropped"] and report["threads"] == 1, report
    if report["landlock_abi"] >= 6:  # every rule of the policy is known to this kernel
        assert report["landlock"] == "full" and report["problems"] == [], report


async def test_no_connection_to_a_listener_on_localhost(pool: WorkerPool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert_denied(
            await payload(pool, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
        )
        # the raw system calls, as native code would make them
        raw = await payload(
            pool,
            "import ctypes, socket\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "result = (libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0), ctypes.get_errno(),\n"
            "          libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0), ctypes.get_errno())",
        )
        assert raw == {"ok": True, "result": repr((-1, 1, -1, 1))}  # EPERM
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


async def test_no_reading_of_host_files(pool: WorkerPool, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    package_parent = Path(codemode.__file__).resolve().parent.parent
    for path in ("/etc/passwd", str(secret), __file__, "/proc/self/status"):
        assert_denied(await payload(pool, f"open({path!r}).read()"))
    for directory in (str(package_parent), str(tmp_path), "/", "/tmp"):
        assert_denied(await payload(pool, f"import os\nos.listdir({directory!r})"))


async def test_no_writing_of_files(pool: WorkerPool, tmp_path: Path) -> None:
    for path in (tmp_path / "written.txt", Path("/tmp") / f"codemode-{os.getpid()}.txt"):
        assert_denied(await payload(pool, f"open({str(path)!r}, 'w').write('x')"))
        assert not path.exists()
    package_dir = Path(codemode.__file__).resolve().parent  # readable, not writable
    assert_denied(await payload(pool, f"open({str(package_dir / 'planted.py')!r}, 'w')"))
    assert_denied(await payload(pool, f"import os\nos.mkdir({str(tmp_path / 'dir')!r})"))


async def test_no_exec_and_no_new_processes(pool: WorkerPool) -> None:
    assert_denied(await payload(pool, "import os\nos.execv('/bin/sh', ['/bin/sh', '-c', 'true'])"))
    assert_denied(await payload(pool, "import subprocess\nsubprocess.run(['/bin/sh', '-c', 'true'])"))
    assert_denied(await payload(pool, "import os\nos.posix_spawn('/bin/sh', ['/bin/sh'], {})"))
    assert_denied(await payload(pool, "import os\nos.fork()"))


async def test_no_host_environment(pool: WorkerPool) -> None:
    # empty, but for the UTF-8 locale Python sets for itself (PEP 538)
    outcome = await payload(pool, "import os\nresult = sorted(os.environ.items())")
    assert outcome == {"ok": True, "result": "[('LC_CTYPE', 'C.UTF-8')]"} or outcome["result"] == "[]"
    assert SECRET not in outcome["result"]
    assert_denied(await payload(pool, "import os\nopen(f'/proc/{os.getppid()}/environ').read()"))
    assert_denied(await payload(pool, "open('/proc/self/environ').read()"))
    assert await payload(pool, "import os\nresult = os.getcwd()") == {"ok": True, "result": "'/'"}


async def test_no_descriptors_but_its_pipes(pool: WorkerPool) -> None:
    source = (
        "import os\n"
        "def is_open(fd):\n"
        "    try:\n"
        "        os.fstat(fd)\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "result = len([fd for fd in range(1024) if is_open(fd)])"
    )
    # stdin and stdout on /dev/null, stderr, the request, response and control pipes
    assert await payload(pool, source) == {"ok": True, "result": "6"}


@pytest.fixture
def usr1() -> Iterator[list[int]]:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGUSR1, previous)


async def test_no_signals_to_the_host(pool: WorkerPool, usr1: list[int]) -> None:
    for target in ("os.getppid()", str(os.getpid())):
        assert_denied(await payload(pool, f"import os, signal\nos.kill({target}, signal.SIGUSR1)"))
        assert_denied(await payload(pool, f"import os\nos.kill({target}, 0)"))
    assert_denied(await payload(pool, "import os\nos.kill(0, 0)"))  # its process group
    await anyio.sleep(0.05)
    assert usr1 == []


async def test_a_crash_in_the_worker_is_an_internal_error_and_the_next_execution_runs(
    pool: WorkerPool,
) -> None:
    gate = anyio.Event()

    async def wait(args: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {}

    tool = codemode.Tool.from_schema("wait", "Wait for the test", {"type": "object"}, None, wait)
    driver = codemode.QuickJSDriver(isolation="process", workers=1)
    driver.pool = pool  # the pool with the test hook
    cm = codemode.create_code_mode([tool], driver=driver, timeout=10)
    results: list[codemode.ExecutionResult] = []

    async def victim() -> None:
        results.append(await cm.execute("await external_wait({})\nreturn 'survived'"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(victim)
        while not any(w.load for w in pool.workers):  # it is waiting on its tool in the worker
            await anyio.sleep(0.01)
        with pytest.raises(WorkerGone):
            await payload(pool, "import os\nos.abort()")  # the engine "crashes"
        gate.set()
    [crashed] = results
    assert not crashed.success and crashed.error is not None
    assert crashed.error.kind == "internal", crashed.error
    after = await cm.execute("return 1 + 1")  # a new worker
    assert after.success and after.result == 2


async def test_a_worker_stuck_past_the_deadline_is_killed(pool: WorkerPool) -> None:
    driver = codemode.QuickJSDriver(isolation="process", workers=1)
    driver.pool = pool
    cm = codemode.create_code_mode([], driver=driver, timeout=0.3)
    await pool.report()  # the worker is up
    [stuck] = [w for w in pool.workers if w.dead is None]
    result: list[codemode.ExecutionResult] = []

    async def hang() -> None:
        # the worker's main thread stops answering, as an engine stuck in native code would
        with pytest.raises(WorkerGone):
            await pool.run_payload("import time\ntime.sleep(3600)", timeout=0.2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hang)
        await anyio.sleep(0.05)
        result.append(await cm.execute("return 1"))
    assert result[0].error is not None and result[0].error.kind == "timeout", result[0]
    assert stuck.dead is not None and stuck.proc.wait(timeout=5) == -signal.SIGKILL
    after = await cm.execute("return 2")
    assert after.success and after.result == 2


async def test_hooks_need_the_test_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEMODE_TEST_HOOKS", raising=False)
    with pytest.raises(RuntimeError):
        WorkerPool(_test_hooks=True)
    plain = WorkerPool(workers=1)
    try:
        with pytest.raises(RuntimeError):
            await plain.run_payload("result = 1")
    finally:
        plain.close()


async def test_the_sandbox_cannot_see_the_hook() -> None:
    cm = codemode.create_code_mode([], driver=codemode.QuickJSDriver(isolation="process", workers=1))
    result = await cm.execute(
        "return [typeof require, typeof process, typeof Deno, typeof globalThis.__codemode_worker]"
    )
    assert result.result == ["undefined"] * 4


def test_a_missing_layer_is_warned_about_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from codemode import process

    monkeypatch.setattr(process, "_warned", False)
    with pytest.warns(RuntimeWarning, match="landlock: not available"):
        process._note_report({"problems": ["landlock: not available on this kernel"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        process._note_report({"problems": ["landlock: not available on this kernel"]})  # not again


def test_doctor_reports_what_holds(capsys: pytest.CaptureFixture[str]) -> None:
    from codemode.cli import main

    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] is True and report["seccomp"] is True
    assert code == (0 if not report["problems"] else 1)
