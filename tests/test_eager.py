"""Eager tasks (``codemode.eager``): the first step of a tool call's coroutine runs at once, as
its own current task, on the public API (Python 3.12+) and by hand (3.10, 3.11)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any

import pytest

from codemode import eager

VALUE: contextvars.ContextVar[str] = contextvars.ContextVar("value", default="outer")


def test_the_public_api_is_used_where_python_has_it() -> None:
    built_in = sys.version_info >= (3, 12)
    assert (eager.first_step is eager.start_eagerly) == built_in


def test_a_coroutine_that_finishes_in_its_first_step_schedules_nothing() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        before = len(asyncio.all_tasks())

        async def answer() -> int:
            return 42

        assert eager.start_eagerly(loop, answer()) == (True, 42)
        assert len(asyncio.all_tasks()) == before

    asyncio.run(main())


def test_its_first_step_runs_as_its_own_task_which_carries_it_on() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        caller = asyncio.current_task()
        seen: list[Any] = []

        async def tool() -> str:
            seen.append(asyncio.current_task())
            await asyncio.sleep(0.01)
            seen.append(asyncio.current_task())
            return "done"

        done, task = eager.start_eagerly(loop, tool())
        assert not done and isinstance(task, asyncio.Task)
        assert seen == [task] and task is not caller
        assert asyncio.current_task() is caller  # the caller is current again
        assert await task == "done"
        assert seen == [task, task]

    asyncio.run(main())


def test_an_exception_in_the_first_step_is_raised_to_the_caller() -> None:
    async def main() -> None:
        async def broken() -> None:
            raise LookupError("no such sku")

        with pytest.raises(LookupError, match="no such sku"):
            eager.start_eagerly(asyncio.get_running_loop(), broken())

    asyncio.run(main())


def test_context_changes_stay_in_the_coroutine() -> None:
    async def main() -> None:
        async def tool() -> str:
            VALUE.set("inner")
            await asyncio.sleep(0)
            return VALUE.get()

        done, task = eager.start_eagerly(asyncio.get_running_loop(), tool())
        assert not done
        assert VALUE.get() == "outer"
        assert await task == "inner"

    asyncio.run(main())


def test_cancelling_the_task_reaches_the_suspended_coroutine() -> None:
    async def main() -> None:
        cleaned: list[str] = []

        async def slow() -> None:
            try:
                await asyncio.sleep(10)
            finally:
                cleaned.append("finally")

        done, task = eager.start_eagerly(asyncio.get_running_loop(), slow())
        assert not done
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == ["finally"]

    asyncio.run(main())


def test_many_first_steps_run_outside_the_current_task() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        caller = asyncio.current_task()
        tasks: list[Any] = []

        async def tool(i: int) -> int:
            tasks.append(asyncio.current_task())
            await asyncio.sleep(0)
            return i

        with eager.outside_current_task(loop):
            outcomes = [eager.first_step(loop, tool(i)) for i in range(3)]
        assert asyncio.current_task() is caller
        assert len({id(t) for t in tasks}) == 3 and caller not in tasks
        assert [await task for _, task in outcomes] == [0, 1, 2]

    asyncio.run(main())
