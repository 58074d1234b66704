"""OS confinement of engine hosts, shared by the engines.

The QuickJS workers confine themselves (``_worker.py`` calls :func:`codemode._core.confine`
after its imports). A host that is another program, such as the Node.js process of the V8
engine, is started through :func:`confined_command`: a small launcher confines itself and
then executes the program, which inherits every layer (Landlock, seccomp, rlimits, no new
privileges, no capabilities). Exec stays allowed by seccomp for that one exec, and Landlock
lets only the files of ``exec_paths`` be executed: the program itself and its ELF loader.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

from . import _core

_LAUNCHER = Path(__file__).resolve().parent / "_launch.py"
_SYSTEM_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache")
"""What a dynamically linked program reads to start: its shared libraries."""


def elf_interpreter(program: str | os.PathLike[str]) -> str | None:
    """The dynamic loader an ELF executable names (``PT_INTERP``), or None (static, not ELF)."""
    try:
        with open(program, "rb") as f:
            header = f.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit only
                return None
            order = "<" if header[5] == 1 else ">"
            (phoff,) = struct.unpack_from(order + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                entry = f.read(phentsize)
                (p_type,) = struct.unpack_from(order + "I", entry, 0)
                if p_type == 3:  # PT_INTERP
                    (offset,) = struct.unpack_from(order + "Q", entry, 8)
                    (size,) = struct.unpack_from(order + "Q", entry, 32)
                    f.seek(offset)
                    return f.read(size).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def confined_command(
    argv: Sequence[str],
    *,
    read_paths: Sequence[str | os.PathLike[str]] = (),
    exec_paths: Sequence[str | os.PathLike[str]] = (),
    system_libraries: bool = True,
    allow_socketpair: bool = False,
    address_space_mb: int | None = None,
    cpu_seconds: int | None = None,
    open_files: int | None = 256,
    report_fd: int = -1,
) -> list[str]:
    """The command line that runs ``argv`` confined (pass it to ``subprocess.Popen`` with an
    empty environment and ``close_fds``; add ``report_fd`` to ``pass_fds`` to receive the
    confinement report there as one JSON line before the program starts).

    The program (``argv[0]``, resolved) and its ELF loader are the only executable files,
    besides ``exec_paths``; it may read beneath ``read_paths`` (its script, its modules)
    and, with ``system_libraries``, the system's shared libraries. Nothing else: no writes,
    no network, no new processes (the launcher's own exec aside), no signals out. V8
    reserves far more address space than it uses: leave ``address_space_mb`` unset for it.
    Node.js reads its OpenSSL configuration at start (``/etc/ssl/openssl.cnf``): give it
    ``--openssl-config=`` an empty file beneath ``read_paths``.
    """
    program = str(Path(argv[0]).resolve())
    executables = [program, *(str(p) for p in exec_paths)]
    loader = elf_interpreter(program)
    if loader is not None:
        executables.append(loader)
    readable = [str(Path(p).resolve()) for p in read_paths]
    if system_libraries:
        readable += [p for p in _SYSTEM_LIBRARIES if os.path.exists(p)]
    policy = {
        "read_paths": readable,
        "exec_paths": executables,
        "allow_socketpair": allow_socketpair,
        "address_space_bytes": address_space_mb << 20 if address_space_mb else None,
        "cpu_seconds": cpu_seconds,
        "open_files": open_files,
    }
    core = str(Path(_core.__file__).resolve())
    return [
        sys.executable,
        "-I",
        "-S",
        str(_LAUNCHER),
        core,
        json.dumps(policy),
        str(report_fd),
        "--",
        program,
        *argv[1:],
    ]
