"""Typed stubs for the native module (crates/bindings)."""

from typing import Literal, TypedDict, final

__all__ = [
    "DONE_ERROR",
    "DONE_OK",
    "MESSAGES",
    "SANDBOX_PRELUDE",
    "SUSPENDED",
    "WAITING",
    "CancelHandle",
    "Execution",
    "ExecutionLimits",
    "InputChecks",
    "InvalidSchema",
    "JsonSchema",
    "LibraryChecks",
    "StripResult",
    "TypeScriptSyntaxError",
    "check_function_body",
    "code_frame",
    "confine",
    "set_prewarm",
    "strip_types",
]

class TypeScriptSyntaxError(Exception):
    """The program does not parse as TypeScript. ``args`` is ``(message, line, column, frame)``."""

@final
class StripResult:
    """TypeScript with its types stripped."""

    @property
    def javascript(self) -> str: ...
    @property
    def positions_preserved(self) -> bool: ...
    def original_position(self, line: int, column: int) -> tuple[int, int]: ...

def strip_types(source: str) -> StripResult:
    """Strip TypeScript to JavaScript keeping positions; raises TypeScriptSyntaxError."""

def check_function_body(javascript: str) -> None:
    """Raise ``ValueError`` (with the reason) unless ``javascript`` is exactly the body of one
    async function of ``input`` as the engine reads it: code that would close the function it
    is spliced into is refused."""

def code_frame(source: str, line: int, column: int) -> str:
    """A short code frame with a caret under (line, column), both 1-based."""

def set_prewarm(count: int) -> None:
    """Keep ``count`` fresh engines ready on a background thread (0: make each on demand)."""

@final
class InputChecks:
    """Per tool (in the order of the tool names), a JSON Schema as JSON text the engine checks
    each input against (with the validator of ``JsonSchema``), or ``None`` to leave a tool's
    inputs to the host (as for a schema that does not compile). Made once per set of tools and
    handed to each ``Execution``."""

    def __new__(cls, schemas: list[str | None]) -> InputChecks: ...

@final
class LibraryChecks:
    """The validators a host library checks values with (``check(i, value)``, see
    ``Execution(library_checks=...)``): one per JSON Schema as JSON text, compiled through the
    cache ``JsonSchema`` shares. A schema that does not compile makes every check against it
    report that. Made once per list of schemas and handed to each ``Execution``."""

    def __new__(cls, schemas: list[str]) -> LibraryChecks: ...

class InvalidSchema(ValueError):
    """The schema is not valid JSON Schema (it breaks its draft's meta-schema, or a ``$ref``
    cannot be resolved). ``args`` is ``(path, message)``: where in the schema (``".type"``) and
    what is wrong there."""

@final
class JsonSchema:
    """A compiled JSON Schema: the validator the engine checks tool input with (``InputChecks``),
    shared with it when made from the same text (compiled once per process while in use).

    The draft is the one ``$schema`` names (4, 6, 7, 2019-09, 2020-12); 2020-12 when it names
    none or one this validator does not know. ``format`` asserts in drafts 4-7 only. Raises
    ``InvalidSchema``.

    A problem is ``(path, message)``: the path as a program writes it after the value's name
    (``""``, ``".items[1].name"``, ``'["a b"]'``) and what is wrong (``"must be integer"``);
    the first one found is reported."""

    def __new__(cls, schema: str) -> JsonSchema: ...
    def validate(self, value: object) -> tuple[str, str] | None:
        """Check Python JSON data (dict with str keys, list, tuple, str, int, float, bool,
        None); any other value is a problem (``"is not JSON data (a set)"``)."""
    def validate_json(self, text: str) -> tuple[str, str] | None:
        """Check a JSON text (text that does not parse is a problem)."""

@final
class CancelHandle:
    def cancel(self) -> None: ...

LogTuple = tuple[str, str, float, int]
"""(level, text with level prefix, timestamp in ms since the epoch, tool calls made before it);
level ``"report"`` for a line of the report channel"""
Calls = tuple[list[int], list[int], str, bytes]
"""(call ids, tool indexes, the arguments as one JSON array: element i belongs to call ids[i],
checked: byte i is 1 when the engine found argument i valid for its tool's input schema)"""
ErrorTuple = tuple[str, str, str, list[tuple[str, int, int]]]
"""(kind, name, message, frames as (function, line, column), innermost first)"""

MESSAGES: dict[str, str]
"""The messages of the sandbox's own errors, one table for every engine: key -> template
(``{name}`` stands for a value)."""
SANDBOX_PRELUDE: str
"""The sandbox prelude of every engine (JavaScript evaluating to its setup function), with
the message table baked in."""

DONE_OK: Literal[0]
DONE_ERROR: Literal[1]
WAITING: Literal[2]
SUSPENDED: Literal[3]

@final
class ExecutionLimits:
    """The hard limits of one execution, given to :class:`Execution` whole: the seconds left
    until its deadline, the engine's heap and native stack in bytes, the tool calls it may
    start, the console it may write (bytes and lines; past them, cut or fail with
    ``output_limit``), and the largest JSON result in bytes."""

    def __new__(
        cls,
        *,
        timeout: float,
        memory_limit_bytes: int,
        stack_limit_bytes: int,
        max_tool_calls: int,
        max_log_bytes: int,
        max_log_lines: int,
        fail_on_log_overflow: bool,
        max_result_bytes: int,
    ) -> ExecutionLimits: ...
    @property
    def timeout(self) -> float: ...
    @property
    def memory_limit_bytes(self) -> int: ...
    @property
    def stack_limit_bytes(self) -> int: ...
    @property
    def max_tool_calls(self) -> int: ...
    @property
    def max_log_bytes(self) -> int: ...
    @property
    def max_log_lines(self) -> int: ...
    @property
    def fail_on_log_overflow(self) -> bool: ...
    @property
    def max_result_bytes(self) -> int: ...

@final
class Execution:
    """One program in one fresh QuickJS runtime, run step by step."""

    def __new__(
        cls,
        javascript: str,
        tool_names: list[str],
        limits: ExecutionLimits,
        *,
        report_channel: bool = False,
        library: str | None = None,
        input_checks: InputChecks | None = None,
        library_checks: LibraryChecks | None = None,
    ) -> Execution:
        """``report_channel``: hand the program the wrapper parameter ``__codemode_channel``, a
        function whose lines come back among the logs with level ``"report"``. ``library``:
        JavaScript evaluating to a function, run before the program (compiled once per
        process): the parameter becomes what it returns when called with the channel.
        ``input_checks``: the engine checks each call's input against its tool's schema to
        vouch for valid ones (``Calls`` checked). ``library_checks``: the library is called with
        the channel and ``check(i, value)``, a synchronous function of the engine that returns
        ``null`` when ``value`` (as its JSON crosses to the host) is valid by validator ``i``,
        else ``[path, message]`` (the path a suffix to the value's name: ``""``, ``.n``,
        ``[0]``; ``message`` as ``JsonSchema`` words it). Values nested deeper than 128 levels
        are not checked (``is nested deeper than 128 levels``)."""
    def cancel_handle(self) -> CancelHandle: ...
    def step(
        self,
        ids: list[int],
        outcomes: bytes | bytearray,
        answers: str | bytes | bytearray,
        slice: float | None = None,
    ) -> tuple[int, Calls, list[LogTuple], str | ErrorTuple | float | None]:
        """Settle calls, then run until idle. Call ``ids[i]`` ends with ``outcomes[i]`` (0 result,
        1 tool error, 2 invalid arguments) and element ``i`` of the JSON array ``answers`` (the
        result, or the error message).

        Returns (status, calls, logs, payload): status 0 done (payload: result JSON), 1 failed
        (payload: ErrorTuple), 2 waiting (payload: seconds to the next timer or None), 3
        suspended (the step was still running when ``slice`` seconds were over; it stopped where
        it was: finish it with ``resume``, on any thread; payload None).
        """
    def resume(self) -> tuple[int, Calls, list[LogTuple], str | ErrorTuple | float | None]:
        """Finish a suspended step (to its end, on this thread); returns what ``step`` does."""
    def close(self) -> None: ...

class ConfinementReport(TypedDict):
    """Which OS confinement layers hold after :func:`confine`."""

    no_new_privs: bool
    landlock: Literal["full", "partial", "none"]
    """How far Landlock is enforced (``partial``: an older kernel knows only some rules)."""
    landlock_abi: int
    """The kernel's Landlock ABI version (0: none)."""
    seccomp: bool
    rlimits: bool
    capabilities_dropped: bool
    threads: int
    """Threads of the process when it was confined (Landlock covers only the calling one)."""
    problems: list[str]
    """One line per layer that does not hold in full, with the reason."""

def confine(
    read_paths: list[str],
    exec_paths: list[str] = ...,
    *,
    allow_exec: bool = False,
    allow_socketpair: bool = False,
    address_space_bytes: int | None = None,
    cpu_seconds: int | None = None,
    open_files: int | None = 64,
    file_size_bytes: int | None = 0,
    drop_capabilities: bool = True,
) -> ConfinementReport:
    """Confine this process, irreversibly, as far as the kernel allows; call it while the
    process has one thread. Applies rlimits (``address_space_bytes``, ``cpu_seconds``,
    ``open_files``, ``file_size_bytes``; no core dumps), empties the capability sets,
    sets ``PR_SET_NO_NEW_PRIVS``, then Landlock (read-only beneath ``read_paths``, execute only
    ``exec_paths``, no writes, no TCP, no signals out) and a seccomp filter (no sockets or
    network calls, no fork, no exec unless ``allow_exec``, no ptrace or access to other
    processes, signals only to itself, ``clone3`` -> ENOSYS). Never raises for a layer the
    kernel refuses: the report says what holds."""
