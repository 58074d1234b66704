"""Selection per request: which saved skills a conversation gets, and the tools that carry them.

```python
from codemode.skills import SQLiteSkillStore, with_skills

ctx = await with_skills(cm, store=store, messages=[{"role": "user", "content": "weather in Paris"}])
ctx.tools          # execute_typescript (+ skill_* inside), the management tools, one tool per skill
ctx.system_prompt  # cm's prompt plus the declarations of the selected skills (and of the skills
                   # registered during the conversation: both are kept up to date)
ctx.selected       # the selected skills
```

Selectors: :class:`BM25SkillSelector` (``selector="bm25"``, the default, no LLM: the store's own
search over the recent user messages) and :class:`LLMSkillSelector` (asks a model to pick from the
candidates' names and descriptions; answers that are not a JSON list of known names, and failing
calls, fall back to the default). ``selector="llm"`` with ``model=`` the model the application
already uses (a pydantic-ai, LangChain or OpenAI Agents SDK model, an OpenAI or Anthropic client
with a model name, or an async callable: see :mod:`codemode.skills.completions`) is the LLM
selector over that model::

    ctx = await with_skills(cm, store=store, messages=messages, selector="llm", model=chat_model)
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..errors import InvalidArgumentsError
from ..events import Event, EventCallback, emit
from ..execute_tool import ModelTool
from ..tools import ToolBinding
from .completions import ACCEPTED, completion_for
from .completions import pydantic_ai_completion as pydantic_ai_completion  # importable from here too
from .models import Skill, SkillSummary, TrustLevel, trust_rank
from .sandbox import Approve, SkillRuntime, load_closure
from .trust import TrustStrategy

if TYPE_CHECKING:
    from ..code_mode import CodeMode
    from .store import SkillStore

logger = logging.getLogger("codemode.skills")

RECENT_USER_MESSAGES = 3
"""How many of the last user messages the default selector searches with."""

Message = str | Mapping[str, Any] | Any
"""A conversation message: a string (a user message), a ``{role, content}`` dict (content a
string or a list of parts with ``text``), or an object with ``role`` and ``content``."""


@runtime_checkable
class SkillSelector(Protocol):
    """Chooses the skills for a request."""

    async def select(self, store: SkillStore, messages: Sequence[Message], limit: int) -> list[SkillSummary]:
        """At most ``limit`` skills for ``messages``, best first."""
        ...


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(getattr(part, "content", None), str):
                texts.append(part.content)
        return "\n".join(texts)
    return ""


def user_texts(messages: Sequence[Message], last: int = RECENT_USER_MESSAGES) -> list[str]:
    """The text of the last ``last`` user messages (plain strings count as user messages)."""
    texts: list[str] = []
    for message in messages:
        if isinstance(message, str):
            texts.append(message)
            continue
        if isinstance(message, Mapping):
            role, content = message.get("role"), message.get("content")
        else:
            role, content = getattr(message, "role", None), getattr(message, "content", None)
        if role in (None, "user", "human"):
            text = _content_text(content)
            if text:
                texts.append(text)
    return texts[-last:] if last > 0 else texts


STOPWORDS = frozenset(
    """a about an and are as at be but by can could do does for from get give has have how i if in
    into is it its me my no not of on or our please so some than that the their them then there
    these this to us was we what when where which who why will with would you your""".split()
)
"""English function words left out of the search query: they match nearly every skill."""

_QUERY_WORD = re.compile(r"[^\W_]+")


def search_query(texts: Sequence[str], max_words: int = 32) -> str:
    """The query for the store's search: the distinct words of ``texts`` without stopwords,
    the latest message's words first, at most ``max_words``."""
    seen: dict[str, None] = {}
    for text in reversed(texts):
        for word in _QUERY_WORD.findall(text.lower()):
            if word not in STOPWORDS and len(seen) < max_words:
                seen.setdefault(word, None)
    return " ".join(seen)


@dataclass(frozen=True)
class BM25SkillSelector:
    """The default (no LLM): the store's BM25 search (over name, description and usage hints)
    with the words of the last ``recent`` user messages, stopwords left out."""

    recent: int = RECENT_USER_MESSAGES

    async def select(self, store: SkillStore, messages: Sequence[Message], limit: int) -> list[SkillSummary]:
        if limit <= 0:
            return []
        query = search_query(user_texts(messages, self.recent))
        return await store.search(query, limit) if query else []


SELECTION_PROMPT = """\
You choose which saved skills (reusable programs) an assistant should have for the request below.
Answer with a JSON array of at most {limit} skill names from the list, most useful first, and
nothing else. Answer [] when none helps.

Skills:
{index}

Request:
{request}
"""

_JSON_ARRAY = re.compile(r"\[[^\[\]]*\]", re.DOTALL)


def parse_names(answer: str) -> list[str] | None:
    """The skill names in a model's answer: a JSON array of strings, possibly inside prose or a
    code fence; ``None`` when there is no such array."""
    if not isinstance(answer, str):
        return None
    candidates = [answer.strip(), *_JSON_ARRAY.findall(answer)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, Mapping):
            value = value.get("skills", value.get("names"))
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
    return None


@dataclass
class LLMSkillSelector:
    """Asks a (cheap) model which skills fit: ``complete(prompt) -> answer`` is any async
    completion callable. The candidates are the best ``candidates`` BM25 matches of the recent
    user messages (or, when nothing matches, the first ``candidates`` of the index); the prompt
    lists their names and descriptions. Names not among the candidates are dropped; an answer
    that is not a JSON list of names (or a failing call) falls back to ``fallback``."""

    complete: Callable[[str], Awaitable[str]]
    candidates: int = 50
    fallback: SkillSelector = field(default_factory=BM25SkillSelector)
    recent: int = RECENT_USER_MESSAGES
    prompt: str = SELECTION_PROMPT

    async def select(self, store: SkillStore, messages: Sequence[Message], limit: int) -> list[SkillSummary]:
        if limit <= 0:
            return []
        texts = user_texts(messages, self.recent)
        request = "\n".join(texts)
        query = search_query(texts)
        pool = await store.search(query, self.candidates) if query else []
        if not pool:
            pool = (await store.list_index())[: self.candidates]
        if not pool:
            return []
        index = "\n".join(f"- {s.name}: {' '.join(s.description.split())}" for s in pool)
        try:
            answer = await self.complete(self.prompt.format(limit=limit, index=index, request=request))
        except Exception:
            logger.warning("skill selection call failed: falling back", exc_info=True)
            return await self.fallback.select(store, messages, limit)
        names = parse_names(answer)
        if names is None:
            logger.info("skill selection answer is not a JSON list of names: falling back")
            return await self.fallback.select(store, messages, limit)
        by_name = {s.name: s for s in pool}
        chosen = [by_name[name] for name in dict.fromkeys(names) if name in by_name]
        return chosen[:limit]


SelectorName = Literal["bm25", "llm"]
"""The selectors :func:`with_skills` builds from a name."""


def resolve_selector(selector: SkillSelector | SelectorName | None, model: Any = None) -> SkillSelector:
    """The selector ``with_skills(selector=..., model=...)`` means: ``None`` or ``"bm25"`` is
    :class:`BM25SkillSelector`, ``"llm"`` an :class:`LLMSkillSelector` asking ``model`` (required,
    any kind :func:`~codemode.skills.completions.completion_for` takes), and a
    :class:`SkillSelector` is used as is. ``model`` goes only with ``"llm"``."""
    if selector is None or selector == "bm25":
        selector = BM25SkillSelector()
    elif selector == "llm":
        if model is None:
            raise ValueError(f'selector="llm" needs model=, the model the application uses: {ACCEPTED}')
        return LLMSkillSelector(completion_for(model))
    elif isinstance(selector, str):
        raise ValueError(f'selector must be "bm25", "llm" or a SkillSelector, not {selector!r}')
    elif not isinstance(selector, SkillSelector):
        raise TypeError(
            f'selector must be "bm25", "llm" or a SkillSelector, not {type(selector).__qualname__}'
        )
    if model is not None:
        raise ValueError('model= is the model of selector="llm"; this selector asks no model')
    return selector


@dataclass
class SkillContext:
    """What one request gets: ``tools`` to give the model, ``system_prompt``, the ``selected``
    skills, and the ``runtime`` running them.

    :meth:`include` makes a skill saved during the conversation callable at once (the
    management tools' registrations and updates are included automatically). Each inclusion
    rebuilds ``system_prompt`` (the skill is declared in it) and, with ``skills_as_tools``,
    adds or replaces the skill's direct tool in ``tools`` (in place) when its trust is at least
    ``min_trust``, as :func:`with_skills` does for the selected skills; ``selected`` stays what
    the selector chose. ``skill_tools`` names the tools of ``tools`` that are skills.
    """

    tools: list[ModelTool]
    system_prompt: str
    selected: list[Skill]
    runtime: SkillRuntime
    skills_as_tools: bool = True
    min_trust: TrustLevel | None = None
    skill_tools: set[str] = field(default_factory=set)
    management: bool = False
    """Whether ``tools`` has the management tools (the prompt then says how to use them)."""

    def __post_init__(self) -> None:
        self.runtime.listeners.append(self._included)

    def include(self, skill: Skill) -> None:
        """Make ``skill`` callable as ``skill_<name>`` in the next programs of this context,
        declared in ``system_prompt`` (and a direct tool, see the class doc)."""
        self.runtime.include(skill)

    def _included(self, skill: Skill) -> None:
        """The runtime took ``skill`` (new, or a new version): bring the prompt and tools up to date."""
        runtime = self.runtime
        self.system_prompt = skills_prompt(
            runtime.cm, runtime, as_tools=self.skills_as_tools, management=self.management
        )
        if not self.skills_as_tools:
            return
        name = skill.name
        index = next((i for i, tool in enumerate(self.tools) if tool.name == name), None)
        if index is not None and name not in self.skill_tools:
            return  # the name is another tool's (a management tool's)
        floor = trust_rank(self.min_trust) if self.min_trust is not None else 0
        if trust_rank(skill.trust_level) < floor:
            if index is not None:  # a new version starts untrusted again
                del self.tools[index]
                self.skill_tools.discard(name)
            return
        tool = runtime.skill_tool(name)
        if index is None:
            self.tools.append(tool)
            self.skill_tools.add(name)
        else:
            self.tools[index] = tool


SKILLS_RULES = """\
Saved skills: besides the functions above, programs can call the saved skills declared below as \
`await skill_<name>(input)`; a skill is a tested program, so prefer it to rewriting its logic. \
Each is also a tool of its own."""

MANAGEMENT_RULES = """\
The skill library: `search_skills` finds saved skills not declared here, `get_skill` shows one's \
code and schemas, and `register_skill` saves a program that worked as a new skill (its code is \
the body of `async function (input)`, with input and output JSON Schemas); `update_skill` stores \
a new version. A registered skill is callable as `skill_<name>` from the next program on. \
Register what is worth reusing: a program you had to get right, not a one-off."""

TRUST_RULES = """\
Trust: an untrusted skill is new (a person may have to approve it before it runs); provisional \
and trusted skills have a record of successful runs."""


def skills_prompt(cm: CodeMode, runtime: SkillRuntime, *, as_tools: bool, management: bool = False) -> str:
    """``cm``'s system prompt with the skill library: each declared skill's trust level and
    usage hints, their declarations, and (with ``management``) how to search and register."""
    declarations = runtime.declarations
    if not declarations and not management:
        return cm.system_prompt
    parts = [cm.system_prompt.rstrip(), "## Skill library"]
    if declarations:
        parts.append(SKILLS_RULES if as_tools else SKILLS_RULES.rsplit(" Each", 1)[0])
        listed = []
        for name in runtime.declared:
            skill = runtime.skills.get(name)
            if skill is None:
                continue
            hints = "".join(f"\n  - {hint}" for hint in skill.usage_hints)
            listed.append(f"- `skill_{name}` [{skill.trust_level}]: {skill.description}{hints}")
        parts.append("\n".join(listed))
        parts.append(f"```typescript\n{declarations.strip()}\n```")
        parts.append(TRUST_RULES)
    if management:
        parts.append(MANAGEMENT_RULES)
    return "\n\n".join(parts) + "\n"


def _binding_tool(binding: ToolBinding, runtime: SkillRuntime) -> ModelTool:
    """A codemode tool (here a management tool) called directly by the model."""

    async def call(
        arguments: Mapping[str, Any],
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
    ) -> dict[str, Any]:
        token = _CURRENT.set((runtime, on_event, tool_call_id))
        try:
            args = binding.validate(dict(arguments))
            result = binding.handler(args)
            if inspect.isawaitable(result):
                result = await result
            return {"success": True, "result": binding.check_output(result)}
        except InvalidArgumentsError as e:
            message = _direct_message(binding, str(e))
            return {"success": False, "error": {"kind": "invalid_args", "message": message}}
        except Exception as e:
            message = _direct_message(binding, str(e) or type(e).__name__)
            return {"success": False, "error": {"kind": "tool", "message": message}}
        finally:
            _CURRENT.reset(token)

    return ModelTool(binding.name, binding.description, binding.input_schema, call)


def _direct_message(binding: ToolBinding, message: str) -> str:
    """An error of a management tool called directly, naming the tool the model called
    (``register_skill: ...``), not the function a program calls (``external_register_skill``)."""
    program_name = binding.sandbox_name
    if message.startswith(program_name):
        return binding.name + message[len(program_name) :]
    if message.startswith(f"{binding.name}:"):
        return message
    return f"{binding.name}: {message}"


_CURRENT: contextvars.ContextVar[tuple[SkillRuntime, EventCallback | None, str | None]] = (
    contextvars.ContextVar("codemode_skill_context")
)
"""The request a management tool call belongs to: its skills runtime, event callback and the
model's tool call id."""
_REGISTRIES: weakref.WeakKeyDictionary[CodeMode, dict[tuple[int, Any], list[ToolBinding]]] = (
    weakref.WeakKeyDictionary()
)


def _management_bindings(cm: CodeMode, store: SkillStore, trust: TrustStrategy | None) -> list[ToolBinding]:
    """The management tools over ``store`` for ``cm``, made once (their schemas compile once) and
    shared by every request; the request a call belongs to is in a context variable."""
    cached = _REGISTRIES.setdefault(cm, {})
    key = (id(store), trust)
    bindings = cached.get(key)
    if bindings is not None:
        return bindings
    from .tools import management_tools

    async def on_event(event: Event) -> None:
        current = _CURRENT.get(None)
        if current is None:
            return
        runtime, forward, tool_call_id = current
        if event.value.get("toolCallId") is None:
            event = Event(event.name, {**event.value, "toolCallId": tool_call_id})
        if event.name == "code_mode:skill_registered":
            skill = await store.get(str(event.value.get("name")))
            if skill is not None:
                runtime.include(skill)
        await emit(forward, event)

    async def run_example(skill: Skill, input: Any) -> Any:
        current = _CURRENT.get(None)
        skills = {**(current[0].skills if current is not None else {}), skill.name: skill}
        # an example run never pauses: a call in it that needs approval is refused
        return await SkillRuntime(cm, skills, trust=trust, pausing=False).run(skill.name, input)

    bindings = list(
        management_tools(store, known_tools=cm.tools, run_example=run_example, trust=trust, on_event=on_event)
    )
    cached[key] = bindings
    return bindings


def _management_tools(
    cm: CodeMode, store: SkillStore, runtime: SkillRuntime, trust: TrustStrategy | None
) -> list[ModelTool]:
    try:
        bindings = _management_bindings(cm, store, trust)
    except ImportError:  # the management tools are not part of this build
        return []
    return [_binding_tool(binding, runtime) for binding in bindings]


async def with_skills(
    cm: CodeMode,
    *,
    store: SkillStore,
    messages: Sequence[Message],
    selector: SkillSelector | SelectorName | None = None,
    model: Any = None,
    max_in_context: int = 5,
    trust: TrustStrategy | None = None,
    skills_as_tools: bool = True,
    min_trust: TrustLevel | None = None,
    approve: Approve | None = None,
    management: bool = True,
) -> SkillContext:
    """Select the skills for this request and build the tools and prompt that carry them.

    ``selector`` picks at most ``max_in_context`` skills: ``"bm25"`` (the default,
    :class:`BM25SkillSelector`), ``"llm"`` (:class:`LLMSkillSelector` asking ``model``, the model
    the application already uses: a pydantic-ai ``Model``, ``Agent`` or ``"provider:model"`` name,
    a LangChain chat model, an OpenAI Agents SDK ``Model``, ``Agent`` or model name, an OpenAI or
    Anthropic client with a model name as ``(client, "gpt-4o-mini")`` or
    :class:`~codemode.skills.completions.ProviderModel`, or an async callable ``prompt -> str``)
    or any :class:`SkillSelector`;
    they and their dependencies become ``skill_<name>`` in ``execute_typescript`` programs (the
    selected ones declared in the prompt). With ``skills_as_tools`` each selected skill whose
    trust is at least ``min_trust`` is also a direct tool. ``trust`` overrides the store's
    strategy when runs are recorded; ``approve`` is consulted before an untrusted skill runs
    (a function of the skill, or ``"ask"``: the execution pauses for a person's decision, see
    :class:`SkillRuntime`).
    ``management`` adds search_skills, get_skill, register_skill and update_skill.
    """
    chosen = await resolve_selector(selector, model).select(store, messages, max_in_context)
    selected: list[Skill] = []
    for summary in chosen[:max_in_context]:
        skill = await store.get(summary.name)
        if skill is not None:
            selected.append(skill)
    skills = await load_closure(store, selected)
    runtime = SkillRuntime(
        cm, skills, store=store, trust=trust, approve=approve, declared=[s.name for s in selected]
    )
    selected = [runtime.skills[s.name] for s in selected if s.name in runtime.skills]
    tools = [runtime.tool]
    if management:
        tools.extend(_management_tools(cm, store, runtime, trust))
    has_management = len(tools) > 1
    skill_tools: set[str] = set()
    if skills_as_tools:
        floor = trust_rank(min_trust) if min_trust is not None else 0
        taken = {tool.name for tool in tools}
        for skill in selected:
            if trust_rank(skill.trust_level) >= floor and skill.name not in taken:
                tools.append(runtime.skill_tool(skill.name))
                skill_tools.add(skill.name)
    return SkillContext(
        tools=tools,
        system_prompt=skills_prompt(cm, runtime, as_tools=skills_as_tools, management=has_management),
        selected=selected,
        runtime=runtime,
        skills_as_tools=skills_as_tools,
        min_trust=min_trust,
        skill_tools=skill_tools,
        management=has_management,
    )
