"""The Cloudflare driver against a local workerd: authentication, replay, a Worker or a network
that goes away mid-call. (The engine contract runs on this driver through ``conftest.DRIVERS``;
many executions at once: ``test_concurrency.py``, 200 in flight on every driver.)"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import codemode
from codemode.cli import main
from codemode.cloudflare import CloudflareDriver
from codemode.cloudflare._socket import RefusedError, WebSocket

from .conftest import _workerd_missing, make_tools

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(_workerd_missing() is not None, reason=str(_workerd_missing())),
]


@pytest.fixture
def worker() -> Iterator[Any]:
    """A local Worker of this test's own (some tests stop it or hold it busy)."""
    from codemode.cloudflare.local import LocalWorker

    with LocalWorker() as local:
        yield local


def _open_headers(secret: str, *, stamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    nonce = nonce or secrets.token_hex(16)
    signature = hmac.digest(secret.encode(), f"open\n{stamp_text}\n{nonce}".encode(), "sha256").hex()
    return {"x-codemode-time": stamp_text, "x-codemode-nonce": nonce, "x-codemode-signature": signature}


def _frame(secret: str, nonce: str, seq: int, line: str) -> str:
    signature = hmac.digest(secret.encode(), f"{nonce}\nh\n{seq}\n{line}".encode(), "sha256").hex()
    return f"{seq} {signature} {line}"


def _run_line(code: str) -> str:
    spec = {
        "code": code,
        "names": ["echo"],
        "maxCalls": 10,
        "maxLogLines": 10,
        "maxLogBytes": 1000,
        "maxResult": 1000,
        "timeoutMs": 5000,
        "memoryMib": 16,
    }
    import json

    return "R " + json.dumps(spec)


async def _until_closed(socket: WebSocket) -> list[str]:
    """Everything the Worker sends until it closes the socket."""
    seen: list[str] = []
    with anyio.fail_after(5):
        while texts := await socket.receive():
            seen += texts
    return seen


async def test_a_wrong_secret_is_refused(worker: Any) -> None:
    wrong = codemode.create_code_mode(make_tools(), driver=CloudflareDriver(worker.url, "x" * 64))
    result = await wrong.execute("return 1")
    assert result.error is not None and result.error.kind == "internal"
    assert "HTTP 401" in result.error.message and "secret" in result.error.message
    right = codemode.create_code_mode(make_tools(), driver=CloudflareDriver(worker.url, worker.secret))
    assert (await right.execute("return 1 + 1")).result == 2


async def test_a_short_secret_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        CloudflareDriver("http://127.0.0.1:1", "short")


async def test_an_opening_is_used_once_and_only_while_fresh(worker: Any) -> None:
    headers = _open_headers(worker.secret)
    first = await WebSocket.connect(worker.url + "/execute", headers)
    await first.aclose()
    with pytest.raises(RefusedError) as replayed:
        await WebSocket.connect(worker.url + "/execute", headers)
    assert replayed.value.status == 401
    with pytest.raises(RefusedError) as stale:
        await WebSocket.connect(
            worker.url + "/execute", _open_headers(worker.secret, stamp=int(time.time()) - 3600)
        )
    assert stale.value.status == 401
    with pytest.raises(RefusedError) as unsigned:
        await WebSocket.connect(worker.url + "/execute", {"x-codemode-time": str(int(time.time()))})
    assert unsigned.value.status == 401


async def test_a_message_of_another_execution_replayed_or_changed_is_refused(worker: Any) -> None:
    secret = worker.secret
    nonce_a = secrets.token_hex(16)
    a = await WebSocket.connect(worker.url + "/execute", _open_headers(secret, nonce=nonce_a))
    run = _frame(secret, nonce_a, 1, _run_line("return await external_echo({ i: 1 })"))
    await a.send(run)
    with anyio.fail_after(5):
        call = await a.receive()
    assert call and call[0].split(" ", 2)[2].startswith("c 1 0 ")
    # Replayed into another execution: refused, nothing runs there.
    b = await WebSocket.connect(worker.url + "/execute", _open_headers(secret))
    await b.send(run)
    assert await _until_closed(b) == []
    # Replayed in its own execution (the same sequence number again): refused.
    await a.send(run)
    assert await _until_closed(a) == []
    # Changed after signing: refused.
    nonce_c = secrets.token_hex(16)
    c = await WebSocket.connect(worker.url + "/execute", _open_headers(secret, nonce=nonce_c))
    seq, signature, _ = _frame(secret, nonce_c, 1, _run_line("return 1")).split(" ", 2)
    await c.send(f"{seq} {signature} {_run_line('return 2')}")
    assert await _until_closed(c) == []


async def test_a_message_not_signed_by_the_worker_fails_the_run(
    worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codemode.cloudflare import _driver

    real = _driver._signature

    def forged(key: bytes, nonce: str, direction: str, seq: int, line: str) -> str:
        return real(key, nonce, direction, seq, line) if direction == "h" else "0" * 64

    monkeypatch.setattr(_driver, "_signature", forged)
    cm = codemode.create_code_mode(make_tools(), driver=CloudflareDriver(worker.url, worker.secret))
    result = await cm.execute("return 1")
    assert result.error is not None and result.error.kind == "internal"
    assert "signature check" in result.error.message


async def test_a_worker_that_dies_mid_execution_fails_the_run_not_the_host(worker: Any) -> None:
    async def stop_worker(args: dict[str, Any]) -> dict[str, Any]:
        worker.proc.kill()  # the runtime dies with the execution in it
        return {"ok": True}

    tool = codemode.Tool.from_schema("stop_worker", "Stop the Worker", {"type": "object"}, None, stop_worker)
    cm = codemode.create_code_mode([tool], driver=CloudflareDriver(worker.url, worker.secret), timeout=5)
    result = await cm.execute("await external_stop_worker({}); return 'after'")
    assert result.error is not None and result.error.kind == "internal", result
    assert "closed the connection" in result.error.message or "failed" in result.error.message
    await anyio.to_thread.run_sync(worker.restart)
    assert (await cm.execute("return 1 + 1")).result == 2


async def test_a_network_drop_mid_call_fails_the_run(worker: Any) -> None:
    """Through a TCP relay that cuts every connection while a tool call is in flight."""
    relays: list[anyio.abc.SocketStream] = []
    upstream_port = worker.port

    async def relay(client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", upstream_port) as upstream:
            relays.extend([client, upstream])

            async def pump(src: anyio.abc.SocketStream, dst: anyio.abc.SocketStream) -> None:
                try:
                    async for chunk in src:
                        await dst.send(chunk)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                    pass
                finally:
                    await dst.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(pump, client, upstream)
                tg.start_soon(pump, upstream, client)

    async def drop(args: dict[str, Any]) -> dict[str, Any]:
        for stream in relays:
            await stream.aclose()
        return {"ok": True}

    tool = codemode.Tool.from_schema("drop", "Cut the network", {"type": "object"}, None, drop)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, relay)
        cm = codemode.create_code_mode(
            [tool, *make_tools()],
            driver=CloudflareDriver(f"http://127.0.0.1:{port}", worker.secret),
            timeout=5,
        )
        result = await cm.execute("await external_drop({}); return 'after'")
        assert result.error is not None and result.error.kind == "internal", result
        relays.clear()
        after = await cm.execute("return (await external_echo({ i: 41 })).i + 1")
        assert after.result == 42, after
        tg.cancel_scope.cancel()


async def test_a_connection_opened_ahead_that_went_away_is_replaced(
    worker: Any, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codemode.cloudflare import _driver

    opened: list[str] = []
    real_open = _driver._open

    async def counting_open(url: str, key: bytes, nonce: str, ssl_context: Any = None) -> WebSocket:
        opened.append(nonce)
        return await real_open(url, key, nonce, ssl_context)

    monkeypatch.setattr(_driver, "_open", counting_open)
    driver = CloudflareDriver(worker.url, worker.secret)
    cm = codemode.create_code_mode(make_tools(), driver=driver)
    for i in range(3):
        assert (await cm.execute(f"return {i}")).result == i
        await anyio.sleep(0.05)  # the next connection opens meanwhile
    if anyio_backend == "asyncio":
        assert len(opened) == 4  # one for the first run, then one ahead of each (trio: none ahead)
    await anyio.to_thread.run_sync(worker.restart)  # the one opened ahead goes with it
    assert (await cm.execute("return (await external_echo({ i: 5 })).i")).result == 5
    driver.close()


async def test_the_host_deadline_ends_a_program_the_local_runtime_cannot_stop(worker: Any) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=CloudflareDriver(worker.url, worker.secret))
    started = time.perf_counter()
    result = await cm.execute("while (true) {}", timeout=0.3)
    assert result.error is not None and result.error.kind == "timeout"
    assert time.perf_counter() - started < 2.0
    await anyio.to_thread.run_sync(worker.restart)  # a local workerd still spins; Cloudflare would not
    assert (await cm.execute("return 1 + 1")).result == 2


def _wrangler() -> Path | None:
    script = (
        Path.home() / ".cache" / "codemode" / "workerd" / "node_modules" / "wrangler" / "bin" / "wrangler.js"
    )
    return script if script.exists() else None


def test_init_writes_a_project_that_wrangler_accepts(tmp_path: Path) -> None:
    wrangler = _wrangler()
    if wrangler is None:
        pytest.skip("wrangler is not installed (see the README's test command)")
    project = tmp_path / "worker"
    assert main(["cloudflare", "init", str(project), "--name", "codemode-test"]) == 0
    assert main(["cloudflare", "init", str(project)]) == 2  # not over an existing project
    done = subprocess.run(
        [codemode.v8.find_node(), str(wrangler), "deploy", "--dry-run", "--outdir", str(tmp_path / "out")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "env.LOADER" in done.stdout and "Worker Loader" in done.stdout


async def test_dev_serves_the_worker_until_interrupted(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codemode.cli",
            "cloudflare",
            "dev",
            "--port",
            str(port),
            "--secret",
            "s" * 32,
            "--restart-after",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert proc.stdout is not None
        first = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert f"http://127.0.0.1:{port}" in first
        cm = codemode.create_code_mode(
            make_tools(), driver=CloudflareDriver(f"http://127.0.0.1:{port}", "s" * 32)
        )
        assert (await cm.execute("return (await external_echo({ i: 20 })).i + 1")).result == 21
        # A program that never yields holds a local workerd: dev starts it again.
        stuck = await cm.execute("while (true) {}", timeout=0.3)
        assert stuck.error is not None and stuck.error.kind == "timeout"
        with anyio.fail_after(20):
            while not (await cm.execute("return 2", timeout=1.0)).success:
                await anyio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_runtime_modules_reach_no_network(worker: Any) -> None:
    """``import()`` reaches the Worker runtime's own modules; none of them gets out."""
    hits: list[int] = []

    async def count(client: anyio.abc.SocketStream) -> None:
        hits.append(1)
        await client.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    cm = codemode.create_code_mode([], driver=CloudflareDriver(worker.url, worker.secret))
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, count)
        sockets = await cm.execute(
            f"const m = await import('cloudflare:sockets')\nconst s = m.connect('127.0.0.1:{port}')\n"
            "await s.opened\nreturn 'connected'"
        )
        assert sockets.error is not None and sockets.error.kind == "runtime", sockets
        workers = await cm.execute(
            "const m: any = await import('cloudflare:workers')\n"
            f"try {{ await fetch('http://127.0.0.1:{port}/') }} catch {{}}\n"
            "return [typeof m.env, Object.keys(m.env ?? {})]"
        )
        assert workers.result == ["object", []], workers
        node = await cm.execute("return typeof (await import('node:net')).connect")
        assert node.error is not None, node
        await anyio.sleep(0.2)
        tg.cancel_scope.cancel()
    assert hits == []


async def test_the_worker_ends_a_run_at_its_own_deadline(worker: Any) -> None:
    """Even with a host that never answers the tool call, the Worker ends the run."""
    nonce = secrets.token_hex(16)
    socket_ = await WebSocket.connect(worker.url + "/execute", _open_headers(worker.secret, nonce=nonce))
    line = _run_line("await external_echo({ i: 1 }); return 'answered'").replace(
        '"timeoutMs": 5000', '"timeoutMs": 300'
    )
    started = time.perf_counter()
    await socket_.send(_frame(worker.secret, nonce, 1, line))
    seen = await _until_closed(socket_)
    assert time.perf_counter() - started < 3.0
    lines = [text.split(" ", 2)[2] for text in seen]
    assert lines[0].startswith("c 1 0 ") and lines[-1].startswith('f ["timeout"'), lines


def test_codemode_run_on_the_worker(tmp_path: Path) -> None:
    from .conftest import _local_worker

    worker = _local_worker()
    program = tmp_path / "p.ts"
    program.write_text(
        "const r: { stock: number } = await external_lookup({ item: 'apple' })\nreturn r.stock * 2"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CODEMODE_CLOUDFLARE_SECRET": worker.secret}
    command = [sys.executable, "-m", "codemode.cli", "run", str(program), "--tools", "tests/cli_tools.py"]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [*command, "--driver", "cloudflare", "--url", worker.url, "--json"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == 6
    env.pop("CODEMODE_CLOUDFLARE_URL", None)
    usage = subprocess.run(
        [*command, "--driver", "cloudflare"], capture_output=True, text=True, cwd=root, env=env, timeout=60
    )
    assert usage.returncode != 0 and "--url" in usage.stderr and "Traceback" not in usage.stderr


HOSTILE_SANDBOX = """
import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  async run(spec, host) {
    // A sandbox the program has taken over: it sends whatever lines it likes.
    for (const batch of JSON.parse(spec.code)) await host.send(batch);
    await new Promise(() => {});
  }
}
"""


@pytest.fixture
def subverted_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local Worker whose sandbox sends the lines the program lists (as a program that
    broke out of the sandbox's code, but not out of its isolate, could)."""
    from codemode.cloudflare import local
    from codemode.cloudflare.bundle import worker_script

    script = worker_script()
    start = script.index("const SANDBOX = ") + len("const SANDBOX = ")
    end = script.index(";\nconst MESSAGES = ", start)
    hostile = script[:start] + json.dumps(HOSTILE_SANDBOX) + script[end:]
    monkeypatch.setattr(local, "worker_script", lambda: hostile)
    with local.LocalWorker() as worker:
        yield worker


@pytest.mark.parametrize(
    ("batches", "kind"),
    [
        ([["c 1 7 {}"]], "internal"),  # no tool 7
        ([["c 5 0 {}"]], "internal"),  # call ids out of order
        ([["l 1 x 12"]], "internal"),  # not a console line
        ([['f ["nothing", 1]']], "internal"),  # not an error
        ([["o " + json.dumps("x" * 2000)]], "result"),  # over the result limit
        ([["q"]], "internal"),  # no such line
        ([[f"c {i} 0 {{}}" for i in range(1, 40)]], "runtime"),  # over the call limit
    ],
)
async def test_the_worker_holds_the_line_against_a_subverted_sandbox(
    subverted_worker: Any, batches: list[list[str]], kind: str
) -> None:
    calls: list[Any] = []

    async def echo(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return args

    tool = codemode.Tool.from_schema("echo", "Echo", {"type": "object"}, None, echo)
    driver = CloudflareDriver(subverted_worker.url, subverted_worker.secret)
    cm = codemode.create_code_mode([tool], driver=driver, timeout=5, max_tool_calls=20, max_result_bytes=1000)
    result = await cm.execute(json.dumps(batches))
    assert result.error is not None and result.error.kind == kind, result
    assert len(calls) <= 20


async def test_a_subverted_sandbox_cannot_flood_the_console(subverted_worker: Any) -> None:
    cm = codemode.create_code_mode(
        [],
        driver=CloudflareDriver(subverted_worker.url, subverted_worker.secret),
        timeout=5,
        max_log_lines=10,
    )
    batches = [[f"l 0 1 {json.dumps('spam')}" for _ in range(5000)], ["o 1"]]
    result = await cm.execute(json.dumps(batches))
    assert result.result == 1, result
    assert len(result.logs) <= 11


async def test_https_is_verified_with_the_context_given(tmp_path: Path) -> None:
    """The Worker behind TLS, as on Cloudflare: a certificate the driver does not trust is an
    error that says so; with a context that trusts it, the run goes through."""
    import ssl

    from codemode.cloudflare.local import LocalWorker

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip("openssl cannot make a certificate here")
    with LocalWorker(tls=(str(cert), str(key))) as worker:
        assert worker.url.startswith("https://")
        untrusted = codemode.create_code_mode(
            make_tools(), driver=CloudflareDriver(worker.url, worker.secret)
        )
        refused = await untrusted.execute("return 1")
        assert refused.error is not None and refused.error.kind == "internal"
        assert "certificate" in refused.error.message.lower(), refused.error
        trusted = ssl.create_default_context(cafile=str(cert))
        cm = codemode.create_code_mode(
            make_tools(), driver=CloudflareDriver(worker.url, worker.secret, ssl_context=trusted)
        )
        assert (await cm.execute("return (await external_echo({ i: 6 })).i * 7")).result == 42
