"""Tool handlers: whether one is async, and the guard that keeps its errors' text from the
program (``redact_errors``)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .errors import InvalidArgumentsError

logger = logging.getLogger("codemode")

Handler = Callable[[Any], Any | Awaitable[Any]]
"""Receives the validated input (the object :meth:`codemode.Tool.validate` returns: a dict for
schema tools, a model instance for pydantic tools); returns (or resolves to) a JSON value."""


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine: a coroutine function, or an object whose
    ``__call__`` is one. Sync handlers run in a worker thread."""
    call_method = type(fn).__dict__.get("__call__")
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call_method)


def guard(handler: Handler, sandbox_name: str) -> Handler:
    """``handler`` with its exceptions (but :class:`~codemode.InvalidArgumentsError`) logged on
    the ``codemode`` logger and replaced by a generic ``<sandbox_name> failed``."""
    if is_async(handler):

        async def guarded_async(args: Any) -> Any:
            try:
                return await handler(args)
            except InvalidArgumentsError:
                raise
            except Exception as e:
                raise _redacted(sandbox_name, e) from None

        return guarded_async

    def guarded(args: Any) -> Any:
        try:
            return handler(args)
        except InvalidArgumentsError:
            raise
        except Exception as e:
            raise _redacted(sandbox_name, e) from None

    return guarded


def _redacted(sandbox_name: str, error: Exception) -> RuntimeError:
    logger.error("%s failed", sandbox_name, exc_info=error)
    return RuntimeError(f"{sandbox_name} failed")
