"""Approvals over MCP: a served program that pauses for approval asks the client's user, one
elicitation form per pending call (within the call, or as ``input_required`` on a stateless
connection), then resumes with the answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import NoBackChannelError

from ...approvals import Decision, approve, reject
from ...code_mode import CodeMode
from ...results import ExecutionResult, PendingCall
from .tools import _call_result

APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Approve", "description": "Run this call"},
        "reason": {"type": "string", "title": "Reason", "description": "Why not (the program sees it)"},
    },
    "required": ["approve"],
}
"""What an approval elicitation asks the client's user for."""


async def _execute_with_approvals(
    cm: CodeMode,
    execute: Callable[..., Awaitable[ExecutionResult]],
    code: str,
    call_id: str | None,
    ctx: Any,
    params: types.CallToolRequestParams,
) -> types.CallToolResult | types.InputRequiredResult:
    """Run ``code``; a pause for approval asks the client's user, one elicitation form per
    pending call, then resumes. On a connection with a back-channel the forms are sent within
    the call; otherwise (the stateless protocol) the call answers ``input_required`` with the
    forms and the resume token as its ``requestState``, and the client's next call brings the
    answers. A client that cannot elicit gets the paused output."""
    if params.request_state and params.input_responses:
        answers = {key: response for key, response in params.input_responses.items()}
        decisions = _decisions_from(answers)
        result = await cm.resume(params.request_state, decisions)
    else:
        result = await execute(code, tool_call_id=call_id)
    elicitation = types.ClientCapabilities(elicitation=types.ElicitationCapability())
    while result.paused is not None and ctx.session.check_client_capability(elicitation):
        forms = {str(call.call_id): _approval_form(call) for call in result.paused.pending}
        try:
            answers = {
                key: await ctx.session.elicit_form(form.message, form.requested_schema, ctx.request_id)
                for key, form in forms.items()
            }
        except NoBackChannelError:
            requests: types.InputRequests = {
                key: types.ElicitRequest(params=form) for key, form in forms.items()
            }
            return types.InputRequiredResult(input_requests=requests, request_state=result.paused.token)
        result = await cm.resume(result.paused.token, _decisions_from(answers))
    return _call_result(result.to_tool_output())


def _approval_form(call: PendingCall) -> types.ElicitRequestFormParams:
    arguments = json.dumps(call.args, ensure_ascii=False)
    message = f"The program calls {call.function}({arguments}). Approve this call?"
    return types.ElicitRequestFormParams(message=message, requested_schema=APPROVAL_SCHEMA)


def _decisions_from(answers: Mapping[str, Any]) -> dict[int | str, Decision]:
    """A decision per call from the user's answers to the approval forms (keyed by call id)."""
    decisions: dict[int | str, Decision] = {}
    for key, answer in answers.items():
        action = getattr(answer, "action", None)
        content = getattr(answer, "content", None) or {}
        if action == "accept" and content.get("approve") is True:
            decisions[key] = approve()
        else:
            reason = content.get("reason") if action == "accept" else action
            decisions[key] = reject(str(reason or ""))
    return decisions
