"""``with_skills(selector="llm", model=...)`` with the model of each integration.

Every kind of model ``completion_for`` takes is a real object of its framework or SDK over a
fake backend that answers the selection prompt: pydantic-ai's ``FunctionModel``, LangChain's
fake chat model and fake LLM, an OpenAI Agents SDK ``Model`` subclass, the OpenAI and Anthropic
clients over an httpx ``MockTransport``, and, for model names (which the frameworks resolve to
their own clients), a local HTTP server speaking the OpenAI API found through
``OPENAI_BASE_URL``. The model's answer decides the selection; an answer that is not a JSON
list of names, or a failing call, falls back to BM25.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from codemode.skills import (
    BM25SkillSelector,
    LLMSkillSelector,
    MemorySkillStore,
    ProviderModel,
    completion_for,
    with_skills,
)
from codemode.skills.completions import is_pydantic_ai_name

from ..conftest import child_python_path
from .test_selection import filled, make_cm

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "What's the weather in Paris? Then email it to me"}]
CHOSEN = ["send_email", "weather_report"]
"""What the model answers: not BM25's choice (it ranks the weather skills first, and the pair)."""


@dataclass
class Backend:
    """What the fake model behind a kind answers (an exception: the call fails), and the
    prompts it was asked."""

    answer: str | Exception
    prompts: list[str] = field(default_factory=list)

    def reply(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


MakeModel = Callable[[Backend, pytest.FixtureRequest], Any]


# -- a plain async callable


def make_callable(backend: Backend, request: pytest.FixtureRequest) -> Any:
    async def complete(prompt: str) -> str:
        return backend.reply(prompt)

    return complete


# -- pydantic-ai


def _function_model(backend: Backend) -> Any:
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, UserPromptPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = next(p for p in messages[-1].parts if isinstance(p, UserPromptPart))
        return ModelResponse(parts=[TextPart(backend.reply(str(prompt.content)))])

    return FunctionModel(answer)


def make_pydantic_ai_model(backend: Backend, request: pytest.FixtureRequest) -> Any:
    pytest.importorskip("pydantic_ai")
    return _function_model(backend)


def make_pydantic_ai_agent(backend: Backend, request: pytest.FixtureRequest) -> Any:
    pydantic_ai = pytest.importorskip("pydantic_ai")
    return pydantic_ai.Agent(_function_model(backend), instructions="You answer questions about the weather.")


def make_pydantic_ai_name(backend: Backend, request: pytest.FixtureRequest) -> Any:
    pytest.importorskip("pydantic_ai.models.openai")
    request.getfixturevalue("openai_server").backend = backend
    return "openai:gpt-4o-mini"


# -- LangChain


def _recorder(on_prompt: Callable[[str], None]) -> Any:
    """A LangChain callback handler that passes on the prompt each model run starts with."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Prompts(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            on_prompt(messages[0][-1].content)

        def on_llm_start(self, serialized: Any, prompts: list[str], **kwargs: Any) -> None:
            on_prompt(prompts[0])

    return Prompts()


def make_langchain_chat_model(backend: Backend, request: pytest.FixtureRequest) -> Any:
    pytest.importorskip("langchain_core")
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    pending: list[str] = []

    def answers() -> Iterator[AIMessage]:
        while True:
            yield AIMessage(content=backend.reply(pending.pop()))

    return GenericFakeChatModel(messages=answers(), callbacks=[_recorder(pending.append)])


def make_langchain_llm(backend: Backend, request: pytest.FixtureRequest) -> Any:
    pytest.importorskip("langchain_core")
    from langchain_core.language_models import FakeListLLM

    # FakeListLLM answers from its list; with none left it raises (IndexError): the failing call
    responses = [] if isinstance(backend.answer, Exception) else [backend.answer]
    return FakeListLLM(responses=responses, callbacks=[_recorder(backend.prompts.append)])


# -- OpenAI Agents SDK


def _agents_model(backend: Backend) -> Any:
    from agents import ModelResponse, Usage
    from agents.models.interface import Model
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    class ScriptedModel(Model):
        async def get_response(
            self, system_instructions: str | None, input: str | list[Any], *args: Any, **kwargs: Any
        ) -> ModelResponse:
            items = [{"content": input}] if isinstance(input, str) else input
            prompt = items[-1]["content"]
            content = [ResponseOutputText(type="output_text", text=backend.reply(prompt), annotations=[])]
            message = ResponseOutputMessage(
                type="message", id="msg_1", role="assistant", status="completed", content=content
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    return ScriptedModel()


@pytest.fixture
def _agents_without_tracing() -> None:
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)  # no trace export (to OpenAI) from the tests


def make_agents_model(backend: Backend, request: pytest.FixtureRequest) -> Any:
    request.getfixturevalue("_agents_without_tracing")
    return _agents_model(backend)


def make_agents_agent(backend: Backend, request: pytest.FixtureRequest) -> Any:
    request.getfixturevalue("_agents_without_tracing")
    from agents import Agent

    return Agent(
        name="support", instructions="You answer questions about orders.", model=_agents_model(backend)
    )


def make_agents_name(backend: Backend, request: pytest.FixtureRequest) -> Any:
    request.getfixturevalue("_agents_without_tracing")
    request.getfixturevalue("openai_server").backend = backend
    return "gpt-4o-mini"


# -- OpenAI and Anthropic clients over an httpx MockTransport


def _http_error() -> tuple[int, dict[str, Any]]:
    return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "model down"}}


def _mock_transport(
    backend: Backend, answer: Callable[[dict[str, Any], str], dict[str, Any]], httpx: Any
) -> Any:
    """A MockTransport of ``httpx`` (the openai SDK's) or ``httpx2`` (the anthropic SDK's)."""

    def handle(request: Any) -> Any:
        body = json.loads(request.content)
        prompt = body["messages"][-1]["content"]
        try:
            text = backend.reply(prompt)
        except Exception:
            status, error = _http_error()
            return httpx.Response(status, json=error)
        return httpx.Response(200, json=answer(body, text))

    return httpx.MockTransport(handle)


def _chat_completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _anthropic_message(body: dict[str, Any], text: str) -> dict[str, Any]:
    assert body["max_tokens"] == 300  # ProviderModel's bound
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


def make_openai_client(backend: Backend, request: pytest.FixtureRequest) -> Any:
    openai = pytest.importorskip("openai")
    import httpx

    transport = _mock_transport(backend, _chat_completion, httpx)
    client = openai.AsyncOpenAI(
        api_key="test", max_retries=0, http_client=httpx.AsyncClient(transport=transport)
    )
    return (client, "gpt-4o-mini")


def make_openai_sync_client(backend: Backend, request: pytest.FixtureRequest) -> Any:
    openai = pytest.importorskip("openai")
    import httpx

    transport = _mock_transport(backend, _chat_completion, httpx)
    client = openai.OpenAI(api_key="test", max_retries=0, http_client=httpx.Client(transport=transport))
    return ProviderModel(client, "gpt-4o-mini")


def make_anthropic_client(backend: Backend, request: pytest.FixtureRequest) -> Any:
    anthropic = pytest.importorskip("anthropic")
    httpx = pytest.importorskip("httpx2")  # the anthropic SDK's HTTP client

    transport = _mock_transport(backend, _anthropic_message, httpx)
    client = anthropic.AsyncAnthropic(
        api_key="test", max_retries=0, http_client=httpx.AsyncClient(transport=transport)
    )
    return ProviderModel(client, "claude-haiku-4-5", max_tokens=300)


def make_anthropic_sync_client(backend: Backend, request: pytest.FixtureRequest) -> Any:
    anthropic = pytest.importorskip("anthropic")
    httpx = pytest.importorskip("httpx2")  # the anthropic SDK's HTTP client

    transport = _mock_transport(backend, _anthropic_message, httpx)
    client = anthropic.Anthropic(api_key="test", max_retries=0, http_client=httpx.Client(transport=transport))
    return ProviderModel(client, "claude-haiku-4-5", max_tokens=300)


# -- a local OpenAI API for model names (the frameworks build their clients from the environment)


class OpenAIServer:
    """Chat Completions and Responses over HTTP on 127.0.0.1, answered by ``backend``."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = server.answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")  # no connection outlives its test's event loop
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        assert self.backend is not None
        if path.endswith("/chat/completions"):
            prompt, make = body["messages"][-1]["content"], _chat_completion
        elif path.endswith("/responses"):
            items = body["input"]
            prompt = items if isinstance(items, str) else items[-1]["content"]
            make = _response
        else:
            return 404, {"error": {"message": f"no {path}"}}
        if isinstance(prompt, list):  # content parts
            prompt = "".join(part.get("text", "") for part in prompt)
        try:
            text = self.backend.reply(prompt)
        except Exception:
            return _http_error()
        return 200, make(body, text)


def _response(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": body["model"],
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 1,
            "output_tokens": 1,
            "total_tokens": 2,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    server = OpenAIServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join()


KINDS: dict[str, tuple[MakeModel, bool]] = {
    # kind: (make the model, runs on trio too)
    "async callable": (make_callable, True),
    "pydantic-ai Model": (make_pydantic_ai_model, False),
    "pydantic-ai Agent": (make_pydantic_ai_agent, False),
    "pydantic-ai model name": (make_pydantic_ai_name, False),
    "LangChain chat model": (make_langchain_chat_model, False),
    "LangChain LLM": (make_langchain_llm, False),
    "Agents SDK Model": (make_agents_model, False),
    "Agents SDK Agent": (make_agents_agent, False),
    "Agents SDK model name": (make_agents_name, False),
    "AsyncOpenAI tuple": (make_openai_client, True),
    "OpenAI ProviderModel": (make_openai_sync_client, True),
    "AsyncAnthropic ProviderModel": (make_anthropic_client, True),
    "Anthropic ProviderModel": (make_anthropic_sync_client, True),
}
"""Each kind of model, and whether its framework runs on trio (pydantic-ai, LangChain and the
Agents SDK run on asyncio only)."""

CASES = [
    pytest.param(kind, backend, id=f"{kind}-{backend}")
    for kind, (_, trio) in KINDS.items()
    for backend in (["asyncio", "trio"] if trio else ["asyncio"])
]


async def _select(kind: str, backend: Backend, request: pytest.FixtureRequest) -> list[str]:
    model = KINDS[kind][0](backend, request)
    store = await filled(MemorySkillStore())
    ctx = await with_skills(make_cm(), store=store, messages=MESSAGES, selector="llm", model=model)
    return [skill.name for skill in ctx.selected]


async def _bm25() -> list[str]:
    store = await filled(MemorySkillStore())
    return [s.name for s in await BM25SkillSelector().select(store, MESSAGES, 5)]


@pytest.mark.parametrize(("kind", "anyio_backend"), CASES)
async def test_the_model_chooses_the_skills(kind: str, request: pytest.FixtureRequest) -> None:
    backend = Backend(json.dumps(CHOSEN))
    assert await _select(kind, backend, request) == CHOSEN
    assert await _bm25() != CHOSEN  # the choice is the model's
    assert len(backend.prompts) == 1
    prompt = backend.prompts[0]
    assert "- send_email: Send an email to a customer" in prompt
    assert "- weather_report: A one-line weather report for a city" in prompt
    assert "What's the weather in Paris? Then email it to me" in prompt


@pytest.mark.parametrize(("kind", "anyio_backend"), CASES)
async def test_an_answer_that_is_no_list_of_names_falls_back_to_bm25(
    kind: str, request: pytest.FixtureRequest
) -> None:
    backend = Backend("I would use the weather skill.")
    assert await _select(kind, backend, request) == await _bm25()
    assert len(backend.prompts) == 1


@pytest.mark.parametrize(("kind", "anyio_backend"), CASES)
async def test_a_failing_model_falls_back_to_bm25(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    backend = Backend(RuntimeError("model down"))
    with caplog.at_level("WARNING", logger="codemode.skills"):
        assert await _select(kind, backend, request) == await _bm25()
    assert "skill selection call failed" in caplog.text
    assert len(backend.prompts) == 1


def test_a_model_name_belongs_to_pydantic_ai_or_the_agents_sdk() -> None:
    for name in ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5", "gateway/openai:gpt-5"]:
        assert is_pydantic_ai_name(name), name
    for name in [
        "gpt-4o-mini",
        "litellm/anthropic/claude-3-haiku",
        "litellm/ollama/llama3:8b",
        "openai/gpt-4o",
    ]:
        assert not is_pydantic_ai_name(name), name


async def test_selector_llm_without_a_model_is_a_clear_error() -> None:
    store = await filled(MemorySkillStore())
    with pytest.raises(ValueError, match=r'selector="llm" needs model=.*LangChain chat model'):
        await with_skills(make_cm(), store=store, messages=MESSAGES, selector="llm")


async def test_selector_and_model_are_checked() -> None:
    cm, store = make_cm(), await filled(MemorySkillStore())

    async def complete(prompt: str) -> str:
        return "[]"

    with pytest.raises(ValueError, match='model= is the model of selector="llm"'):
        await with_skills(cm, store=store, messages=MESSAGES, model=complete)
    with pytest.raises(ValueError, match='model= is the model of selector="llm"'):
        await with_skills(cm, store=store, messages=MESSAGES, selector=BM25SkillSelector(), model=complete)
    with pytest.raises(ValueError, match=r'selector must be "bm25", "llm" or a SkillSelector, not .llms.'):
        await with_skills(cm, store=store, messages=MESSAGES, selector="llms")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="selector must be"):
        await with_skills(cm, store=store, messages=MESSAGES, selector=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model must be a pydantic-ai Model.*; got int"):
        await with_skills(cm, store=store, messages=MESSAGES, selector="llm", model=42)
    bm25 = await with_skills(cm, store=store, messages=MESSAGES, selector="bm25")
    assert [s.name for s in bm25.selected] == await _bm25()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_client_needs_its_model_name() -> None:
    openai = pytest.importorskip("openai")
    client = openai.AsyncOpenAI(api_key="test")
    with pytest.raises(TypeError, match=r"AsyncOpenAI client needs the model name too: model=ProviderModel"):
        completion_for(client)
    with pytest.raises(TypeError, match="ProviderModel's client must be"):
        completion_for(ProviderModel(object(), "gpt-4o-mini"))
    await client.close()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_pydantic_ai_agent_without_a_model_is_a_clear_error() -> None:
    pydantic_ai = pytest.importorskip("pydantic_ai")
    with pytest.raises(ValueError, match="pydantic-ai agent has no model of its own"):
        completion_for(pydantic_ai.Agent())


async def test_a_synchronous_callable_is_a_model_too() -> None:
    selector = LLMSkillSelector(completion_for(lambda prompt: json.dumps(CHOSEN)))
    store = await filled(MemorySkillStore())
    assert [s.name for s in await selector.select(store, MESSAGES, 5)] == CHOSEN


def test_importing_the_skills_imports_no_framework() -> None:
    code = (
        "import sys, codemode, codemode.skills, codemode.skills.completions\n"
        "print(sorted(m for m in ('pydantic_ai', 'langchain_core', 'agents', 'openai', 'anthropic')"
        " if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": child_python_path()}
    output = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
