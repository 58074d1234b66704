"""What every integration takes: a :class:`~codemode.CodeMode`, or a request's
:class:`~codemode.skills.SkillContext` (from :func:`codemode.skills.with_skills`).

A context's tools (``execute_typescript`` with ``skill_*``, the skill management tools and
the skills as direct tools) and its prompt change when a skill is registered during the
conversation: the integrations read them through these functions each time they need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

from typing_extensions import TypeIs

from ..code_mode import CodeMode
from ..execute_tool import ModelTool

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..results import ExecutionResult
    from ..skills import SkillContext

Source = Union[CodeMode, "SkillContext"]
"""A code mode, or a skill context over one."""


def is_skill_context(source: object) -> TypeIs[SkillContext]:
    """Whether ``source`` is a :class:`~codemode.skills.SkillContext` (without importing skills)."""
    if isinstance(source, CodeMode):
        return False
    from ..skills import SkillContext

    return isinstance(source, SkillContext)


def code_mode_of(source: Source) -> CodeMode:
    """The code mode that runs ``source``'s programs."""
    if isinstance(source, CodeMode):
        return source
    if is_skill_context(source):
        return source.runtime.cm
    raise TypeError(f"expected a CodeMode or a SkillContext, got {type(source).__name__}")


def tools_of(source: Source) -> list[ModelTool]:
    """The tools to give the model now: ``cm.model_tools``, or the context's ``tools``."""
    return list(source.model_tools if isinstance(source, CodeMode) else source.tools)


def prompt_of(source: Source) -> str:
    """The system prompt now (a context's declares its skills and says how to manage them)."""
    return source.system_prompt


def execute_tool_of(source: Source) -> ModelTool:
    """``source``'s ``execute_typescript`` (a context's runs programs with its skills)."""
    return code_mode_of(source).tool if isinstance(source, CodeMode) else source.tools[0]


def executor_of(source: Source) -> Callable[..., Awaitable[ExecutionResult]]:
    """The ``execute(code, *, tool_call_id=, on_event=)`` that runs a program of ``source``."""
    return source.execute if isinstance(source, CodeMode) else source.runtime.execute


def listing(source: Source) -> tuple[tuple[str, str], ...]:
    """The tools offered now, by name and description (to see whether the list changed)."""
    return tuple((tool.name, tool.description) for tool in tools_of(source))
