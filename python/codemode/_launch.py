"""Confine this process, then exec a program in it: the launcher of confined engine hosts.

Run by :func:`codemode.confinement.confined_command` as ``python -I -S _launch.py CORE
POLICY REPORT_FD -- PROGRAM ARGS...``: it loads the native module by path, applies
:func:`codemode._core.confine` with ``POLICY`` (JSON; exec allowed, Landlock then lets it run
only the files of ``exec_paths``), writes the confinement report as one JSON line to
``REPORT_FD`` (``-1``: nowhere) and replaces itself with the program, which inherits every
layer. Nothing else of the host is imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys


def main(argv: list[str]) -> None:
    core_path, policy_json, report_fd = argv[:3]
    if argv[3:4] != ["--"] or len(argv) < 5:
        raise SystemExit("usage: _launch.py CORE POLICY REPORT_FD -- PROGRAM ARGS...")
    program = argv[4:]
    spec = importlib.util.spec_from_file_location("codemode._core", core_path)
    assert spec is not None and spec.loader is not None
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    report = core.confine(**json.loads(policy_json), allow_exec=True)
    fd = int(report_fd)
    if fd >= 0:
        os.write(fd, (json.dumps(report) + "\n").encode())
        os.close(fd)
    os.execv(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
