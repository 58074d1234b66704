"""The codemode execution events in an agent run's event stream: :class:`CodeModeEvent`, the
custom event each one is forwarded as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pydantic_core
from pydantic_ai import CustomEvent

from ...events import Event, EventName


@dataclass(kw_only=True)
class CodeModeEvent(CustomEvent):
    """A codemode execution event, forwarded into the agent run's event stream.

    ``event_name`` is the codemode event name (``code_mode:execution_started``,
    ``code_mode:external_call``, ...) and ``value`` its payload (with ``toolCallId``, the
    ``execute_typescript`` call's id, and ``timestamp``). pydantic-ai registers it as the
    custom event ``code_mode``.
    """

    event_name: str
    value: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> Any:
        """What UI adapters send to a frontend: the AG-UI ``CUSTOM`` event that
        :func:`codemode.integrations.ag_ui.to_ag_ui` makes of this codemode event (``name`` the
        codemode event name, ``value`` its payload), so pydantic-ai's ``AGUIAdapter`` and
        codemode's own ``ag_ui_events`` reach a frontend in one shape. Without the AG-UI package:
        ``{"name": ..., "value": ...}``."""
        try:
            from ..ag_ui import to_ag_ui
        except ImportError:
            return {"name": self.event_name, "value": pydantic_core.to_jsonable_python(self.value)}
        return to_ag_ui(Event(cast(EventName, self.event_name), self.value))
