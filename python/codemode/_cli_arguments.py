"""The values of the ``codemode`` command's options, checked as they are parsed: seconds of
``--timeout``, MiB of ``--memory-mb`` and a ``--port``; a wrong one is argparse's usage error."""

from __future__ import annotations

import argparse
import math

MAX_TIMEOUT = 86_400.0
"""The largest ``--timeout``: a day, in seconds."""
MAX_MEMORY_MB = 65_536.0
"""The largest ``--memory-mb``: 64 GiB."""


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def seconds(text: str) -> float:
    """A ``--timeout``: more than 0 seconds, at most :data:`MAX_TIMEOUT`."""
    value = _number(text)
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {text}"
        )
    return value


def mebibytes(text: str) -> float:
    """A ``--memory-mb``: from 1 MiB to :data:`MAX_MEMORY_MB`."""
    value = _number(text)
    if not 1 <= value <= MAX_MEMORY_MB:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_MEMORY_MB:g} MiB, not {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, not {text}")
    return value
