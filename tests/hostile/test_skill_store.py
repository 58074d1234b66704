"""Skill names never become paths outside a file store's folder, however the skill was made."""

from __future__ import annotations

from pathlib import Path

import pytest

from codemode.skills import FileSkillStore, Skill
from codemode.skills.models import InvalidSkillName

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("name", ["../escaped", "a/b", "/tmp/abs", "..", "x\0y"])
async def test_a_constructed_name_is_refused_not_written(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "store"
    store = FileSkillStore(folder)
    skill = Skill.model_construct(
        name=name, description="d", code="return 1", input_schema={"type": "object"}, output_schema=None
    )
    with pytest.raises(InvalidSkillName):
        await store.save(skill)
    assert await store.get(name) is None
    outside = [p for p in tmp_path.rglob("*") if folder not in (p, *p.parents)]
    assert outside == []
