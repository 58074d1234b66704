"""What codemode raises: every exception it raises to its users is a :class:`CodemodeError`.

A failed *program* is not an exception: it is data, an :class:`~codemode.ExecutionResult`
with ``success=False`` and an :class:`~codemode.ExecutionError`. The tree is for mistakes
around the program: a tool defined with a bad schema, code that does not parse (from
:func:`codemode.compile_typescript`), a skill that cannot be registered, a resume that cannot
go on. Each class also derives from the built-in exception its callers used to catch
(``ValueError``, ``LookupError``...), so ``except ValueError`` keeps working.

::

    CodemodeError
    ├── TypeScriptSyntaxError          code that does not parse
    ├── InvalidSchemaError             a tool's JSON Schema is not valid (ValueError)
    ├── InvalidArgumentsError          arguments that do not match a tool's input schema
    │   └── skills.SkillRegistrationError
    ├── skills.InvalidSkillName        (ValueError)
    ├── skills.SkillNotFoundError      (LookupError)
    ├── approvals.ResumeError          (ValueError)
    ├── approvals.InvalidResumeToken   (ValueError)
    ├── approvals.ApprovalUnavailable  (RuntimeError)
    ├── integrations.mcp.McpToolError
    └── integrations.mcp.McpConnectError
"""

from __future__ import annotations

from . import _core


class CodemodeError(Exception):
    """The base of every exception codemode raises to its users."""


class TypeScriptSyntaxError(CodemodeError, _core.TypeScriptSyntaxError):
    """The program does not parse as TypeScript: ``message`` says why, at ``line`` and
    ``column`` (1-based) of the program, and ``frame`` shows that line with a caret.
    (``args`` is ``(message, line, column, frame)``, as the stripper raises it.)"""

    def __init__(self, message: str, line: int, column: int, frame: str) -> None:
        super().__init__(message, line, column, frame)
        self.message = message
        self.line = line
        self.column = column
        self.frame = frame

    def __str__(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})"


class InvalidSchemaError(CodemodeError, ValueError):
    """A JSON Schema that is not valid: it breaks its draft's meta-schema, or a ``$ref`` cannot
    be resolved. ``path`` is where in the schema (``".properties.n.type"``) and ``message``
    what is wrong there."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __reduce__(self) -> tuple[type[InvalidSchemaError], tuple[str, str]]:
        return type(self), (self.message, self.path)


class InvalidArgumentsError(CodemodeError):
    """A tool was called with arguments that do not match its input schema.

    Raise it from a handler too: the call then rejects inside the program with an
    ``InvalidArgumentsError`` (the same name the program sees, instead of a ``ToolError``)
    carrying the message."""


InvalidArguments = InvalidArgumentsError
"""The former name of :class:`InvalidArgumentsError`."""
