"""Start an engine process: apply its limits and confinement, then become ``node``.

    python -S -E _launch.py '<json config>' <node> <node arguments...>

This is the one place where an engine process is confined before any of its code runs:
resource limits (no core files, a cap on data memory), and the OS confinement of
``codemode._core`` when the build has it (``_core.confine``). It runs as a bare script
(no ``site``, no package import) so that it costs an engine's start-up a few milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _load_core(path: str) -> Any:
    """``codemode._core`` loaded from its file, without importing the package."""
    if not path:
        return None
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("codemode._core", path)
    spec = importlib.util.spec_from_file_location("codemode._core", path, loader=loader)
    if spec is None:
        return None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _limit(config: dict[str, Any]) -> None:
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    data = config.get("data_bytes")
    if data:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard == resource.RLIM_INFINITY or hard > data:
            resource.setrlimit(resource.RLIMIT_DATA, (data, data))


# What the dynamic loader reads to start node (its shared libraries).
_LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-linux-x86-64.so.2")
_SYSTEM_READ = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache", "/etc/ssl/openssl.cnf")


def _confine(config: dict[str, Any], argv: list[str]) -> None:
    """The OS confinement, where this build of ``codemode._core`` provides it: node may read
    its own files and the system's libraries, execute itself only, and nothing else (no
    network, no writes, no processes). What does not hold on this kernel is said on stderr."""
    core = _load_core(config.get("core", ""))
    confine = getattr(core, "confine", None)
    if confine is None:
        return
    node = argv[0]
    readable = [node, *(a.split("=", 1)[1] for a in argv if a.startswith("--allow-fs-read="))]
    readable += [path for path in _SYSTEM_READ if os.path.exists(path)]
    loaders = [path for path in _LOADERS if os.path.exists(path)]  # the kernel executes them too
    report = confine(read_paths=readable, exec_paths=[node, *loaders], allow_exec=True, open_files=256)
    problems = report.get("problems") if isinstance(report, dict) else None
    if problems:
        sys.stderr.write("codemode: engine confinement incomplete: " + "; ".join(map(str, problems)) + "\n")


def main() -> None:
    config = json.loads(sys.argv[1])
    argv = sys.argv[2:]
    inject = config.get("inject")
    if inject:
        # Tests only: the engine runs this module in its own Node.js realm at start-up, to
        # show what the confinement denies to code that got that far.
        argv = [argv[0], f"--allow-fs-read={inject}", f"--import={inject}", *argv[1:]]
    _limit(config)
    _confine(config, argv)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
