"""Chat mode: a conversation with a model through codemode's pydantic-ai integration.

Each turn selects the store's skills for the message (:func:`codemode.skills.with_skills`),
gives the agent a :class:`~codemode.integrations.pydantic_ai.CodeModeToolset` over them, and
streams the run as AG-UI events with pydantic-ai's own ``AGUIAdapter``. The execution events
of each tool call (``code_mode:*``) come through the same stream, in the shape
:func:`codemode.integrations.ag_ui.to_ag_ui` gives them in program mode.

The model comes from ``--model`` / ``$CODEMODE_PLAYGROUND_MODEL`` (any pydantic-ai model name,
e.g. ``openai:gpt-5``, ``anthropic:claude-sonnet-4-5``, ``ollama:llama3.2``), else from the keys
in the environment (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` for an
OpenAI-compatible server); with none, the offline demo model plays its scenarios.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import BaseEvent, CustomEvent, RunAgentInput, UserMessage
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from pydantic_ai.ui.ag_ui import AGUIAdapter

from ..code_mode import CodeMode
from ..events import Event
from ..integrations.ag_ui import to_ag_ui
from ..integrations.pydantic_ai import CodeModeToolset
from ..skills import SkillStore, with_skills
from .offline import DEMO_TOOLS, MODEL_LABEL, SCENARIOS, offline_model

MODEL_ENV = "CODEMODE_PLAYGROUND_MODEL"
INSTRUCTIONS = (
    "You are the assistant of a small online store. Answer with the tools: write one program that "
    "does the whole job where you can. Be brief."
)


def model_from_environment(explicit: str | None = None) -> str | None:
    """The pydantic-ai model name to chat with, or ``None`` for the offline demo model."""
    name = explicit or os.environ.get(MODEL_ENV)
    if name:
        return name
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic:claude-sonnet-4-5"
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return "openai:gpt-5"
    return None


@dataclass
class Chat:
    """The conversations of one playground: their histories, by thread id."""

    store: SkillStore
    tool_names: list[str]
    model: str | None = None
    threads: dict[str, list[ModelMessage]] = field(default_factory=dict)

    @property
    def offline(self) -> bool:
        return self.model is None

    def info(self) -> dict[str, Any]:
        """What the page shows of the chat: the model, and the offline scenarios."""
        demo = all(name in self.tool_names for name in DEMO_TOOLS)
        return {
            "offline": self.offline,
            "model": MODEL_LABEL if self.offline else self.model,
            "scenarios": [s.to_json() for s in SCENARIOS] if self.offline and demo else [],
        }

    def reset(self, thread_id: str) -> None:
        self.threads.pop(thread_id, None)

    async def turn(self, cm: CodeMode, thread_id: str, message: str) -> AsyncGenerator[BaseEvent, None]:
        """One user message and the agent's answer, as AG-UI events."""
        history = self.threads.setdefault(thread_id, [])
        skills = await with_skills(cm, store=self.store, messages=[message])
        toolset = CodeModeToolset(cm, skills=skills)
        agent: Agent[None, str] = Agent(
            offline_model() if self.model is None else self.model,
            instructions=INSTRUCTIONS,
            toolsets=[toolset],
        )
        run_input = RunAgentInput(
            thread_id=thread_id,
            run_id=str(uuid.uuid4()),
            state=None,
            messages=[UserMessage(id=str(uuid.uuid4()), role="user", content=message)],
            tools=[],
            context=[],
            forwarded_props=None,
        )

        def keep(result: Any) -> None:
            history[:] = result.all_messages()

        adapter = AGUIAdapter(agent=agent, run_input=run_input)
        async for event in adapter.run_stream(message_history=list(history), on_complete=keep):
            yield _codemode_shape(event)


def _codemode_shape(event: BaseEvent) -> BaseEvent:
    """A forwarded ``CodeModeEvent`` (pydantic-ai's custom event ``code_mode``) as the AG-UI
    event program mode streams: ``CUSTOM`` named ``code_mode:*`` with the execution's value."""
    if isinstance(event, CustomEvent) and event.name == "code_mode" and isinstance(event.value, dict):
        name, value = event.value.get("event_name"), event.value.get("value")
        if isinstance(name, str) and isinstance(value, dict):
            return to_ag_ui(Event(name, value))  # type: ignore[arg-type]
    return event
