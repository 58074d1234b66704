"""The skills panel's side of the server: the store's skills as JSON, and a watch that tells
every open panel when they change, whoever changed them (the chat, the panel, the CLI, or
another process sharing the store)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ..code_mode import CodeMode
from ..results import ExecutionResult
from ..skills import Skill, SkillNotFoundError, SkillRuntime, SkillStore
from ..skills.sandbox import load_closure

POLL_SECONDS = 0.5
"""How often an open panel's watch reads the store's index (changes made elsewhere)."""


def skill_json(skill: Skill) -> dict[str, Any]:
    """One skill as the panel shows it."""
    return {
        "name": skill.name,
        "description": skill.description,
        "trustLevel": skill.trust_level,
        "version": skill.version,
        "stats": {
            "runs": skill.stats.executions,
            "successes": skill.stats.successes,
            "failures": skill.stats.executions - skill.stats.successes,
            "successRate": skill.stats.success_rate,
            "lastRunAt": skill.stats.last_run_at.isoformat() if skill.stats.last_run_at else None,
        },
        "code": skill.code,
        "inputSchema": skill.input_schema,
        "outputSchema": skill.output_schema,
        "usageHints": skill.usage_hints,
        "dependsOn": skill.depends_on,
        "updatedAt": skill.updated_at.isoformat(),
    }


def result_json(result: ExecutionResult) -> dict[str, Any]:
    """An execution's result for the page (the error with its position and frame)."""
    return {
        "success": result.success,
        "result": result.result,
        "error": result.error.model_dump() if result.error is not None else None,
        "logs": result.logs,
        "durationMs": result.duration_ms,
        "toolCalls": result.tool_calls,
    }


class SkillsPanel:
    """The store's skills for the page: list, run, approve, delete, and a stream of changes."""

    def __init__(self, store: SkillStore) -> None:
        self.store = store
        self._changed = anyio.Event()

    async def skills(self) -> list[dict[str, Any]]:
        """Every skill (its latest version), by name."""
        listed = []
        for summary in sorted(await self.store.list_index(), key=lambda s: s.name):
            skill = await self.store.get(summary.name)
            if skill is not None:
                listed.append(skill_json(skill))
        return listed

    def poke(self) -> None:
        """Wake the open panels now (after a change made through the server)."""
        self._changed.set()
        self._changed = anyio.Event()

    async def run(self, cm: CodeMode, name: str, input: Any) -> dict[str, Any]:
        """Run skill ``name`` on ``input`` (its run is recorded in the store, as in a program)."""
        skill = await self.store.get(name)
        if skill is None:
            raise SkillNotFoundError(f"no skill {name!r}")
        # a run from the panel never pauses: a call in it that needs approval is refused
        runtime = SkillRuntime(cm, await load_closure(self.store, [skill]), store=self.store, pausing=False)
        result = await runtime.run(name, input, tool_call_id=f"panel_{name}")
        self.poke()
        return result_json(result)

    async def approve(self, name: str) -> dict[str, Any]:
        """A person's approval: the skill's latest version becomes ``trusted``."""
        skill = await self.store.set_trust(name, "trusted")
        self.poke()
        return skill_json(skill)

    async def delete(self, name: str) -> bool:
        deleted = await self.store.delete(name)
        self.poke()
        return deleted

    async def changes(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The skills now, then again each time they change (polled, and woken by :meth:`poke`)."""
        last = ""
        while True:
            skills = await self.skills()
            digest = hashlib.sha256(json.dumps(skills, sort_keys=True, default=str).encode()).hexdigest()
            if digest != last:
                last = digest
                yield skills
            with anyio.move_on_after(POLL_SECONDS):
                await self._changed.wait()
