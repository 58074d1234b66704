"""How a skill earns trust from its runs, and loses it again.

A :class:`TrustStrategy` is a pure function of a version's :class:`~.models.SkillStats` and its
current level. With thresholds (the default):

* **promotion**: the level becomes the highest one whose thresholds the stats meet: at least
  ``runs`` executions, and a success rate of at least ``rate`` both over every run of the version
  and over the recent runs (so a demoted skill climbs back only once its recent runs are good);
* **demotion**: otherwise, when the success rate over the recent runs (the last
  ``demotion_window`` outcomes, fewer before that many runs) falls below the rate threshold of
  the current level, the skill drops one level.

Rates are compared exactly (``9/10`` meets ``0.9``; ``899/1000`` does not).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from .models import TRUST_LEVELS, SkillStats, TrustLevel, trust_rank, utc_now

TrustFunction = Callable[[SkillStats, TrustLevel], TrustLevel]
"""A custom rule: ``(stats, current level) -> new level``."""

DEFAULT_DEMOTION_WINDOW = 20


@dataclass(frozen=True)
class Threshold:
    """What a level takes: at least ``runs`` executions and a success rate of at least ``rate``."""

    runs: int
    rate: float

    def __post_init__(self) -> None:
        if self.runs < 0:
            raise ValueError("a threshold's runs cannot be negative")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("a threshold's rate is a fraction between 0 and 1")


def _rate_at_least(successes: int, runs: int, rate: float) -> bool:
    """``successes / runs >= rate``, exactly (no float rounding); False for no runs unless rate is 0."""
    if runs == 0:
        return rate == 0.0
    exact = _exact(rate)
    return successes * exact.denominator >= exact.numerator * runs


@functools.lru_cache(maxsize=256)
def _exact(rate: float) -> Fraction:
    """``rate`` as the decimal fraction it is written as (``0.9`` is 9/10, not the float's value)."""
    return Fraction(str(rate))


@dataclass(frozen=True)
class TrustStrategy:
    """When a skill is promoted or demoted. Build one with the class methods.

    ``provisional`` and ``trusted`` are the thresholds of the two upper levels (``None`` for a
    level that cannot be earned); ``function``, when given, replaces the thresholds and decides
    alone (no automatic demotion); ``initial`` is the level of a version that has not run yet.
    ``demotion_window`` is how many recent outcomes the stores keep and demotion looks at;
    ``demotion=False`` turns demotion off.
    """

    name: str
    provisional: Threshold | None = None
    trusted: Threshold | None = None
    function: TrustFunction | None = field(default=None, compare=False)
    initial: TrustLevel = "untrusted"
    demotion: bool = True
    demotion_window: int = DEFAULT_DEMOTION_WINDOW

    def __post_init__(self) -> None:
        if self.demotion_window < 1:
            raise ValueError("demotion_window must be at least 1")

    @classmethod
    def default(
        cls, *, demotion: bool = True, demotion_window: int = DEFAULT_DEMOTION_WINDOW
    ) -> TrustStrategy:
        """Provisional at 10+ runs and >= 90 % success, trusted at 100+ runs and >= 95 %."""
        return cls(
            "default",
            Threshold(10, 0.9),
            Threshold(100, 0.95),
            demotion=demotion,
            demotion_window=demotion_window,
        )

    @classmethod
    def relaxed(
        cls, *, demotion: bool = True, demotion_window: int = DEFAULT_DEMOTION_WINDOW
    ) -> TrustStrategy:
        """Provisional at 3+ runs and >= 80 % success, trusted at 10+ runs and >= 90 %."""
        return cls(
            "relaxed",
            Threshold(3, 0.8),
            Threshold(10, 0.9),
            demotion=demotion,
            demotion_window=demotion_window,
        )

    @classmethod
    def always_trusted(cls) -> TrustStrategy:
        """Every skill is trusted from its first save, whatever its runs."""
        return cls("always_trusted", function=_always_trusted, initial="trusted", demotion=False)

    @classmethod
    def custom(
        cls,
        *,
        provisional: tuple[int, float] | Threshold | None = None,
        trusted: tuple[int, float] | Threshold | None = None,
        function: TrustFunction | None = None,
        initial: TrustLevel = "untrusted",
        demotion: bool = True,
        demotion_window: int = DEFAULT_DEMOTION_WINDOW,
    ) -> TrustStrategy:
        """Thresholds of your own (``(runs, rate)`` per level), or a function of your own.

        ``function(stats, current) -> level`` decides alone; it sees ``stats.recent`` (the last
        ``demotion_window`` outcomes) to demote by its own rule.
        """
        if function is not None and (provisional is not None or trusted is not None):
            raise ValueError("give either thresholds or a function, not both")
        if function is None and provisional is None and trusted is None:
            raise ValueError("give thresholds (provisional=, trusted=) or a function")
        return cls(
            "custom",
            _threshold(provisional),
            _threshold(trusted),
            function=function,
            initial=initial,
            demotion=demotion,
            demotion_window=demotion_window,
        )

    def threshold(self, level: TrustLevel) -> Threshold | None:
        """The threshold of ``level`` (``None`` for ``untrusted`` or a level that cannot be earned)."""
        if level == "provisional":
            return self.provisional
        if level == "trusted":
            return self.trusted
        return None

    def evaluate(self, stats: SkillStats, current: TrustLevel) -> TrustLevel:
        """The level a version at ``current`` has after its stats became ``stats``."""
        if self.function is not None:
            level = self.function(stats, current)
            if level not in TRUST_LEVELS:
                raise ValueError(f"trust function returned {level!r}, not one of {TRUST_LEVELS}")
            return level
        recent = stats.recent[-self.demotion_window :]
        return self._level(stats.executions, stats.successes, sum(recent), len(recent), current)

    def earned(self, stats: SkillStats) -> TrustLevel:
        """The highest level whose threshold the stats meet, over all and over recent runs."""
        recent = stats.recent[-self.demotion_window :]
        return self._earned(stats.executions, stats.successes, sum(recent), len(recent))

    # -- the thresholds' rule on counts (``recent_*``: over the last ``demotion_window`` runs)

    def _level(
        self, executions: int, successes: int, recent_successes: int, recent_runs: int, current: TrustLevel
    ) -> TrustLevel:
        earned = self._earned(executions, successes, recent_successes, recent_runs)
        if trust_rank(earned) > trust_rank(current):
            return earned
        if self.demotion and self._demote(recent_successes, recent_runs, current):
            return TRUST_LEVELS[trust_rank(current) - 1]
        return current

    def _earned(self, executions: int, successes: int, recent_successes: int, recent_runs: int) -> TrustLevel:
        for level in ("trusted", "provisional"):
            threshold = self.threshold(level)
            if (
                threshold is not None
                and executions >= threshold.runs
                and _rate_at_least(successes, executions, threshold.rate)
                and (not recent_runs or _rate_at_least(recent_successes, recent_runs, threshold.rate))
            ):
                return level
        return "untrusted"

    def _demote(self, recent_successes: int, recent_runs: int, current: TrustLevel) -> bool:
        threshold = self.threshold(current)
        if threshold is None or not recent_runs:
            return False
        return not _rate_at_least(recent_successes, recent_runs, threshold.rate)


def _always_trusted(stats: SkillStats, current: TrustLevel) -> TrustLevel:
    return "trusted"


def _threshold(value: tuple[int, float] | Threshold | None) -> Threshold | None:
    if value is None or isinstance(value, Threshold):
        return value
    runs, rate = value
    return Threshold(runs, rate)


def record_outcome(stats: SkillStats, success: bool, window: int) -> SkillStats:
    """``stats`` after one more run (a new object; ``recent`` keeps the last ``window`` outcomes)."""
    return stats.model_copy(
        update={
            "executions": stats.executions + 1,
            "successes": stats.successes + (1 if success else 0),
            "recent": [*stats.recent, success][-window:],
            "last_run_at": utc_now(),
        }
    )


def record_outcomes(
    stats: SkillStats, level: TrustLevel, outcomes: Iterable[bool], strategy: TrustStrategy
) -> tuple[SkillStats, TrustLevel]:
    """The stats and level of a version after ``outcomes``, recorded in order.

    The same as :func:`record_outcome` and :meth:`TrustStrategy.evaluate` applied for each
    outcome in turn: the level is evaluated after every run, so a batch can promote a skill and
    then demote it again, or demote it twice. ``stats`` is not changed (a new object is returned).
    """
    window = strategy.demotion_window
    now = utc_now()
    executions, successes = stats.executions, stats.successes
    recent = collections.deque(stats.recent[-window:], maxlen=window)
    recent_successes = sum(recent)
    counted = False
    for outcome in outcomes:
        success = bool(outcome)
        counted = True
        executions += 1
        successes += success
        if len(recent) == window:
            recent_successes -= recent[0]
        recent.append(success)
        recent_successes += success
        if strategy.function is None:
            level = strategy._level(executions, successes, recent_successes, len(recent), level)
        else:
            runs = {"executions": executions, "successes": successes, "recent": list(recent)}
            level = strategy.evaluate(stats.model_copy(update={**runs, "last_run_at": now}), level)
    if not counted:
        return stats.model_copy(deep=True), level
    runs = {"executions": executions, "successes": successes, "recent": list(recent), "last_run_at": now}
    return stats.model_copy(update=runs), level


def record_decision(stats: SkillStats, approved: bool) -> SkillStats:
    """``stats`` after a person approved (or rejected) a run of the version (a new object)."""
    if approved:
        return stats.model_copy(update={"approvals": stats.approvals + 1})
    return stats.model_copy(update={"rejections": stats.rejections + 1})
