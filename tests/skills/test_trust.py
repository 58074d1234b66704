"""Trust promotion and demotion at every threshold: pure functions, no store."""

from __future__ import annotations

import random

import pytest

from codemode.skills import SkillStats, Threshold, TrustLevel, TrustStrategy
from codemode.skills.trust import record_outcome, record_outcomes


def stats(executions: int, successes: int, recent: list[bool] | None = None) -> SkillStats:
    """Stats whose recent window is all successes unless given."""
    if recent is None:
        recent = [True] * min(executions, 20)
    return SkillStats(executions=executions, successes=successes, recent=recent)


DEFAULT = TrustStrategy.default()
RELAXED = TrustStrategy.relaxed()


@pytest.mark.parametrize(
    ("executions", "successes", "expected"),
    [
        (0, 0, "untrusted"),
        (9, 9, "untrusted"),  # 9 runs: one short
        (10, 10, "provisional"),
        (10, 9, "provisional"),  # exactly 90 %
        (1000, 899, "untrusted"),  # 89.9 %
        (1000, 900, "provisional"),  # 90.0 %
        (99, 99, "provisional"),  # 99 runs: one short of trusted
        (100, 100, "trusted"),
        (100, 95, "trusted"),  # exactly 95 %
        (1000, 949, "provisional"),  # 94.9 %
        (1000, 950, "trusted"),  # 95.0 %
    ],
)
def test_default_promotion_thresholds(executions: int, successes: int, expected: TrustLevel) -> None:
    assert DEFAULT.evaluate(stats(executions, successes), "untrusted") == expected


@pytest.mark.parametrize(
    ("executions", "successes", "expected"),
    [
        (2, 2, "untrusted"),  # 2 runs: one short
        (3, 3, "provisional"),
        (5, 4, "provisional"),  # exactly 80 %
        (1000, 799, "untrusted"),  # 79.9 %
        (1000, 800, "provisional"),
        (9, 9, "provisional"),  # 9 runs: one short of trusted
        (10, 10, "trusted"),
        (10, 9, "trusted"),  # exactly 90 %
        (1000, 899, "provisional"),  # 89.9 %
        (1000, 900, "trusted"),
    ],
)
def test_relaxed_promotion_thresholds(executions: int, successes: int, expected: TrustLevel) -> None:
    assert RELAXED.evaluate(stats(executions, successes), "untrusted") == expected


def test_always_trusted() -> None:
    strategy = TrustStrategy.always_trusted()
    assert strategy.initial == "trusted"
    for level in ("untrusted", "provisional", "trusted"):
        assert strategy.evaluate(stats(50, 0, [False] * 20), level) == "trusted"


@pytest.mark.parametrize(
    ("executions", "successes", "expected"),
    [
        (4, 4, "untrusted"),
        (5, 3, "provisional"),  # 60 % >= 50 %
        (1000, 499, "untrusted"),
        (49, 49, "provisional"),
        (50, 38, "trusted"),  # 76 % >= 75 %
        (1000, 749, "provisional"),
        (1000, 750, "trusted"),
    ],
)
def test_custom_thresholds(executions: int, successes: int, expected: TrustLevel) -> None:
    strategy = TrustStrategy.custom(provisional=(5, 0.5), trusted=Threshold(50, 0.75))
    assert strategy.evaluate(stats(executions, successes), "untrusted") == expected


def test_custom_thresholds_with_one_level_only() -> None:
    strategy = TrustStrategy.custom(trusted=(2, 1.0))
    assert strategy.evaluate(stats(1, 1), "untrusted") == "untrusted"
    assert strategy.evaluate(stats(2, 2), "untrusted") == "trusted"
    assert strategy.threshold("provisional") is None


def test_custom_function_decides_alone() -> None:
    seen: list[tuple[int, TrustLevel]] = []

    def by_successes(current_stats: SkillStats, current: TrustLevel) -> TrustLevel:
        seen.append((current_stats.executions, current))
        return "trusted" if current_stats.successes >= 3 else "untrusted"

    strategy = TrustStrategy.custom(function=by_successes)
    assert strategy.evaluate(stats(3, 2), "provisional") == "untrusted"
    assert strategy.evaluate(stats(4, 3, [False] * 4), "untrusted") == "trusted"
    assert seen == [(3, "provisional"), (4, "untrusted")]
    with pytest.raises(ValueError, match="not one of"):
        TrustStrategy.custom(function=lambda s, c: "admin").evaluate(stats(1, 1), "untrusted")  # type: ignore[arg-type,return-value]


def test_custom_needs_exactly_one_kind_of_rule() -> None:
    with pytest.raises(ValueError, match="either"):
        TrustStrategy.custom(provisional=(1, 0.5), function=lambda s, c: c)
    with pytest.raises(ValueError, match="give thresholds"):
        TrustStrategy.custom()
    with pytest.raises(ValueError):
        Threshold(5, 1.5)
    with pytest.raises(ValueError):
        Threshold(-1, 0.5)
    with pytest.raises(ValueError):
        TrustStrategy.default(demotion_window=0)


# -- demotion over the recent runs


def window(successes: int, size: int = 20) -> list[bool]:
    """A recent window with its failures first."""
    return [False] * (size - successes) + [True] * successes


@pytest.mark.parametrize(
    ("current", "recent_successes", "expected"),
    [
        ("trusted", 20, "trusted"),
        ("trusted", 19, "trusted"),  # 95 %: at the threshold
        ("trusted", 18, "provisional"),  # 90 % < 95 %
        ("trusted", 0, "provisional"),  # one level at a time
        ("provisional", 18, "provisional"),  # 90 %: at the threshold
        ("provisional", 17, "untrusted"),  # 85 % < 90 %
        ("untrusted", 0, "untrusted"),  # nothing below
    ],
)
def test_default_demotion(current: TrustLevel, recent_successes: int, expected: TrustLevel) -> None:
    lifetime = stats(1000, 990, window(recent_successes))  # excellent over all runs
    assert DEFAULT.evaluate(lifetime, current) == expected


@pytest.mark.parametrize(
    ("current", "recent_successes", "expected"),
    [
        ("trusted", 18, "trusted"),  # relaxed: 90 % keeps trusted
        ("trusted", 17, "provisional"),
        ("provisional", 16, "provisional"),  # 80 %
        ("provisional", 15, "untrusted"),
    ],
)
def test_relaxed_demotion(current: TrustLevel, recent_successes: int, expected: TrustLevel) -> None:
    assert RELAXED.evaluate(stats(1000, 990, window(recent_successes)), current) == expected


def test_demotion_window_is_configurable() -> None:
    strategy = TrustStrategy.default(demotion_window=5)
    # 20 recent outcomes stored, but only the last 5 count: 4/5 = 80 % < 95 %
    recent = [True] * 15 + [True, False, True, True, True]
    assert strategy.evaluate(stats(1000, 990, recent), "trusted") == "provisional"
    recent = [False] * 15 + [True] * 5  # old failures outside the window do not count
    assert strategy.evaluate(stats(1000, 990, recent), "trusted") == "trusted"


def test_demotion_with_fewer_recent_runs_than_the_window() -> None:
    assert DEFAULT.evaluate(stats(10, 9, window(9, size=10)), "provisional") == "provisional"
    assert DEFAULT.evaluate(stats(11, 9, window(9, size=11)), "provisional") == "untrusted"


def test_demotion_can_be_turned_off() -> None:
    strategy = TrustStrategy.default(demotion=False)
    assert strategy.evaluate(stats(1000, 990, window(0)), "trusted") == "trusted"


def test_a_demoted_skill_climbs_back_when_its_recent_runs_recover() -> None:
    demoted = DEFAULT.evaluate(stats(1000, 980, window(18)), "trusted")
    assert demoted == "provisional"
    # lifetime stats still meet "trusted", but the recent 90 % does not: no bounce back
    assert DEFAULT.evaluate(stats(1001, 981, window(18)), "provisional") == "provisional"
    assert DEFAULT.evaluate(stats(1002, 982, window(19)), "provisional") == "trusted"


def test_promotion_can_skip_a_level() -> None:
    assert DEFAULT.evaluate(stats(100, 100), "untrusted") == "trusted"


def test_a_run_sequence_through_record_outcome() -> None:
    current: TrustLevel = "untrusted"
    current_stats = SkillStats()
    levels = []
    for success in [True] * 10 + [False, False, True]:
        current_stats = record_outcome(current_stats, success, DEFAULT.demotion_window)
        current = DEFAULT.evaluate(current_stats, current)
        levels.append(current)
    assert levels[8:] == ["untrusted", "provisional", "provisional", "untrusted", "untrusted"]
    assert current_stats.executions == 13 and current_stats.successes == 11
    assert current_stats.last_run_at is not None


def test_record_outcome_keeps_the_window() -> None:
    current = SkillStats()
    for index in range(30):
        current = record_outcome(current, index % 3 != 0, 7)
    assert len(current.recent) == 7
    assert current.recent == [index % 3 != 0 for index in range(23, 30)]
    assert current.success_rate == pytest.approx(20 / 30)


def _demote_on_two_recent_failures(stats: SkillStats, current: TrustLevel) -> TrustLevel:
    if stats.recent[-2:] == [False, False]:
        return "untrusted"
    return "trusted" if stats.executions >= 5 else current


@pytest.mark.parametrize(
    "strategy",
    [
        TrustStrategy.default(),
        TrustStrategy.relaxed(demotion_window=5),
        TrustStrategy.relaxed(demotion=False),
        TrustStrategy.custom(function=_demote_on_two_recent_failures, demotion_window=3),
    ],
    ids=["default", "relaxed-window-5", "no-demotion", "function"],
)
def test_record_outcomes_is_record_outcome_and_evaluate_for_each_run(strategy: TrustStrategy) -> None:
    rng = random.Random(3)
    batched, one_by_one = SkillStats(), SkillStats()
    batched_level: TrustLevel = strategy.initial
    level: TrustLevel = strategy.initial
    seen = set()
    for _ in range(60):
        batch = [rng.random() < 0.95 for _ in range(rng.choice([0, 1, 3, 12, 40]))]
        batched, batched_level = record_outcomes(batched, batched_level, batch, strategy)
        for outcome in batch:
            one_by_one = record_outcome(one_by_one, outcome, strategy.demotion_window)
            level = strategy.evaluate(one_by_one, level)
        assert batched.model_dump(exclude={"last_run_at"}) == one_by_one.model_dump(exclude={"last_run_at"})
        assert batched_level == level
        seen.add(level)
    assert len(seen) >= 2  # the sequence moved the level


def test_record_outcomes_leaves_its_input_alone() -> None:
    start = SkillStats(executions=2, successes=2, recent=[True, True])
    stats, level = record_outcomes(start, "untrusted", [False] * 3, TrustStrategy.default())
    assert start.executions == 2 and start.recent == [True, True]
    assert (stats.executions, stats.successes, stats.recent, level) == (
        5,
        2,
        [True, True, False, False, False],
        "untrusted",
    )
    same, level = record_outcomes(start, "provisional", [], TrustStrategy.default())
    assert same == start and same is not start and level == "provisional"
