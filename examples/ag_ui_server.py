"""A minimal AG-UI endpoint: POST a TypeScript program, get its live timeline as Server-Sent Events.

A plain ASGI app (no web framework). Needs ``pip install 'codemode[ag-ui]'``; to serve it, also
``pip install uvicorn`` and run::

    uvicorn --app-dir examples ag_ui_server:app        # or: python examples/ag_ui_server.py

    curl -N localhost:8000/execute -H 'content-type: application/json' \\
      -d '{"typescriptCode": "const t = await external_getTopProducts({ limit: 2 })\\nreturn t"}'

The request body is ``{"typescriptCode": string}``, optionally with ``toolCallId``, ``runId`` and
``threadId`` (new ones are made up when absent). The response is one AG-UI run: ``RUN_STARTED``,
the ``execute_typescript`` tool call (``TOOL_CALL_START``/``ARGS``/``END``), the execution's
``CUSTOM`` events as they happen, ``TOOL_CALL_RESULT`` and ``RUN_FINISHED``. A client that
disconnects cancels the program. The tools are the demo store of ``codemode.demo``; build an app
over your own with ``create_app(codemode.create_code_mode(tools))``.

With skills, build it over a :class:`codemode.skills.SkillContext` (``create_app(await
with_skills(cm, store=store, messages=...))``): programs call ``skill_<name>``, and a body
``{"toolName": string, "arguments": object}`` runs another tool of the context as the model
called it (``register_skill``, a skill as a tool of its own), with its events
(``code_mode:skill_registered``...) in the stream.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import aclosing
from typing import Any

import anyio
from ag_ui.encoder import EventEncoder

import codemode
from codemode.demo import TOOLS
from codemode.integrations.ag_ui import SSE_CONTENT_TYPE, ag_ui_tool_events, sse_stream
from codemode.skills import SkillContext

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20
logger = logging.getLogger(__name__)


class BadRequest(Exception):
    """A request this endpoint refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(cm: codemode.CodeMode | SkillContext, *, path: str = "/execute") -> ASGIApp:
    """An ASGI app serving ``POST {path}`` over ``cm`` (or a skill context); it closes the
    code mode at lifespan shutdown."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(cm if isinstance(cm, codemode.CodeMode) else cm.runtime.cm, receive, send)
        elif scope["type"] == "http":
            await _http(cm, path, scope, receive, send)

    return app


async def _http(
    cm: codemode.CodeMode | SkillContext, path: str, scope: Scope, receive: Receive, send: Send
) -> None:
    try:
        if scope["path"] != path:
            raise BadRequest(404, "not found")
        if scope["method"] != "POST":
            raise BadRequest(405, "use POST")
        request = _parse_request(await _read_body(receive))
    except BadRequest as e:
        await _send_json(send, e.status, {"error": str(e)})
        return
    ids = {
        "tool_call_id": request.get("toolCallId") or f"call_{uuid.uuid4().hex}",
        "run_id": request.get("runId") or str(uuid.uuid4()),
        "thread_id": request.get("threadId") or str(uuid.uuid4()),
    }
    if "toolName" in request:
        await _send_sse(
            _encoded(ag_ui_tool_events(cm, request["toolName"], request["arguments"], **ids)), receive, send
        )
    else:
        await _send_sse(sse_stream(cm, request["typescriptCode"], **ids), receive, send)


async def _encoded(events: AsyncIterator[Any]) -> AsyncIterator[str]:
    encoder = EventEncoder()
    async with aclosing(events):
        async for event in events:
            yield encoder.encode(event)


def _parse_request(body: bytes) -> dict[str, Any]:
    """``{"typescriptCode": str, "toolCallId"?: str, "runId"?: str, "threadId"?: str}``, or
    ``{"toolName": str, "arguments": object, ...}``."""
    try:
        request = json.loads(body)
    except ValueError as e:
        raise BadRequest(400, f"the body is not JSON: {e}") from e
    if not isinstance(request, dict):
        raise BadRequest(422, 'the body must be {"typescriptCode": string}')
    if "toolName" in request:
        if not isinstance(request["toolName"], str) or not isinstance(request.get("arguments", {}), dict):
            raise BadRequest(422, 'a tool call is {"toolName": string, "arguments": object}')
        request.setdefault("arguments", {})
    elif not isinstance(request.get("typescriptCode"), str):
        raise BadRequest(422, 'the body must be {"typescriptCode": string}')
    for key in ("toolCallId", "runId", "threadId"):
        if not isinstance(request.get(key, ""), str):
            raise BadRequest(422, f"{key} must be a string")
    return request


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest(400, "the client went away")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(413, "the body is too large")
        if not message.get("more_body", False):
            return bytes(body)


async def _send_sse(chunks: AsyncIterator[str], receive: Receive, send: Send) -> None:
    """Stream ``chunks``; a client disconnect cancels them (and so the program)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", SSE_CONTENT_TYPE.encode()),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
        async with aclosing(chunks):
            try:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})
            except Exception:  # the stream already ended with RUN_ERROR
                logger.exception("execution failed on the host")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        tg.cancel_scope.cancel()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _send_json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 405:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(cm: codemode.CodeMode, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await cm.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


app = create_app(codemode.create_code_mode(TOOLS))

if __name__ == "__main__":
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("pip install uvicorn to serve this example") from None
    uvicorn.run(app, host="127.0.0.1", port=8000)
