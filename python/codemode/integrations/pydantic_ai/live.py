"""Live toolsets, whose tools are listed at each step of a run: what one step offers
(:class:`_Step`) and the code mode of each distinct tool list (:class:`_CodeModes`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool

from ...code_mode import CodeMode
from ...tools import Tool, ToolBinding, js_identifier
from .calls import _live_handler

logger = logging.getLogger("codemode.integrations.pydantic_ai")  # the integration's logger


def _signature(tool_def: ToolDefinition) -> tuple[str, ...]:
    return (
        tool_def.name,
        tool_def.description or "",
        json.dumps(tool_def.parameters_json_schema, sort_keys=True, default=str),
        json.dumps(tool_def.return_schema, sort_keys=True, default=str),
        tool_def.kind,
    )


class _CodeModes:
    """The code modes of a base code mode plus the live tools of a step, one per distinct tool
    list (so a step whose tools look like an earlier one's reuses its sandbox context and its
    paused runs)."""

    def __init__(self, base: CodeMode) -> None:
        self.base = base
        self.approvals = base.approvals
        self.cache: dict[tuple[tuple[str, ...], ...], CodeMode] = {}

    def for_tools(self, tool_defs: Sequence[ToolDefinition]) -> CodeMode:
        if not tool_defs:
            return self.base
        key = tuple(_signature(tool_def) for tool_def in tool_defs)
        code_mode = self.cache.get(key)
        if code_mode is None:
            code_mode = self.cache[key] = self._build(tool_defs)
        return code_mode

    def _build(self, tool_defs: Sequence[ToolDefinition]) -> CodeMode:
        base = self.base
        bindings: list[ToolBinding] = []
        for tool_def in tool_defs:
            try:
                binding = Tool.from_schema(
                    tool_def.name,
                    tool_def.description or "",
                    tool_def.parameters_json_schema,
                    tool_def.return_schema or None,
                    _live_handler(tool_def.name, "external_" + js_identifier(tool_def.name)),
                    requires_approval=tool_def.kind == "unapproved",
                )
            except ValueError as e:  # an invalid schema: one unusable tool must not take the others down
                logger.warning("skipping tool %r: it cannot be declared in the sandbox: %s", tool_def.name, e)
                continue
            bindings.append(binding)
        if self.approvals is None and any(binding.requires_approval for binding in bindings):
            from ...approvals import Approvals, MemoryExecutionStore, signing_key

            self.approvals = Approvals(MemoryExecutionStore(), signing_key(None))
        if self.approvals is not None:
            from ...approvals import intercepted

            bindings = [intercepted(binding) for binding in bindings]
        if base.tracer is not None:
            from ...tracing import traced

            bindings = [traced(binding, base.tracer) for binding in bindings]
        return CodeMode(
            [*base.tools.values(), *bindings],
            base.driver,
            base.limits,
            prompt=base.prompt_mode,
            approvals=self.approvals,
            tracer=base.tracer,
        )

    async def aclose(self) -> None:
        for code_mode in self.cache.values():
            await code_mode.aclose()
        await self.base.aclose()


@dataclass
class _Step:
    """What one step of a run offers: its code mode, the live tools its programs call (with the
    toolsets that listed them) and the live tools left as direct tools."""

    code_mode: CodeMode
    sandboxed: dict[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = field(default_factory=dict)
    passthrough: dict[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = field(default_factory=dict)


_StepKey = tuple[str | None, int]
"""A step of a run: the run's id and its step number."""
