"""A skill's code as the body of an async function of ``input``: whether it can be one (as both
the TypeScript stripper and the engine read it), its JavaScript, and the skills it names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import _core
from ..code_mode import compile_typescript
from .models import Skill

if TYPE_CHECKING:
    from .store import SkillStore

_SKILL_REFERENCE = re.compile(r"\bskill_([a-z][a-z0-9]*(?:_[a-z0-9]+)*)\b")


def skill_references(code: str) -> set[str]:
    """The skill names ``code`` mentions as ``skill_<name>``."""
    return set(_SKILL_REFERENCE.findall(code))


async def load_closure(store: SkillStore, skills: Iterable[Skill]) -> dict[str, Skill]:
    """``skills`` and every skill they depend on (``depends_on`` and ``skill_*`` references in
    their code), fetched from ``store``; missing dependencies are left out."""
    loaded: dict[str, Skill] = {}
    pending = list(skills)
    missing: set[str] = set()
    while pending:
        skill = pending.pop()
        if skill.name in loaded:
            continue
        loaded[skill.name] = skill
        for name in sorted(set(skill.depends_on) | skill_references(skill.code)):
            if name in loaded or name in missing:
                continue
            dependency = await store.get(name)
            if dependency is None:
                missing.add(name)
            else:
                pending.append(dependency)
    return loaded


_STRIPPED: dict[str, tuple[str, Any] | str] = {}


def _body(code: str) -> tuple[str, Any] | str:
    """A skill's code as JavaScript, with its StripResult when positions moved, or why it cannot
    be a skill's body; cached by code (the engine check makes a scratch runtime)."""
    if code in _STRIPPED:
        return _STRIPPED[code]
    body: tuple[str, Any] | str
    try:
        compile_typescript(f"async function __cm_check(input: any) {{\n{code}\n}}")
        result = _core.strip_types(code)
        # The engine must read the code as its own function body, as the stripper did: code
        # that closes that function would run around it in every program it is loaded into.
        _core.check_function_body(result.javascript)
        body = result.javascript, None if result.positions_preserved else result
    except _core.TypeScriptSyntaxError as e:
        body = f"it does not parse: {e.args[0]}"
    except ValueError as e:
        body = str(e)
    if len(_STRIPPED) > 4096:
        _STRIPPED.clear()
    _STRIPPED[code] = body
    return body


def strip_body(code: str) -> tuple[str, Any] | None:
    """A skill's code as JavaScript, with its StripResult when positions moved (``None`` when
    it is not the body of an async function as both the stripper and the engine read it)."""
    body = _body(code)
    return None if isinstance(body, str) else body


def body_problem(code: str) -> str | None:
    """Why ``code`` cannot be a skill's body (``None`` when it can)."""
    body = _body(code)
    return body if isinstance(body, str) else None


def code_compiles(skill: Skill) -> bool:
    """True when the skill's code parses as the body of an async function (cached by code)."""
    return strip_body(skill.code) is not None
