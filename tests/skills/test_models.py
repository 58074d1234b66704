"""The skill model and its name rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from codemode.skills import InvalidSkillName, Skill, SkillStats, SkillSummary, trust_rank, validate_skill_name


@pytest.mark.parametrize("name", ["fetch_weather", "a", "v2_report", "x1", "a" * 64, "sum_of_3_numbers"])
def test_valid_names(name: str) -> None:
    assert validate_skill_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("FetchWeather", "snake_case"),
        ("fetch-weather", "snake_case"),
        ("fetch weather", "snake_case"),
        ("1st_try", "snake_case"),
        ("_private", "snake_case"),
        ("trailing_", "snake_case"),
        ("double__underscore", "snake_case"),
        ("café", "snake_case"),
        ("a" * 65, "longer than 64"),
        ("external_weather", "reserved for the sandbox"),
        ("skill_weather", "reserved for the sandbox"),
        ("delete", "reserved word"),
        ("arguments", "reserved word"),
    ],
)
def test_invalid_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidSkillName, match=reason):
        validate_skill_name(name)
    with pytest.raises(ValidationError, match=reason):
        Skill(name=name, description="x", code="return 1;")


def test_reserved_prefix_message_suggests_a_name() -> None:
    with pytest.raises(InvalidSkillName, match="'weather'"):
        validate_skill_name("external_weather")


def test_defaults_and_summary() -> None:
    skill = Skill(name="double", description="Double a number", code="return input.n * 2;")
    assert skill.input_schema == {"type": "object"} and skill.output_schema is None
    assert (skill.version, skill.trust_level, skill.usage_hints, skill.depends_on) == (1, "untrusted", [], [])
    assert skill.stats == SkillStats()
    summary = skill.summary()
    assert type(summary) is SkillSummary and not hasattr(summary, "code")
    assert summary.model_dump() == skill.model_dump(exclude={"code"})


def test_stats_rates() -> None:
    assert SkillStats().success_rate == 0.0
    assert SkillStats().recent_success_rate is None
    stats = SkillStats(executions=4, successes=3, recent=[True, False])
    assert stats.success_rate == 0.75 and stats.recent_success_rate == 0.5
    dumped = stats.model_dump(mode="json")
    assert dumped["success_rate"] == 0.75
    assert SkillStats.model_validate(dumped) == stats  # computed fields are ignored on input


def test_json_round_trip() -> None:
    skill = Skill(
        name="double",
        description="Double a number",
        code="return input.n * 2;",
        input_schema={"type": "object", "properties": {"n": {"type": "number"}}},
        usage_hints=["n is a number"],
        stats=SkillStats(executions=2, successes=1, recent=[True, False]),
    )
    assert Skill.model_validate_json(skill.model_dump_json()) == skill


def test_trust_rank_orders_levels() -> None:
    assert trust_rank("untrusted") < trust_rank("provisional") < trust_rank("trusted")
