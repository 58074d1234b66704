"""Eager tasks: a tool call's coroutine runs its first step at once, as the current task of
its own, with its own copy of the context.

If it finishes there, no task is ever scheduled (the common case for tools that answer from
memory); if it suspends, that same task carries it on, so ``current_task()``, cancel scopes and
timeouts entered in the first step stay valid.

Python 3.12 has this built in (``asyncio.Task(..., eager_start=True)``). On 3.10 and 3.11 the
same steps are taken by hand, with asyncio's private ``_enter_task``/``_leave_task`` and
``_current_tasks`` (present, with these signatures, in every 3.10 and 3.11 release); the
version gate below keeps newer Pythons on the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
from collections.abc import Coroutine, Generator
from typing import Any

__all__ = ["first_step", "outside_current_task", "start_eagerly"]

# A tool call's coroutine runs its first step at once, as the current task of its own, with
# its own copy of the context. If it finishes there, no task is ever scheduled (the common
# case for tools that answer from memory); if it suspends, that same task carries it on, so
# `current_task()`, cancel scopes and timeouts entered in the first step stay valid.

if sys.version_info >= (3, 12):

    def start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
        """``(True, result)`` if ``coro`` finished in its first step (its exception, if it
        failed, is raised), else ``(False, task)``."""
        task = asyncio.Task(coro, loop=loop, eager_start=True)
        if task.done():
            return True, task.result()
        return False, task

    first_step = start_eagerly

    def outside_current_task(loop: asyncio.AbstractEventLoop) -> contextlib.AbstractContextManager[None]:
        """Nothing to do: eager tasks switch the current task themselves."""
        return contextlib.nullcontext()

else:  # Python 3.10 / 3.11 have no eager tasks: the same steps by hand.
    _enter_task = asyncio.tasks._enter_task
    _leave_task = asyncio.tasks._leave_task
    # what current_task() reads, without the call (private: typeshed does not list it)
    _current_tasks = asyncio.tasks._current_tasks  # type: ignore[attr-defined]

    class _Continue:
        """Awaitable that carries on a coroutine suspended after its first step."""

        __slots__ = ("coro", "yielded")

        def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
            self.coro = coro
            self.yielded = yielded

        def __await__(self) -> Generator[Any, Any, Any]:
            coro, value = self.coro, self.yielded
            while True:
                try:
                    sent = yield value
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:
                    try:
                        value = coro.throw(exc)
                    except StopIteration as stop:
                        return stop.value
                else:
                    try:
                        value = coro.send(sent)
                    except StopIteration as stop:
                        return stop.value

    async def _resume(rest: _Continue) -> Any:
        return await rest

    def first_step(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
        """As :func:`start_eagerly`, with no task current on ``loop`` (see
        :func:`outside_current_task`)."""
        # The task object exists (uninitialised) before the first step so that it is the
        # current task during that step; it is only initialised, and so scheduled, if the
        # coroutine suspends.
        task: asyncio.Task[Any] = asyncio.Task.__new__(asyncio.Task)
        context = contextvars.copy_context()
        _enter_task(loop, task)
        try:
            yielded = context.run(coro.send, None)
        except StopIteration as stop:
            return True, stop.value
        finally:
            _leave_task(loop, task)
        rest = _resume(_Continue(coro, yielded))
        if sys.version_info >= (3, 11):
            asyncio.Task.__init__(task, rest, loop=loop, context=context)
        else:  # no context= before 3.11: the task copies the context it is made in
            context.run(asyncio.Task.__init__, task, rest, loop=loop)
        return False, task

    @contextlib.contextmanager
    def outside_current_task(loop: asyncio.AbstractEventLoop) -> Generator[None, None, None]:
        """The running task stops being ``loop``'s current task for the block (so many first
        steps can run one after another), and is current again after it."""
        current = _current_tasks.get(loop)
        if current is not None:
            _leave_task(loop, current)
        try:
            yield
        finally:
            if current is not None:
                _enter_task(loop, current)

    def start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> tuple[bool, Any]:
        """``(True, result)`` if ``coro`` finished in its first step (its exception, if it
        failed, is raised), else ``(False, task)``."""
        current = _current_tasks.get(loop)  # as outside_current_task, without its cost
        if current is not None:
            _leave_task(loop, current)
        try:
            return first_step(loop, coro)
        finally:
            if current is not None:
                _enter_task(loop, current)
