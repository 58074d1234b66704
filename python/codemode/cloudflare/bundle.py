"""The Worker script of :class:`~codemode.cloudflare.CloudflareDriver`, as one ES module.

``worker.js`` (the entry: authentication, the WebSocket, the limits) with ``sandbox.js`` (the
main module of each execution's dynamic Worker) in it as a string, and in that the V8 side of
the sandbox prelude (``codemode/v8/adapter.js``) with the prelude and message table every
engine shares. Made from the installed package, so a deployed Worker and the host always agree
on the contract when they come from the same version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .. import _core

_HERE = Path(__file__).resolve().parent
_ADAPTER = _HERE.parent / "v8" / "adapter.js"
_PROGRAM_ERRORS = _HERE.parent / "v8" / "program_errors.mjs"
COMPATIBILITY_DATE = "2025-09-01"
"""The compatibility date of the Worker and of each execution's dynamic Worker."""


def worker_script() -> str:
    """The whole Worker module, ready for ``wrangler deploy`` or a local ``workerd``."""
    messages = json.dumps(_core.MESSAGES)
    adapter = _ADAPTER.read_text(encoding="utf-8").replace("__SHARED_PRELUDE__", _core.SANDBOX_PRELUDE, 1)
    sandbox = (
        (_HERE / "sandbox.js")
        .read_text(encoding="utf-8")
        .replace("__MESSAGES__", messages, 1)
        .replace("__ADAPTER__", adapter, 1)
    )
    program_errors = re.sub(r"^export ", "", _PROGRAM_ERRORS.read_text(encoding="utf-8"), flags=re.M)
    return (
        (_HERE / "worker.js")
        .read_text(encoding="utf-8")
        .replace("__SANDBOX__", json.dumps(sandbox), 1)
        .replace("__MESSAGES__", messages, 1)
        .replace("__PROGRAM_ERRORS__", program_errors, 1)
    )
