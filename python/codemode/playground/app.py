"""The playground's web server: a Starlette app serving the page and its API.

Streams are AG-UI events encoded by ag_ui's ``EventEncoder`` (Server-Sent Events): program
runs through :func:`codemode.integrations.ag_ui.ag_ui_events`, chat turns through pydantic-ai's
``AGUIAdapter``, and the skills panel's changes as ``CUSTOM`` events.

A program run here is like any other: the engine's limits hold (the page may lower them, or
raise them up to :data:`MAX_TIMEOUT` and :data:`MAX_MEMORY_MB`), and a hostile program ends as
its error while the server goes on.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from ag_ui.core import BaseEvent, CustomEvent, ToolCallResultEvent
from ag_ui.encoder import EventEncoder
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..integrations.ag_ui import SSE_CONTENT_TYPE, ag_ui_events
from ..skills import SkillNotFoundError, SkillStore
from ..tools import ToolBinding
from .chat import Chat
from .engines import Engines
from .offline import TOP_PRODUCTS
from .skills_panel import SkillsPanel

STATIC = Path(__file__).parent / "static"
BUNDLE = STATIC / "playground.js"
MAX_TIMEOUT = 120.0
"""The longest timeout (seconds) the page may ask for."""
MAX_MEMORY_MB = 2048.0
"""The largest engine heap (MiB) the page may ask for."""
TOKEN_HEADER = "x-codemode-token"
TOKEN_COOKIE = "codemode_token"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]


class RunRequest(BaseModel):
    """``POST /api/run``: a program, the engine, and the limits for this run."""

    model_config = ConfigDict(populate_by_name=True)

    code: str
    engine: str = "quickjs"
    timeout: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT)
    memory_limit_mb: float | None = Field(default=None, alias="memoryLimitMb", ge=1, le=MAX_MEMORY_MB)


class ChatRequest(BaseModel):
    """``POST /api/chat``: the conversation's thread id and the user's message."""

    model_config = ConfigDict(populate_by_name=True)

    thread_id: str = Field(alias="threadId", min_length=1, max_length=200)
    message: str = Field(min_length=1)
    engine: str = "quickjs"


class ResetRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    thread_id: str = Field(alias="threadId")


class SkillRunRequest(BaseModel):
    input: Any = Field(default_factory=dict)


@dataclass
class Playground:
    """What the routes share: the tools on every engine, the chat, the skills store."""

    engines: Engines
    chat: Chat
    panel: SkillsPanel
    store: SkillStore
    store_url: str
    example: str

    def info(self) -> dict[str, Any]:
        cm = self.engines.code_mode("quickjs")
        limits = cm.limits
        return {
            "engines": [engine.to_json() for engine in self.engines.listed],
            "defaults": {"timeout": limits.timeout, "memoryLimitMb": limits.memory_limit_mb},
            "maxima": {"timeout": MAX_TIMEOUT, "memoryLimitMb": MAX_MEMORY_MB},
            "declarations": cm.declarations,
            "systemPrompt": cm.system_prompt,
            "example": self.example,
            "tools": [tool.name for tool in self.engines.tools],
            "chat": self.chat.info(),
            "store": self.store_url,
        }


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request, model: type[BaseModel]) -> Any:
    """The request's JSON body as ``model``; ``ValueError`` with a readable reason if it is not."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as e:
        reasons = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors())
        raise ValueError(reasons) from None


def _sse(events: AsyncGenerator[BaseEvent, None]) -> StreamingResponse:
    encoder = EventEncoder()

    async def encoded() -> AsyncIterator[str]:
        async with aclosing(events):
            async for event in events:
                yield encoder.encode(event)

    return StreamingResponse(encoded(), media_type=SSE_CONTENT_TYPE, headers={"cache-control": "no-store"})


async def _run_events(playground: Playground, run: RunRequest) -> AsyncGenerator[BaseEvent, None]:
    """The run's AG-UI events, with one more before ``RUN_FINISHED``: ``CUSTOM``
    ``playground:result`` (the result or the error with its frame, the engine's duration, the
    tool calls, and the wall time seen by the server)."""
    cm = playground.engines.code_mode(run.engine)
    overrides: dict[str, Any] = {}
    if run.timeout is not None:
        overrides["timeout"] = run.timeout
    if run.memory_limit_mb is not None:
        overrides["memory_limit_mb"] = run.memory_limit_mb
    started = time.perf_counter()
    output: dict[str, Any] = {}
    duration_ms: float | None = None
    calls = 0
    events = ag_ui_events(
        cm, run.code, tool_call_id=f"run_{uuid.uuid4().hex[:12]}", run_id=str(uuid.uuid4()), **overrides
    )
    async with aclosing(events):
        async for event in events:
            if isinstance(event, CustomEvent) and isinstance(event.value, dict):
                if event.name == "code_mode:external_call":
                    calls += 1
                elif event.name == "code_mode:execution_finished":
                    duration_ms = event.value.get("duration_ms")
            elif isinstance(event, ToolCallResultEvent):
                output = orjson.loads(cast(str, event.content))  # codemode's results are JSON text
                yield event
                value = {
                    "engine": run.engine,
                    "success": output.get("success") is True,
                    "result": output.get("result"),
                    "error": output.get("error"),
                    "logs": output.get("logs", []),
                    "durationMs": duration_ms,
                    "toolCalls": calls,
                    "wallMs": (time.perf_counter() - started) * 1000,
                }
                yield CustomEvent(name="playground:result", value=value)
                continue
            yield event


def _routes(playground: Playground) -> list[Route | Mount]:
    """Every route of the playground: the page, the API of the editor and the chat, the API of
    the skills panel, and the static files."""
    return [
        Route("/", _page, name="page"),
        *_api_routes(playground),
        *_skill_routes(playground),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def _page(request: Request) -> Response:
    """The playground's page (503 while its bundle is not built)."""
    if not BUNDLE.is_file():
        return Response(
            "The playground's page is not built: run python3 python/codemode/playground/build_web.py",
            status_code=503,
            media_type="text/plain",
        )
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


def _api_routes(playground: Playground) -> list[Route]:
    """The engines' info, a program's run, and the chat's turns and reset."""

    async def info(request: Request) -> Response:
        return JSONResponse(playground.info())

    async def run(request: Request) -> Response:
        try:
            body = await _body(request, RunRequest)
            playground.engines.code_mode(body.engine)  # unknown or missing: refused before streaming
        except ValueError as e:
            return _error(str(e))
        return _sse(_run_events(playground, body))

    async def chat(request: Request) -> Response:
        try:
            body = await _body(request, ChatRequest)
            cm = playground.engines.code_mode(body.engine)
        except ValueError as e:
            return _error(str(e))
        return _sse(playground.chat.turn(cm, body.thread_id, body.message))

    async def chat_reset(request: Request) -> Response:
        try:
            body = await _body(request, ResetRequest)
        except ValueError as e:
            return _error(str(e))
        playground.chat.reset(body.thread_id)
        return JSONResponse({"reset": True})

    return [
        Route("/api/info", info),
        Route("/api/run", run, methods=["POST"]),
        Route("/api/chat", chat, methods=["POST"]),
        Route("/api/chat/reset", chat_reset, methods=["POST"]),
    ]


def _skill_routes(playground: Playground) -> list[Route]:
    """The skills panel: the list and its changes as they happen, and a skill's run, approval and
    deletion."""

    async def skills(request: Request) -> Response:
        return JSONResponse({"skills": await playground.panel.skills()})

    async def skills_stream(request: Request) -> Response:
        async def events() -> AsyncGenerator[BaseEvent, None]:
            async for listed in playground.panel.changes():
                yield CustomEvent(name="playground:skills", value={"skills": listed})

        return _sse(events())

    async def skill_run(request: Request) -> Response:
        try:
            body = await _body(request, SkillRunRequest)
            return JSONResponse(
                await playground.panel.run(
                    playground.engines.code_mode("quickjs"), _name(request), body.input
                )
            )
        except SkillNotFoundError as e:
            return _error(str(e), 404)
        except ValueError as e:
            return _error(str(e))

    async def skill_approve(request: Request) -> Response:
        try:
            return JSONResponse(await playground.panel.approve(_name(request)))
        except SkillNotFoundError as e:
            return _error(str(e), 404)

    async def skill_delete(request: Request) -> Response:
        if not await playground.panel.delete(_name(request)):
            return _error(f"no skill {_name(request)!r}", 404)
        return JSONResponse({"deleted": True})

    return [
        Route("/api/skills", skills),
        Route("/api/skills/stream", skills_stream),
        Route("/api/skills/{name}/run", skill_run, methods=["POST"]),
        Route("/api/skills/{name}/approve", skill_approve, methods=["POST"]),
        Route("/api/skills/{name}", skill_delete, methods=["DELETE"]),
    ]


def _name(request: Request) -> str:
    return str(request.path_params["name"])


class TokenMiddleware:
    """Every request must carry the token: the ``X-Codemode-Token`` header, the ``token`` query
    parameter, or the cookie set when the page was opened with ``?token=``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = (
            request.headers.get(TOKEN_HEADER)
            or request.query_params.get("token")
            or request.cookies.get(TOKEN_COOKIE)
            or ""
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await _error("a valid token is required (it was printed when the playground started)", 401)(
                scope, receive, send
            )
            return
        if request.query_params.get("token"):

            async def with_cookie(message: Any) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                await send(message)

            await self.app(scope, receive, with_cookie)
            return
        await self.app(scope, receive, send)


def create_app(
    tools: Sequence[ToolBinding],
    store: SkillStore,
    *,
    store_url: str = "memory:",
    token: str | None = None,
    loopback_only: bool = True,
    model: str | None = None,
    example: str | None = None,
    cloudflare_url: str | None = None,
    cloudflare_secret: str | None = None,
) -> Starlette:
    """The playground as an ASGI app over ``tools`` and the skills of ``store``.

    ``token``: required on every request (give one whenever the server listens beyond
    loopback). ``loopback_only``: refuse requests whose ``Host`` is not a loopback name (a web
    page elsewhere can't reach the server through DNS rebinding). ``model``: the chat's
    pydantic-ai model name (``None``: the offline demo model). ``cloudflare_url`` and
    ``cloudflare_secret``: a Worker to offer as an engine (default: from the environment).
    """
    names = [tool.name for tool in tools]
    playground = Playground(
        engines=Engines(tools, cloudflare_url, cloudflare_secret),
        chat=Chat(store, names, model),
        panel=SkillsPanel(store),
        store=store,
        store_url=store_url,
        example=example if example is not None else (TOP_PRODUCTS if "getTopProducts" in names else ""),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await playground.engines.aclose()
            await store.aclose()

    middleware: list[Middleware] = []
    if loopback_only:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS))
    if token is not None:
        middleware.append(Middleware(TokenMiddleware, token=token))
    app = Starlette(routes=_routes(playground), middleware=middleware, lifespan=lifespan)
    app.state.playground = playground
    return app
