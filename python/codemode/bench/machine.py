"""The machine and software a benchmark ran on, recorded with its numbers."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; elsewhere ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total_mib() -> float | None:
    """Total memory in MiB (Linux ``/proc/meminfo``), or None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages, or None where unsupported."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def codemode_version() -> str:
    """codemode's version (its distribution metadata), and where it was imported from."""
    import codemode

    try:
        version = importlib.metadata.version("codemode")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{version} ({Path(codemode.__file__).resolve().parent})"


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, codemode version, date and load average."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "memory_mib": memory_total_mib(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "codemode": codemode_version(),
        "date": now(),
        "loadavg_start": loadavg(),
    }


def summary_line(machine: dict[str, Any]) -> str:
    """One line: CPU x cores | OS | Python | codemode."""
    return (
        f"{machine['cpu']} x{machine['cores']} | {machine['os']} | {machine['python']} | "
        f"codemode {machine['codemode'].split(' ')[0]}"
    )
