"""The Worker on a local ``workerd`` (Cloudflare's open-source runtime, from npm): what
``codemode cloudflare dev`` and the tests run.

A local ``workerd`` runs the same Worker script with the same Worker Loader, but it enforces no
CPU or memory limit on a dynamic Worker (Cloudflare does): a program that loops forever holds
the local runtime until :meth:`LocalWorker.restart`. The host's own deadline still ends the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from .bundle import COMPATIBILITY_DATE, worker_script

WORKERD_VERSION = "1.20261117.1"
"""The ``workerd`` npm package the tests run."""

INSTALL_HINT = (
    f"install it with `npm install --prefix ~/.cache/codemode/workerd workerd@{WORKERD_VERSION}`, "
    "or set CODEMODE_WORKERD to its path"
)


def find_workerd() -> str:
    """The ``workerd`` executable: ``$CODEMODE_WORKERD``, then the PATH, then the npm package
    in ``./node_modules`` or ``~/.cache/codemode/workerd``. ``RuntimeError`` if none."""
    given = os.environ.get("CODEMODE_WORKERD")
    if given:
        return given
    found = shutil.which("workerd")
    if found:
        return found
    for root in (Path.cwd(), Path.home() / ".cache" / "codemode" / "workerd"):
        candidate = root / "node_modules" / ".bin" / "workerd"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"no workerd executable found: {INSTALL_HINT}")


def _config(port: int, host: str, tls: bool) -> str:
    protocol = (
        'https = (options = (), tlsOptions = (keypair = (privateKey = embed "key.pem", '
        'certificateChain = embed "cert.pem")))'
        if tls
        else "http = ()"
    )
    return f"""using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "codemode", worker = .codemodeWorker) ],
  sockets = [ (name = "http", address = "{host}:{port}", {protocol}, service = "codemode") ],
);
const codemodeWorker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "{COMPATIBILITY_DATE}",
  bindings = [
    (name = "LOADER", workerLoader = ()),
    (name = "SECRET", fromEnvironment = "CODEMODE_SECRET"),
  ],
);
"""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalWorker:
    """The Worker served by a local ``workerd`` process on ``host:port``.

    Use as a context manager (or call :meth:`start` and :meth:`stop`); :attr:`url` and
    :attr:`secret` are what :class:`~codemode.cloudflare.CloudflareDriver` takes."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        secret: str | None = None,
        workerd: str | None = None,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.tls = tls  # (certificate chain PEM file, private key PEM file): serve https
        self.port = port or _free_port(host)
        self.secret = secret or secrets.token_hex(32)
        self.workerd = workerd or find_workerd()
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start ``workerd`` and wait until the Worker answers."""
        self._dir = tempfile.TemporaryDirectory(prefix="codemode-workerd-")
        root = Path(self._dir.name)
        (root / "worker.js").write_text(worker_script(), encoding="utf-8")
        (root / "config.capnp").write_text(
            _config(self.port, self.host, self.tls is not None), encoding="utf-8"
        )
        if self.tls is not None:
            shutil.copyfile(self.tls[0], root / "cert.pem")
            shutil.copyfile(self.tls[1], root / "key.pem")
        env = {"PATH": os.environ.get("PATH", ""), "CODEMODE_SECRET": self.secret}
        self.proc = subprocess.Popen(
            [self.workerd, "serve", "--experimental", str(root / "config.capnp")],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        until = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                assert self.proc.stderr is not None
                why = self.proc.stderr.read().decode("utf-8", "replace").strip()
                raise RuntimeError(f"workerd exited (status {self.proc.returncode}): {why[-2000:]}")
            if self.answers(timeout=1.0):
                return
            if time.monotonic() > until:
                self.stop()
                raise RuntimeError(f"workerd did not answer on {self.url} within {timeout:g} s")
            time.sleep(0.05)

    def answers(self, timeout: float = 0.5) -> bool:
        """Whether the Worker answers its health check within ``timeout`` seconds."""
        context = ssl._create_unverified_context() if self.tls else None  # our own local server
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=timeout, context=context) as answer:
                return bool(answer.read() == b"ok")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop ``workerd`` (every execution on it ends) and remove its files."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def restart(self) -> None:
        """Stop and start again on the same port and secret (a local ``workerd`` cannot stop
        a program that never yields)."""
        self.stop()
        self.start()

    def __enter__(self) -> LocalWorker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
