"""codemode: give any LLM one tool, ``execute_typescript``.

The model writes a short TypeScript program; codemode strips the types, runs it in a fresh,
hard-limited QuickJS sandbox, and exposes the application's tools inside it as typed async
functions ``external_<name>(input)``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import drivers
from .code_mode import CodeMode, compile_typescript, create_code_mode
from .decorators import tool
from .errors import (
    CodemodeError,
    InvalidArguments,
    InvalidArgumentsError,
    InvalidSchemaError,
    TypeScriptSyntaxError,
)
from .events import Event
from .limits import LimitOverrides, Limits
from .quickjs import QuickJSContext, QuickJSDriver
from .results import ErrorKind, ExecutionError, ExecutionResult, Frame, Paused, PendingCall
from .tools import Tool, js_identifier

if TYPE_CHECKING:
    from .approvals import InvalidResumeToken, ResumeError, approve, override, reject
    from .cloudflare import CloudflareContext, CloudflareDriver
    from .v8 import V8Context, V8Driver

_LAZY = {
    "InvalidResumeToken": ".approvals",
    "ResumeError": ".approvals",
    "approve": ".approvals",
    "override": ".approvals",
    "reject": ".approvals",
    "CloudflareContext": ".cloudflare",
    "CloudflareDriver": ".cloudflare",
    "V8Context": ".v8",
    "V8Driver": ".v8",
}
"""Names imported on first use: what a first execution on the embedded engine does not need
(approvals, the other engines) stays out of ``import codemode``'s time."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'codemode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CloudflareContext",
    "CloudflareDriver",
    "CodeMode",
    "CodemodeError",
    "ErrorKind",
    "Event",
    "ExecutionError",
    "ExecutionResult",
    "Frame",
    "InvalidArguments",
    "InvalidArgumentsError",
    "InvalidResumeToken",
    "InvalidSchemaError",
    "LimitOverrides",
    "Limits",
    "Paused",
    "PendingCall",
    "QuickJSContext",
    "QuickJSDriver",
    "ResumeError",
    "Tool",
    "TypeScriptSyntaxError",
    "V8Context",
    "V8Driver",
    "approve",
    "compile_typescript",
    "create_code_mode",
    "drivers",
    "js_identifier",
    "override",
    "reject",
    "tool",
]
