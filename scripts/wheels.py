"""Build, check and try out codemode's wheels.

    python3 scripts/wheels.py build [--target T ...] [--sdist] [--dev] [--install EXTRAS]
    python3 scripts/wheels.py check [WHEEL]
    python3 scripts/wheels.py smoke [WHEEL]

``build`` makes abi3 wheels (one per target, any CPython >= 3.10) into ``dist/`` with maturin,
linked by zig (from the ``ziglang`` wheel) against an old glibc, so that pip takes them on every
Linux with glibc 2.28 or newer (RHEL 8+, Debian 10+, Amazon Linux 2023), or on musl (Alpine).
Release profile, stripped. Targets: ``x86_64`` (the default), ``aarch64``, or ``all`` (both);
a target's Rust standard library comes from ``rustup target add``. ``x86_64-musl`` and
``aarch64-musl`` build, but zig links them against ``libc.so`` where Alpine's loader has
``libc.musl-<arch>.so.1``, and ``auditwheel`` refuses them: the musllinux wheels are built in
the musllinux_1_2 container by ``.github/workflows/wheels.yml``.
``--sdist`` adds the source distribution. ``--install EXTRAS`` then installs this machine's
wheel with those extras (``playground``, ``all``...) into the running Python.

The V8 engine addon (``python -m codemode.v8.build_engine``) is C++ built against this
machine's libstdc++ (glibc 2.35 and GCC 12 here): a release wheel leaves it out, and with it
would no longer be ``manylinux_2_28``. ``--dev`` keeps it in (for this machine's tests).

``check`` runs ``auditwheel show`` on a Linux wheel and fails unless its platform tag is
manylinux_2_28 (or musllinux_1_2) or older and the wheel is at most 6 MB.

``smoke`` installs a wheel into a fresh virtual environment with no Rust, Node or compiler on
the ``PATH``, and runs the demo (``codemode run`` on the demo tools) and a short program
through the Python API from it; with ``--bench``, also the wheel's ``bench`` extra and
``codemode bench --quick`` (its table, JSON, plots and HTML report; engines only).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
V8_ADDON = ROOT / "python" / "codemode" / "v8" / "engine"
MAX_WHEEL_BYTES = 6_000_000
"""The budget of a wheel: 6 MB (decimal, as pip and PyPI print sizes)."""
BUILD_TOOLS = ("maturin==1.16.0", "ziglang==0.13.0.post1")
CHECK_TOOLS = ("auditwheel==6.8.2",)
CONSTRAINTS = ROOT / "constraints.txt"

TARGETS = {
    "x86_64": ("x86_64-unknown-linux-gnu", "manylinux_2_28"),
    "aarch64": ("aarch64-unknown-linux-gnu", "manylinux_2_28"),
    "x86_64-musl": ("x86_64-unknown-linux-musl", "musllinux_1_2"),
    "aarch64-musl": ("aarch64-unknown-linux-musl", "musllinux_1_2"),
}
OLDEST = {"manylinux": (2, 28), "musllinux": (1, 2)}
"""The newest platform tag a wheel may need, per libc."""


def run(*command: str | Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, env=env, cwd=cwd)


def ensure(requirements: tuple[str, ...]) -> None:
    """Python packages this script runs (maturin and zig: no system toolchain but Rust's)."""
    missing = []
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        try:
            from importlib.metadata import version as installed

            if installed(name) == version:
                continue
        except Exception:
            pass
        missing.append(requirement)
    if missing:
        run(sys.executable, "-m", "pip", "install", "-q", *missing)


def host_target() -> str:
    return {"x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[platform.machine()]


@contextlib.contextmanager
def without_v8_addon(keep: bool) -> Iterator[None]:
    """Move the V8 addon out of the package while a release wheel is built."""
    if keep or not V8_ADDON.exists():
        yield
        return
    aside = Path(tempfile.mkdtemp(prefix="codemode-v8-addon-"))
    shutil.move(str(V8_ADDON), aside / "engine")
    try:
        yield
    finally:
        shutil.move(str(aside / "engine"), V8_ADDON)
        aside.rmdir()


def build(targets: list[str], sdist: bool, dev: bool, install: str | None) -> None:
    ensure(BUILD_TOOLS)
    DIST.mkdir(exist_ok=True)
    if "all" in targets:
        targets = ["x86_64", "aarch64"]
    with without_v8_addon(keep=dev):
        for name in targets:
            triple, compatibility = TARGETS[name]
            run("rustup", "target", "add", triple)
            for old in DIST.glob(f"codemode-*{name.split('-')[0]}*.whl"):
                if ("musl" in name) == ("musllinux" in old.name):
                    old.unlink()
            run(
                sys.executable, "-m", "maturin", "build", "--release", "--strip", "--zig",
                "--target", triple, "--compatibility", compatibility, "--out", DIST,
            )  # fmt: skip
        if sdist:
            run(sys.executable, "-m", "maturin", "sdist", "--out", DIST)
    if install is not None:
        wheel = this_machines_wheel()
        extras = f"[{install}]" if install else ""
        # --force-reinstall of codemode only: the same version number is a new build
        run(sys.executable, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel))
        pinned = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
        run(sys.executable, "-m", "pip", "install", "-q", *pinned, f"codemode{extras} @ {wheel.as_uri()}")


def this_machines_wheel() -> Path:
    found = sorted(DIST.glob(f"codemode-*-manylinux_*_{host_target()}.whl"))
    if not found:
        raise SystemExit(f"no wheel for this machine in {DIST}: run `python3 scripts/wheels.py build` first")
    return found[-1]


def check(wheel: Path) -> None:
    """auditwheel's verdict and the size."""
    ensure(CHECK_TOOLS)
    size = wheel.stat().st_size
    print(f"{wheel.name}: {size / 1e6:.2f} MB")
    shown = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    print(shown)
    match = re.search(r'platform tag:\s*"(manylinux|musllinux)_(\d+)_(\d+)_', " ".join(shown.split()))
    if match is None:
        raise SystemExit(f"auditwheel gave no platform tag for {wheel.name}")
    libc, major, minor = match.group(1), int(match.group(2)), int(match.group(3))
    problems = []
    if (major, minor) > OLDEST[libc]:
        oldest = "_".join(map(str, OLDEST[libc]))
        problems.append(f"it needs {libc}_{major}_{minor}, newer than {libc}_{oldest}")
    if size > MAX_WHEEL_BYTES:
        problems.append(f"it is {size / 1e6:.2f} MB, over {MAX_WHEEL_BYTES / 1e6:.2f} MB")
    if problems:
        raise SystemExit(f"{wheel.name}: " + "; ".join(problems))
    print(f"ok: {libc}_{major}_{minor}, {size / 1e6:.2f} MB")


SMOKE = """
import anyio, json, codemode

@codemode.tool
async def add(a: int, b: int) -> int:
    '''Add two numbers.'''
    return a + b

async def main():
    cm = codemode.create_code_mode([add], timeout=5)
    ok = await cm.execute("return await Promise.all([1, 2, 3].map((n) => external_add({ a: n, b: n })))")
    slow = await cm.execute("while (true) {}", timeout=0.2)
    bad = await cm.execute("return (")
    print(json.dumps([ok.result, slow.error.kind, bad.error.kind]))
    assert ok.result == [2, 4, 6] and slow.error.kind == "timeout" and bad.error.kind == "syntax"

anyio.run(main)
"""


def smoke(wheel: Path, bench: bool) -> None:
    """Install ``wheel`` in a fresh venv, no toolchain on the PATH, and use it."""
    with tempfile.TemporaryDirectory(prefix="codemode-smoke-") as directory:
        venv = Path(directory) / "venv"
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        # only the venv and the basic system directories: no cargo, rustc, node, cc
        env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": directory, "LANG": "C.UTF-8"}
        for tool in ("cargo", "rustc", "node", "npm", "zig"):
            if shutil.which(tool, path=env["PATH"]):
                print(f"note: {tool} is in /usr/bin on this machine; the wheel must not need it")
        run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel), env=env)
        run(venv / "bin" / "codemode", "--version", env=env, cwd=Path(directory))
        demo = ROOT / "python" / "codemode" / "demo_top_products.ts"
        run(venv / "bin" / "codemode", "run", demo, "--tools", "codemode.demo", env=env, cwd=Path(directory))
        run(python, "-c", SMOKE, env=env, cwd=Path(directory))
        shown = subprocess.run(
            [python, "-c", "import codemode, json; print(json.dumps(codemode.__file__))"],
            env=env, cwd=directory, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert str(venv) in json.loads(shown), shown  # the venv's codemode, not the source tree's
        if bench:
            pinned = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
            run(python, "-m", "pip", "install", "-q", *pinned, f"codemode[bench] @ {wheel.as_uri()}", env=env)
            out = Path(directory) / "bench"
            run(venv / "bin" / "codemode", "bench", "--quick", "--peers", "none", "--out", out, env=env)
            made = sorted(path.name for path in out.rglob("*") if path.is_file())
            print("bench report:", ", ".join(made))
            assert "bench.json" in made and "report.html" in made, made
            assert any(name.endswith(".png") for name in made), made
    print("smoke: ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    make = actions.add_parser("build", help="build wheels into dist/")
    make.add_argument("--target", action="append", choices=[*TARGETS, "all"], help="default: this machine's")
    make.add_argument("--sdist", action="store_true", help="also the source distribution")
    make.add_argument("--dev", action="store_true", help="keep the V8 addon (this machine only)")
    make.add_argument(
        "--install", metavar="EXTRAS", help="then install this machine's wheel with these extras"
    )
    for name in ("check", "smoke"):
        action = actions.add_parser(name)
        action.add_argument("wheel", nargs="?", type=Path, help="default: this machine's wheel in dist/")
        if name == "smoke":
            action.add_argument("--bench", action="store_true", help="also codemode bench --quick")
    args = parser.parse_args()
    if args.action == "build":
        build(args.target or [host_target()], args.sdist, args.dev, args.install)
    elif args.action == "check":
        check(args.wheel or this_machines_wheel())
    else:
        smoke(args.wheel or this_machines_wheel(), args.bench)


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    main()
