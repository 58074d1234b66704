"""One-off completions over the model an application already uses, for LLM skill selection.

:func:`completion_for` turns a model of any supported framework into the async
``prompt -> answer`` callable that :class:`~codemode.skills.LLMSkillSelector` asks, so that
``with_skills(cm, store=..., messages=..., selector="llm", model=model)`` selects with the
application's own model:

- pydantic-ai: a ``Model`` (e.g. ``FunctionModel``, ``OpenAIChatModel``), an ``Agent`` (its
  model), or a model name ``"provider:model"`` such as ``"openai:gpt-4o-mini"``
  (``codemode[pydantic-ai]``);
- LangChain: a chat model (``BaseChatModel``) or an LLM (``BaseLLM``): ``await model.ainvoke(prompt)``
  (``codemode[langchain]``);
- OpenAI Agents SDK: a ``Model``, an ``Agent`` (its model), or a model name as an ``Agent`` takes
  it: a bare name such as ``"gpt-4o-mini"`` or one with the SDK's provider prefix
  (``"litellm/..."``, ``"any-llm/..."``, ``"openai/..."``); the prompt runs as a bare agent
  with ``Runner.run`` (``codemode[openai-agents]``);
- an OpenAI or Anthropic client with a model name: ``ProviderModel(client, "gpt-4o-mini")`` or
  the tuple ``(client, "gpt-4o-mini")``; ``openai.AsyncOpenAI`` / ``openai.OpenAI`` (and Azure's,
  which derive from them) answer through Chat Completions, ``anthropic.AsyncAnthropic`` /
  ``anthropic.Anthropic`` through Messages (a synchronous client runs in a worker thread);
- any callable ``prompt -> str``, async or not (a synchronous one is called on the event loop).

A string is a pydantic-ai name when it has pydantic-ai's ``provider:model`` form, and otherwise
an OpenAI Agents SDK name; pass the model object to leave no doubt. Importing this module
imports no framework: each is imported when a model is resolved, and only when it is loaded
already (an object cannot be an instance of a class whose module was never imported).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import anyio.to_thread

Completion = Callable[[str], Awaitable[str]]
"""An async completion callable: a prompt in, the model's text answer out."""

AGENTS_PREFIXES = ("openai/", "litellm/", "any-llm/")
"""The model name prefixes of the OpenAI Agents SDK's default provider (``MultiProvider``)."""

ACCEPTED = (
    "a pydantic-ai Model, Agent or 'provider:model' name; a LangChain chat model or LLM; an OpenAI "
    "Agents SDK Model, Agent or model name; (client, 'model-name') or ProviderModel(client, "
    "'model-name') with an openai or anthropic client; or an async callable prompt -> str"
)
"""The kinds of model :func:`completion_for` takes, as its errors name them."""


@dataclass(frozen=True)
class ProviderModel:
    """An OpenAI or Anthropic SDK client and the model name to ask through it.

    ``client`` is an ``openai.AsyncOpenAI`` / ``openai.OpenAI`` (Chat Completions) or an
    ``anthropic.AsyncAnthropic`` / ``anthropic.Anthropic`` (Messages); ``max_tokens`` bounds the
    answer (Anthropic requires a bound; OpenAI gets none unless it is set here)."""

    client: Any
    model: str
    max_tokens: int | None = None


def _loaded(module: str) -> bool:
    """Whether ``module``'s top-level package is imported: if not, no object is of its classes."""
    return module.split(".", 1)[0] in sys.modules


def pydantic_ai_completion(model: Any) -> Completion:
    """An async completion callable over a pydantic-ai model (a ``Model`` instance or a name like
    ``"openai:gpt-4o-mini"``); needs ``codemode[pydantic-ai]``.

    ``LLMSkillSelector(pydantic_ai_completion("openai:gpt-4o-mini"))``
    """
    from pydantic_ai import ModelRequest, TextPart
    from pydantic_ai.direct import model_request

    async def complete(prompt: str) -> str:
        response = await model_request(model, [ModelRequest.user_text_prompt(prompt)])
        texts = (part for part in response.parts if getattr(part, "part_kind", None) == "text")
        return "".join(cast(TextPart, part).content for part in texts)

    return complete


def langchain_completion(model: Any) -> Completion:
    """An async completion callable over a LangChain language model: a chat model (the text of
    the message it answers) or an LLM (its string); needs ``codemode[langchain]``."""

    async def complete(prompt: str) -> str:
        answer = await model.ainvoke(prompt)
        return answer if isinstance(answer, str) else answer.text

    return complete


def openai_agents_completion(model: Any = None, *, run_config: Any = None) -> Completion:
    """An async completion callable over an OpenAI Agents SDK model: an ``agents.Model``, a model
    name as ``Agent(model=...)`` takes it, or ``None`` (the SDK's default model). The prompt is
    the input of a bare agent (no tools, no instructions) run with ``Runner.run``; ``run_config``
    is passed on (e.g. the ``model_provider`` that resolves the name, as the application's own
    runs use). Needs ``codemode[openai-agents]``."""
    from agents import Agent, Runner

    agent = Agent(name="skill_selection", model=model)

    async def complete(prompt: str) -> str:
        result = await Runner.run(agent, prompt, max_turns=1, run_config=run_config)
        output = result.final_output
        return output if isinstance(output, str) else str(output)

    return complete


def openai_completion(client: Any, model: str, *, max_tokens: int | None = None) -> Completion:
    """An async completion callable over an ``openai.AsyncOpenAI`` or ``openai.OpenAI`` client
    (Chat Completions with one user message; a synchronous client runs in a worker thread)."""
    import openai

    options: dict[str, Any] = {"model": model}
    if max_tokens is not None:
        options["max_completion_tokens"] = max_tokens
    asynchronous = isinstance(client, openai.AsyncOpenAI)

    async def complete(prompt: str) -> str:
        request = {**options, "messages": [{"role": "user", "content": prompt}]}
        if asynchronous:
            response = await client.chat.completions.create(**request)
        else:
            response = await anyio.to_thread.run_sync(lambda: client.chat.completions.create(**request))
        return (response.choices[0].message.content or "") if response.choices else ""

    return complete


def anthropic_completion(client: Any, model: str, *, max_tokens: int = 1024) -> Completion:
    """An async completion callable over an ``anthropic.AsyncAnthropic`` or ``anthropic.Anthropic``
    client (Messages with one user message, the text blocks of the answer; a synchronous client
    runs in a worker thread)."""
    import anthropic

    asynchronous = isinstance(client, anthropic.AsyncAnthropic)

    async def complete(prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        request = {"model": model, "max_tokens": max_tokens, "messages": messages}
        if asynchronous:
            response = await client.messages.create(**request)
        else:
            response = await anyio.to_thread.run_sync(lambda: client.messages.create(**request))
        return "".join(block.text for block in response.content if getattr(block, "type", None) == "text")

    return complete


def _client_kind(client: Any) -> str | None:
    """``"openai"`` or ``"anthropic"`` for an SDK client of either (async or not), else ``None``."""
    if _loaded("openai"):
        import openai

        if isinstance(client, openai.AsyncOpenAI | openai.OpenAI):
            return "openai"
    if _loaded("anthropic"):
        import anthropic

        if isinstance(client, anthropic.AsyncAnthropic | anthropic.Anthropic):
            return "anthropic"
    return None


def _provider_completion(spec: ProviderModel) -> Completion:
    kind = _client_kind(spec.client)
    if kind == "openai":
        return openai_completion(spec.client, spec.model, max_tokens=spec.max_tokens)
    if kind == "anthropic":
        return anthropic_completion(spec.client, spec.model, max_tokens=spec.max_tokens or 1024)
    raise TypeError(
        "ProviderModel's client must be an openai.AsyncOpenAI/OpenAI or anthropic.AsyncAnthropic/"
        f"Anthropic client, not {type(spec.client).__qualname__}"
    )


def is_pydantic_ai_name(name: str) -> bool:
    """Whether a model name is pydantic-ai's (``"provider:model"``, e.g. ``"openai:gpt-4o-mini"``)
    rather than an OpenAI Agents SDK name (``"gpt-4o-mini"``, ``"litellm/..."``)."""
    return ":" in name and not name.startswith(AGENTS_PREFIXES)


def _name_completion(name: str) -> Completion:
    if is_pydantic_ai_name(name):
        try:
            return pydantic_ai_completion(name)
        except ImportError as e:
            raise ImportError(
                f"model={name!r} is a pydantic-ai model name ('provider:model'): "
                'pip install "codemode[pydantic-ai]"'
            ) from e
    try:
        return openai_agents_completion(name)
    except ImportError as e:
        raise ImportError(
            f"model={name!r} is an OpenAI Agents SDK model name (pydantic-ai names are "
            'provider:model, e.g. "openai:gpt-4o-mini"): pip install "codemode[openai-agents]"'
        ) from e


def completion_for(model: Any) -> Completion:
    """The async ``prompt -> answer`` callable over ``model``, any of the kinds this module's
    documentation lists; a ``TypeError`` names them when ``model`` is none of them."""
    if model is None:
        raise TypeError(f"no model given: pass {ACCEPTED}")
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[1], str):
        model = ProviderModel(*model)
    if isinstance(model, ProviderModel):
        return _provider_completion(model)
    if isinstance(model, str):
        return _name_completion(model)
    if _loaded("pydantic_ai"):
        from pydantic_ai.agent import AbstractAgent
        from pydantic_ai.models import Model as PydanticAIModel

        if isinstance(model, PydanticAIModel):
            return pydantic_ai_completion(model)
        if isinstance(model, AbstractAgent):
            if model.model is None:
                raise ValueError("the pydantic-ai agent has no model of its own: pass model=<its model>")
            return pydantic_ai_completion(model.model)
    if _loaded("langchain_core"):
        from langchain_core.language_models import BaseLanguageModel

        if isinstance(model, BaseLanguageModel):
            return langchain_completion(model)
    if _loaded("agents"):
        try:
            from agents import Agent as AgentsAgent
            from agents import Model as AgentsModel
        except ImportError:  # another package named agents
            pass
        else:
            if isinstance(model, AgentsModel):
                return openai_agents_completion(model)
            if isinstance(model, AgentsAgent):
                return openai_agents_completion(model.model)
    if _client_kind(model) is not None:
        raise TypeError(
            f"a {type(model).__qualname__} client needs the model name too: "
            "model=ProviderModel(client, 'model-name') or model=(client, 'model-name')"
        )
    if callable(model):

        async def complete(prompt: str) -> str:
            answer = model(prompt)
            text: str = await answer if inspect.isawaitable(answer) else answer
            return text

        return complete
    raise TypeError(f"model must be {ACCEPTED}; got {type(model).__qualname__}")
