"""What an engine process may do, shown from inside it: payloads run in the Node.js realm of a
V8 engine process itself (injected at its start through a test-only hook, never reachable from
a program), as code that escaped the isolate would. Each attempt must be denied."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codemode

from ..conftest import _v8_missing, make_tools

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(_v8_missing() is not None, reason=str(_v8_missing())),
]

CONFINE_MISSING = not hasattr(codemode._core, "confine")
SECRET = "codemode-confinement-secret"

PAYLOAD = """
import * as net from "node:net";
import * as fs from "node:fs";
import * as cp from "node:child_process";
const [port, secretFile, writeFile, envName] = JSON.parse(process.env.CODEMODE_PAYLOAD_ARGS ?? "null") ?? %s;
const report = {};
const attempt = async (name, fn) => {
  try { report[name] = "allowed: " + String(await fn()).slice(0, 80); } catch (e) { report[name] = "denied: " + (e.code || e.message); }
};
await attempt("connect", () => new Promise((resolve, reject) => {
  const s = net.connect(port, "127.0.0.1", () => { s.end(); resolve("connected"); });
  s.on("error", reject);
  setTimeout(() => reject(new Error("no answer")), 2000);
}));
await attempt("read", () => fs.readFileSync(secretFile, "utf8"));
await attempt("write", () => { fs.writeFileSync(writeFile, "x"); return "written"; });
await attempt("spawn", () => cp.spawnSync("/bin/sh", ["-c", "echo spawned"]).stdout);
await attempt("env", () => { if (process.env[envName] === undefined) throw new Error("absent"); return process.env[envName]; });
process.stderr.write("REPORT " + JSON.stringify(report) + "\\n");
process.exit(3);
"""


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bool]]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    accepted: list[bool] = []

    def accept() -> None:
        try:
            conn, _ = server.accept()
            accepted.append(True)
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()


async def run_payload(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET, encoding="utf-8")
    target = tmp_path / "written.txt"
    args = json.dumps([port, str(secret_file), str(target), "CODEMODE_SECRET_ENV"])
    payload = tmp_path / "payload.mjs"
    payload.write_text(PAYLOAD % args, encoding="utf-8")
    monkeypatch.setenv("CODEMODE_V8_TEST_INJECT", str(payload))
    monkeypatch.setenv("CODEMODE_SECRET_ENV", SECRET)
    driver = codemode.V8Driver(prewarm=0)
    try:
        cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
        result = await cm.execute("return 1")
    finally:
        driver.close()
    assert result.error is not None, "the payload did not run"
    line = result.error.message.split("REPORT ", 1)[1]
    report: dict[str, Any] = json.loads(line)
    report["written"] = target.exists()
    return report


async def test_the_engine_environment_file_system_and_processes_are_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: tuple[int, list[bool]]
) -> None:
    """What holds without the OS layer too (Node's permission model and a scrubbed environment)."""
    report = await run_payload(tmp_path, listener[0], monkeypatch)
    assert report["read"].startswith("denied"), report
    assert report["write"].startswith("denied") and not report["written"], report
    assert report["spawn"].startswith("denied"), report
    assert report["env"].startswith("denied"), report


@pytest.mark.skipif(CONFINE_MISSING, reason="this build has no OS confinement layer (codemode._core.confine)")
async def test_the_engine_has_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: tuple[int, list[bool]]
) -> None:
    report = await run_payload(tmp_path, listener[0], monkeypatch)
    assert report["connect"].startswith("denied"), report
    assert not listener[1], "the listener accepted a connection from the engine"
