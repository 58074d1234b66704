"""codemode: give any LLM one tool, ``execute_typescript``.

The model writes a short TypeScript program; codemode strips the types, runs it in a fresh,
hard-limited QuickJS sandbox, and exposes the application's tools inside it as typed async
functions ``external_<name>(input)``.
"""

from ._core import TypeScriptSyntaxError
from .approvals import InvalidResumeToken, ResumeError, approve, override, reject
from .cloudflare import CloudflareContext, CloudflareDriver
from .code_mode import CodeMode, compile_typescript, create_code_mode
from .decorators import PydanticTool, tool
from .driver import IsolateContext, IsolateDriver, Program
from .events import Event, EventCallback
from .limits import Limits
from .quickjs import QuickJSContext, QuickJSDriver
from .results import ErrorKind, ExecutionError, ExecutionResult, Paused, PendingCall
from .tools import InvalidArguments, Tool, ToolBinding, js_identifier
from .v8 import V8Context, V8Driver

__all__ = [
    "CloudflareContext",
    "CloudflareDriver",
    "CodeMode",
    "ErrorKind",
    "Event",
    "EventCallback",
    "ExecutionError",
    "ExecutionResult",
    "InvalidArguments",
    "InvalidResumeToken",
    "IsolateContext",
    "IsolateDriver",
    "Limits",
    "Paused",
    "PendingCall",
    "Program",
    "PydanticTool",
    "QuickJSContext",
    "QuickJSDriver",
    "ResumeError",
    "Tool",
    "ToolBinding",
    "TypeScriptSyntaxError",
    "V8Context",
    "V8Driver",
    "approve",
    "compile_typescript",
    "create_code_mode",
    "js_identifier",
    "override",
    "reject",
    "tool",
]
