"""One test suite over the four skill stores: memory, files, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter

import anyio
import pytest

from codemode.skills import (
    FileSkillStore,
    MemorySkillStore,
    Skill,
    SkillNotFoundError,
    SkillStats,
    SkillStore,
    SkillSummary,
    SQLiteSkillStore,
    TrustStrategy,
)
from codemode.skills.store import FIELD_WEIGHTS, SearchIndex, bm25_rank, query_words, search_fields, words

from .conftest import StoreLocation, worker

pytestmark = pytest.mark.anyio

INPUT_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city"],
}
OUTPUT_SCHEMA = {"type": "object", "properties": {"celsius": {"type": "number"}}}


def make_skill(name: str = "fetch_weather", **fields: object) -> Skill:
    values: dict[str, object] = {
        "description": "Fetch the weather forecast for a city",
        "code": "const r = await external_weather({ city: input.city });\nreturn { celsius: r.temp };",
        "input_schema": INPUT_SCHEMA,
        "output_schema": OUTPUT_SCHEMA,
        "usage_hints": ["use for forecasts", "days defaults to 1"],
        "depends_on": ["to_celsius"],
    }
    values.update(fields)
    return Skill(name=name, **values)  # type: ignore[arg-type]


async def test_save_then_get_returns_every_field(store: SkillStore) -> None:
    saved = await store.save(
        make_skill(trust_level="trusted", version=7, stats=SkillStats(executions=5, successes=5))
    )
    # the store decides version, stats and trust: a caller cannot register a trusted skill
    assert (saved.version, saved.trust_level, saved.stats.executions) == (1, "untrusted", 0)
    loaded = await store.get("fetch_weather")
    assert loaded == saved
    assert loaded is not None
    assert loaded.code == make_skill().code
    assert list(loaded.input_schema["properties"]) == ["city", "days"]  # key order kept
    assert loaded.output_schema == OUTPUT_SCHEMA
    assert loaded.usage_hints == ["use for forecasts", "days defaults to 1"]
    assert loaded.depends_on == ["to_celsius"]
    assert loaded.created_at == loaded.updated_at
    assert loaded.created_at.tzinfo is not None


async def test_output_schema_may_be_absent(store: SkillStore) -> None:
    await store.save(make_skill(output_schema=None))
    loaded = await store.get("fetch_weather")
    assert loaded is not None and loaded.output_schema is None


async def test_missing_skill(store: SkillStore) -> None:
    assert await store.get("nothing_here") is None
    assert await store.get("nothing_here", version=1) is None
    assert await store.versions("nothing_here") == []
    assert await store.delete("nothing_here") is False
    with pytest.raises(SkillNotFoundError):
        await store.record_run("nothing_here", True)
    await store.save(make_skill())
    with pytest.raises(SkillNotFoundError):
        await store.record_run("fetch_weather", True, version=2)
    assert await store.get("fetch_weather", version=2) is None


async def test_new_versions_keep_the_old_ones_and_restart_stats(store: SkillStore) -> None:
    first = await store.save(make_skill(code="return 1;"))
    for _ in range(3):
        await store.record_run("fetch_weather", True)
    await anyio.sleep(0.002)
    second = await store.save(make_skill(code="return 2;", description="Version two"))
    third = await store.save(make_skill(code="return 3;", description="Version three"))
    assert (second.version, third.version) == (2, 3)
    assert third.stats == SkillStats() and third.trust_level == "untrusted"
    assert third.created_at == first.created_at and third.updated_at > first.updated_at
    assert await store.versions("fetch_weather") == [1, 2, 3]
    latest = await store.get("fetch_weather")
    assert latest is not None and (latest.version, latest.code) == (3, "return 3;")
    old = await store.get("fetch_weather", version=1)
    assert old is not None and (old.code, old.stats.executions) == ("return 1;", 3)
    # recording a run on an old version touches that version only
    updated = await store.record_run("fetch_weather", False, version=1)
    assert (updated.version, updated.stats.executions, updated.stats.successes) == (1, 4, 3)
    latest = await store.get("fetch_weather")
    assert latest is not None and latest.stats.executions == 0
    [summary] = await store.list_index()
    assert (summary.version, summary.description) == (3, "Version three")


async def test_delete_removes_every_version(store: SkillStore) -> None:
    await store.save(make_skill())
    await store.save(make_skill())
    await store.save(make_skill("other_skill", description="Something else", usage_hints=[]))
    assert await store.delete("fetch_weather") is True
    assert await store.get("fetch_weather") is None
    assert await store.get("fetch_weather", version=1) is None
    assert await store.versions("fetch_weather") == []
    assert [s.name for s in await store.list_index()] == ["other_skill"]
    assert await store.search("weather forecast") == []
    again = await store.save(make_skill())
    assert again.version == 1
    assert await store.versions("fetch_weather") == [1]


async def test_list_index_has_summaries_without_code(store: SkillStore) -> None:
    for name in ["zeta_skill", "alpha_skill", "mid_skill"]:
        await store.save(make_skill(name))
    await store.record_run("mid_skill", True)
    index = await store.list_index()
    assert [s.name for s in index] == ["alpha_skill", "mid_skill", "zeta_skill"]
    assert all(type(s) is SkillSummary and not hasattr(s, "code") for s in index)
    assert index[1].stats.executions == 1
    assert index[0].input_schema == INPUT_SCHEMA


async def test_record_run_counts_and_promotes(store: SkillStore) -> None:
    await store.save(make_skill())
    for _ in range(9):
        skill = await store.record_run("fetch_weather", True)
    assert (skill.stats.executions, skill.trust_level) == (9, "untrusted")
    skill = await store.record_run("fetch_weather", True)
    assert (skill.stats.executions, skill.stats.successes, skill.trust_level) == (10, 10, "provisional")
    assert skill.stats.last_run_at is not None
    loaded = await store.get("fetch_weather")
    assert loaded is not None and loaded.trust_level == "provisional" and loaded.stats.executions == 10
    # two failures in the last 12 runs: 10/12 < 90 % over the recent window -> demoted
    await store.record_run("fetch_weather", False)
    skill = await store.record_run("fetch_weather", False)
    assert (skill.stats.executions, skill.stats.successes, skill.trust_level) == (12, 10, "untrusted")
    assert skill.stats.recent == [True] * 10 + [False, False]


async def test_record_run_with_another_strategy(store: SkillStore) -> None:
    await store.save(make_skill())
    skill = await store.record_run("fetch_weather", True, trust=TrustStrategy.always_trusted())
    assert skill.trust_level == "trusted"
    relaxed = TrustStrategy.relaxed(demotion_window=4)
    await store.save(make_skill())
    for _ in range(6):
        skill = await store.record_run("fetch_weather", True, trust=relaxed)
    assert skill.trust_level == "provisional"
    assert skill.stats.recent == [True] * 4  # the store keeps the strategy's window


async def test_store_trust_strategy_sets_the_initial_level(location: StoreLocation) -> None:
    store = location.open(TrustStrategy.always_trusted())
    try:
        saved = await store.save(make_skill())
        assert saved.trust_level == "trusted"
        skill = await store.record_run("fetch_weather", False)
        assert skill.trust_level == "trusted"
    finally:
        await store.aclose()


async def test_concurrent_run_recording_in_one_process(store: SkillStore) -> None:
    await store.save(make_skill())
    async with anyio.create_task_group() as tg:
        for index in range(40):
            tg.start_soon(store.record_run, "fetch_weather", index % 2 == 0)
    skill = await store.get("fetch_weather")
    assert skill is not None and (skill.stats.executions, skill.stats.successes) == (40, 20)


# -- batch recording

BATCH_TRUST = TrustStrategy.relaxed(demotion_window=5)  # provisional at 3 runs, trusted at 10


async def test_record_runs_is_record_run_for_each_outcome(store: SkillStore) -> None:
    await store.save(make_skill("batched"))
    await store.save(make_skill("one_by_one"))
    batches = [
        [True] * 10 + [False, False],  # trusted at run 10, demoted at 11 and again at 12
        [True] * 3,
        [],
        [False],
        [True, False, True, True, True, True, True],
        [True] * 25,
    ]
    levels = []
    for batch in batches:
        batched = await store.record_runs("batched", batch, trust=BATCH_TRUST)
        for outcome in batch:
            await store.record_run("one_by_one", outcome, trust=BATCH_TRUST)
        single = await store.get("one_by_one")
        assert single is not None
        assert batched.stats.model_dump(exclude={"last_run_at"}) == single.stats.model_dump(
            exclude={"last_run_at"}
        )
        assert batched.trust_level == single.trust_level
        stored = await store.get("batched")
        assert stored is not None and stored.stats == batched.stats
        assert stored.trust_level == batched.trust_level
        levels.append(batched.trust_level)
    # evaluated after every run: the first batch demotes twice (trusted -> provisional -> untrusted)
    assert levels == ["untrusted", "untrusted", "untrusted", "untrusted", "provisional", "trusted"]
    skill = await store.get("batched")
    assert skill is not None
    assert (skill.stats.executions, skill.stats.successes) == (48, 44)
    assert skill.stats.recent == [True] * 5


async def test_record_runs_demotes_a_trusted_skill(store: SkillStore) -> None:
    await store.save(make_skill())
    promoted = await store.record_runs("fetch_weather", [True] * 10, trust=BATCH_TRUST)
    assert promoted.trust_level == "trusted"
    demoted = await store.record_runs("fetch_weather", [False], trust=BATCH_TRUST)
    assert demoted.trust_level == "provisional"  # 4/5 recent < 90 %
    demoted = await store.record_runs("fetch_weather", [False, False], trust=BATCH_TRUST)
    assert demoted.trust_level == "untrusted"
    assert demoted.stats.recent == [True, True, False, False, False]
    assert demoted.stats.last_run_at is not None
    loaded = await store.get("fetch_weather")
    assert loaded is not None and loaded.trust_level == "untrusted" and loaded.stats.executions == 13


async def test_record_runs_on_a_version_and_on_nothing(store: SkillStore) -> None:
    with pytest.raises(SkillNotFoundError):
        await store.record_runs("nothing_here", [True])
    with pytest.raises(SkillNotFoundError):
        await store.record_runs("nothing_here", [])
    await store.save(make_skill())
    await store.save(make_skill(code="return 2;"))
    with pytest.raises(SkillNotFoundError):
        await store.record_runs("fetch_weather", [True], version=3)
    unchanged = await store.record_runs("fetch_weather", [])
    assert unchanged.version == 2 and unchanged.stats == SkillStats()
    old = await store.record_runs("fetch_weather", [True, False, True], version=1)
    assert (old.version, old.stats.executions, old.stats.successes) == (1, 3, 2)
    latest = await store.get("fetch_weather")
    assert latest is not None and latest.stats.executions == 0
    [summary] = await store.list_index()
    assert summary.stats.executions == 0


async def test_concurrent_batch_recording_in_one_process(store: SkillStore) -> None:
    await store.save(make_skill())
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(store.record_runs, "fetch_weather", [True, False, True, True, False])
            tg.start_soon(store.record_run, "fetch_weather", True)
    skill = await store.get("fetch_weather")
    assert skill is not None and (skill.stats.executions, skill.stats.successes) == (120, 80)


# -- trust set by hand


async def test_set_trust_on_the_latest_and_an_older_version(store: SkillStore) -> None:
    await store.save(make_skill(code="return 1;"))
    await store.record_runs("fetch_weather", [True, True, False])
    await store.save(make_skill(code="return 2;"))
    before = await store.record_run("fetch_weather", True)
    approved = await store.set_trust("fetch_weather", "trusted")
    # only the level changes: stats, version, code and times stay as they were
    assert approved == before.model_copy(update={"trust_level": "trusted"})
    assert await store.get("fetch_weather") == approved
    old = await store.set_trust("fetch_weather", "provisional", version=1)
    assert (old.version, old.trust_level, old.code) == (1, "provisional", "return 1;")
    assert (old.stats.executions, old.stats.successes, old.stats.recent) == (3, 2, [True, True, False])
    assert await store.get("fetch_weather", version=1) == old
    latest = await store.get("fetch_weather")
    assert latest is not None and (latest.version, latest.trust_level) == (2, "trusted")
    # the same level again: no error, nothing changes
    assert await store.set_trust("fetch_weather", "trusted") == approved
    # the index and search see the latest version's new level, with its stats
    [summary] = await store.list_index()
    assert (summary.version, summary.trust_level, summary.stats.executions) == (2, "trusted", 1)
    assert await store.search("forecast") == [summary]
    revoked = await store.set_trust("fetch_weather", "untrusted")
    assert revoked.trust_level == "untrusted" and revoked.stats == approved.stats
    assert [s.trust_level for s in await store.search("forecast")] == ["untrusted"]


async def test_set_trust_on_nothing_or_to_no_level(store: SkillStore) -> None:
    with pytest.raises(SkillNotFoundError):
        await store.set_trust("nothing_here", "trusted")
    await store.save(make_skill())
    with pytest.raises(SkillNotFoundError):
        await store.set_trust("fetch_weather", "trusted", version=2)
    for level in ("approved", "TRUSTED", ""):
        with pytest.raises(ValueError, match="unknown trust level"):
            await store.set_trust("fetch_weather", level)  # type: ignore[arg-type]
    skill = await store.get("fetch_weather")
    assert skill is not None and skill.trust_level == "untrusted"


async def test_runs_after_set_trust_apply_the_strategy_from_the_new_level(store: SkillStore) -> None:
    await store.save(make_skill())
    approved = await store.set_trust("fetch_weather", "trusted")
    assert approved.stats == SkillStats()
    # the default strategy: successes keep the approval (no promotion needed, no demotion)...
    kept = await store.record_runs("fetch_weather", [True] * 5)
    assert (kept.trust_level, kept.stats.executions) == ("trusted", 5)
    # ...failures demote from it: 5/6 recent < 95 % (trusted), then 5/7 < 90 % (provisional)
    demoted = await store.record_run("fetch_weather", False)
    assert demoted.trust_level == "provisional"
    demoted = await store.record_runs("fetch_weather", [False])
    assert demoted.trust_level == "untrusted"
    assert (demoted.stats.executions, demoted.stats.successes) == (7, 5)
    # approved again: the stats stay; a skill revoked by hand climbs back by its runs
    again = await store.set_trust("fetch_weather", "trusted")
    assert again.trust_level == "trusted" and again.stats == demoted.stats
    await store.save(make_skill(code="return 2;"))
    promoted = await store.record_runs("fetch_weather", [True] * 10)
    assert promoted.trust_level == "provisional"
    await store.set_trust("fetch_weather", "untrusted")
    climbed = await store.record_run("fetch_weather", True)  # 11/11: provisional earned again
    assert (climbed.trust_level, climbed.stats.executions) == ("provisional", 11)


async def test_a_persons_decisions_are_counted_beside_the_runs(store: SkillStore) -> None:
    """``record_decision``: approvals and rejections of a version (with_skills(approve="ask")),
    kept apart from its runs and its level, and starting again with each new version."""
    await store.save(make_skill(code="return 1;"))
    await store.record_runs("fetch_weather", [True, False])
    approved = await store.record_decision("fetch_weather", True)
    assert (approved.stats.approvals, approved.stats.rejections) == (1, 0)
    assert (approved.stats.executions, approved.stats.successes, approved.trust_level) == (2, 1, "untrusted")
    await store.record_decision("fetch_weather", True)
    refused = await store.record_decision("fetch_weather", False)
    assert (refused.stats.approvals, refused.stats.rejections) == (2, 1)
    # runs recorded later keep the decisions
    ran = await store.record_runs("fetch_weather", [True])
    assert (ran.stats.approvals, ran.stats.rejections, ran.stats.executions) == (2, 1, 3)
    assert await store.get("fetch_weather") == ran
    [summary] = await store.list_index()
    assert summary.stats.approvals == 2
    await store.save(make_skill(code="return 2;"))
    fresh = await store.record_decision("fetch_weather", False)
    assert (fresh.version, fresh.stats.approvals, fresh.stats.rejections) == (2, 0, 1)
    old = await store.record_decision("fetch_weather", True, version=1)
    assert (old.stats.approvals, old.stats.rejections) == (3, 1)
    with pytest.raises(SkillNotFoundError):
        await store.record_decision("nothing_here", True)


async def test_a_sqlite_store_made_before_decisions_were_counted_opens(tmp_path: anyio.Path) -> None:
    """A database from an earlier release (no ``approvals`` / ``rejections`` columns) gains
    them when opened, its skills and stats kept."""
    import sqlite3

    path = str(tmp_path / "old.db")
    async with SQLiteSkillStore(path) as store:
        await store.save(make_skill())
        await store.record_runs("fetch_weather", [True, True])
    connection = sqlite3.connect(path)
    connection.execute("ALTER TABLE skill_versions DROP COLUMN approvals")
    connection.execute("ALTER TABLE skill_versions DROP COLUMN rejections")
    connection.commit()
    connection.close()
    async with SQLiteSkillStore(path) as store:
        skill = await store.get("fetch_weather")
        assert skill is not None and skill.stats.executions == 2 and skill.stats.approvals == 0
        assert (await store.record_decision("fetch_weather", True)).stats.approvals == 1


async def test_set_trust_loses_no_concurrent_run(store: SkillStore) -> None:
    await store.save(make_skill())
    async with anyio.create_task_group() as tg:
        for index in range(20):
            tg.start_soon(store.record_runs, "fetch_weather", [True, index % 2 == 0])
            tg.start_soon(store.set_trust, "fetch_weather", "trusted")
    skill = await store.get("fetch_weather")
    assert skill is not None and (skill.stats.executions, skill.stats.successes) == (40, 30)


# -- search


SEARCH_SKILLS = [
    ("fetch_weather", "Get the forecast for a city", ["daily temperatures"]),
    ("city_population", "Population of a city from the census", []),
    ("send_email", "Send an email to a user", ["weather alerts go out this way"]),
    ("convert_units", "Convert between metric and imperial units", ["celsius to fahrenheit"]),
    ("tie_b", "Summarize a quarterly report", []),
    ("tie_a", "Summarize a quarterly report", []),
]


async def save_search_skills(store: SkillStore) -> None:
    for name, description, hints in SEARCH_SKILLS:
        await store.save(make_skill(name, description=description, usage_hints=hints))


async def test_search_ranks_by_relevance(store: SkillStore) -> None:
    await save_search_skills(store)
    # a word in the name weighs more than the same word in a hint
    assert [s.name for s in await store.search("weather")] == ["fetch_weather", "send_email"]
    # more of the query's words match: ranked higher; words match in any field
    assert [s.name for s in await store.search("forecast daily census")] == [
        "fetch_weather",
        "city_population",
    ]
    assert [s.name for s in await store.search("FAHRENHEIT!")] == ["convert_units"]  # case, punctuation
    assert [s.name for s in await store.search("population")] == ["city_population"]  # name split at _
    assert await store.search("nonexistent words") == []
    assert await store.search("") == [] and await store.search("  ?! ") == []


async def test_search_ties_are_ordered_by_name_and_limited(store: SkillStore) -> None:
    await save_search_skills(store)
    assert [s.name for s in await store.search("quarterly report")] == ["tie_a", "tie_b"]
    assert [s.name for s in await store.search("quarterly report", limit=1)] == ["tie_a"]
    results = await store.search("city", limit=10)
    assert all(type(s) is SkillSummary for s in results)


async def test_search_sees_the_latest_version(store: SkillStore) -> None:
    await store.save(make_skill("report_maker", description="Build a sales report", usage_hints=[]))
    await store.save(make_skill("report_maker", description="Build an inventory summary", usage_hints=[]))
    assert await store.search("sales") == []
    [hit] = await store.search("inventory")
    assert (hit.name, hit.version) == ("report_maker", 2)


def reference_rank(summaries: list[SkillSummary], query: str, limit: int) -> list[tuple[str, float]]:
    """BM25 as documented, computed over every skill (no index): ``(name, score)``, best first."""
    k1, b = 1.2, 0.75
    terms = query_words(query)
    if not terms or not summaries or limit <= 0:
        return []
    fields = {s.name: [Counter(words(text)) for text in search_fields(s)] for s in summaries}
    lengths = {name: sum(sum(field.values()) for field in f) for name, f in fields.items()}
    average = sum(lengths.values()) / len(summaries) or 1.0
    scored = []
    for name, doc in fields.items():
        score = 0.0
        for term in terms:
            containing = sum(1 for other in fields.values() if any(term in field for field in other))
            idf = max(math.log((len(summaries) - containing + 0.5) / (containing + 0.5)), 1e-6)
            tf = sum(weight * field[term] for weight, field in zip(FIELD_WEIGHTS, doc, strict=True))
            if tf:
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[name] / average))
        if score > 0:
            scored.append((name, score))
    scored.sort(key=lambda item: (-item[1], item[0]))
    return scored[:limit]


async def test_the_memory_index_ranks_like_bm25_over_every_skill() -> None:
    """The memory store's inverted index, kept up to date by saves, new versions, runs and
    deletes, gives the very ranking of BM25 computed over every skill."""
    vocabulary = "weather city report sales email invoice total user stock price send fetch the a of".split()
    rng = random.Random(7)
    store = MemorySkillStore()

    def text(count: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(count))

    names = [f"{rng.choice(vocabulary)}_{index}" for index in range(120)]
    for step in range(400):
        name = rng.choice(names)
        action = rng.random()
        if action < 0.6:
            hints = [text(rng.randint(0, 4)) for _ in range(rng.randint(0, 2))]
            await store.save(make_skill(name, description=text(rng.randint(1, 9)), usage_hints=hints))
        elif action < 0.75:
            await store.delete(name)
        elif await store.versions(name):
            await store.record_run(name, rng.random() < 0.8)
        if step % 20 == 0:
            index = await store.list_index()
            for query in ("weather", "sales report total", "the of a", "send email user 3", "unknown"):
                for limit in (1, 5, 200):
                    expected = reference_rank(index, query, limit)
                    hits = await store.search(query, limit)
                    assert [hit.name for hit in hits] == [name for name, _ in expected], (query, limit)
                    by_name = {s.name: s for s in index}
                    assert all(hit == by_name[hit.name] for hit in hits)  # latest stats and version
                    assert [s.name for s in bm25_rank(index, query, limit)] == [n for n, _ in expected]


def test_search_index_scores_only_the_skills_holding_a_query_word() -> None:
    index = SearchIndex(
        make_skill(name, description=description, usage_hints=[]) for name, description, _ in SEARCH_SKILLS
    )
    assert len(index) == len(SEARCH_SKILLS) and "tie_a" in index
    assert [s.name for s in index.search("quarterly", 10)] == ["tie_a", "tie_b"]
    assert index.remove("tie_a") and not index.remove("tie_a")
    assert [s.name for s in index.search("quarterly", 10)] == ["tie_b"]
    index.remove("tie_b")
    assert index.search("quarterly", 10) == [] and "quarterly" not in index._postings
    assert index.search("", 10) == [] and index.search("city", 0) == []


# -- persistence


async def test_a_second_store_object_sees_the_data(persistent_location: StoreLocation) -> None:
    first = persistent_location.open()
    await first.save(make_skill())
    await first.record_run("fetch_weather", True)
    await first.aclose()
    second = persistent_location.open()
    try:
        loaded = await second.get("fetch_weather")
        assert loaded is not None and loaded.stats.executions == 1
        assert [s.name for s in await second.search("forecast")] == ["fetch_weather"]
    finally:
        await second.aclose()


async def test_a_second_store_object_sees_the_trust_set_by_hand(
    persistent_location: StoreLocation,
) -> None:
    first = persistent_location.open()
    await first.save(make_skill(code="return 1;"))
    await first.record_run("fetch_weather", True)
    await first.save(make_skill(code="return 2;"))
    await first.set_trust("fetch_weather", "trusted")
    await first.set_trust("fetch_weather", "provisional", version=1)
    await first.aclose()
    second = persistent_location.open()
    try:
        latest = await second.get("fetch_weather")
        assert latest is not None and (latest.version, latest.trust_level) == (2, "trusted")
        old = await second.get("fetch_weather", version=1)
        assert old is not None and (old.trust_level, old.stats.executions) == ("provisional", 1)
        [summary] = await second.list_index()
        assert (summary.version, summary.trust_level) == (2, "trusted")
        assert [s.trust_level for s in await second.search("forecast")] == ["trusted"]
        demoted = await second.record_run("fetch_weather", False)
        assert demoted.trust_level == "provisional"
    finally:
        await second.aclose()


async def test_persistence_across_processes(persistent_location: StoreLocation) -> None:
    writer = worker(persistent_location, "save", "double_it", "Double a number", "return input.n * 2;")
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert json.loads(out)["version"] == 1
    reader = worker(persistent_location, "get", "double_it")
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    skill = Skill.model_validate_json(out)
    assert (skill.name, skill.code, skill.version) == ("double_it", "return input.n * 2;", 1)
    store = persistent_location.open()
    try:
        assert await store.get("double_it") == skill
    finally:
        await store.aclose()


@pytest.mark.parametrize("commands", [("record", "record"), ("record", "record_batch")])
async def test_concurrent_run_recording_across_processes(
    persistent_location: StoreLocation, commands: tuple[str, str]
) -> None:
    """Two processes record 100 runs each at once, one at a time or in batches of five."""
    store = persistent_location.open()
    try:
        await store.save(make_skill())
        processes = [worker(persistent_location, command, "fetch_weather", "100") for command in commands]
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", (
                process.stderr.read() if process.stderr else ""
            )
        started = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            assert out.strip() == "done"
        elapsed = time.perf_counter() - started
        skill = await store.get("fetch_weather")
        assert skill is not None
        # every fourth run of each process failed: 2 x 25
        assert (skill.stats.executions, skill.stats.successes) == (200, 150), f"after {elapsed:.2f}s"
        assert len(skill.stats.recent) == store.trust.demotion_window
    finally:
        await store.aclose()


# -- the file store's own promises


async def test_file_store_writes_reviewable_files(tmp_path: anyio.Path) -> None:
    store = FileSkillStore(tmp_path)
    await store.save(make_skill(code="return 1;"))
    await store.save(make_skill(code="return 2;"))
    assert (tmp_path / "fetch_weather.ts").read_text() == "return 2;"
    meta = json.loads((tmp_path / "fetch_weather.json").read_text())
    assert meta["version"] == 2 and meta["description"] == "Fetch the weather forecast for a city"
    assert "code" not in meta
    assert (tmp_path / "fetch_weather.versions" / "1.ts").read_text() == "return 1;"
    assert json.loads((tmp_path / "fetch_weather.versions" / "1.json").read_text())["version"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "fetch_weather.json",
        "fetch_weather.ts",
        "fetch_weather.versions",
    ]


async def test_file_store_crash_before_replace_keeps_the_old_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import codemode.skills.file as file_module

    store = FileSkillStore(tmp_path)
    await store.save(make_skill(code="return 'old';"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash between the temporary write and the replace")

    monkeypatch.setattr(file_module.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        await store.save(make_skill(code="return 'new';"))
    with pytest.raises(OSError, match="simulated crash"):
        await store.record_run("fetch_weather", True)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # old files intact, no temporary file left behind
    skill = await store.get("fetch_weather")
    assert skill is not None and (skill.code, skill.version, skill.stats.executions) == (
        "return 'old';",
        1,
        0,
    )


async def test_file_store_crash_between_code_and_metadata(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import codemode.skills.file as file_module

    store = FileSkillStore(tmp_path)
    await store.save(make_skill(code="return 'old';", description="Old"))
    real_replace = file_module.os.replace

    def crash_on_metadata(src: str, dst: str) -> None:
        if str(dst).endswith("/fetch_weather.json"):
            raise OSError("simulated crash after the code, before the metadata")
        real_replace(src, dst)

    monkeypatch.setattr(file_module.os, "replace", crash_on_metadata)
    with pytest.raises(OSError, match="simulated crash"):
        await store.save(make_skill(code="return 'new';", description="New"))
    monkeypatch.undo()
    assert (tmp_path / "fetch_weather.ts").read_text() == "return 'new';"  # the new code got in
    skill = await store.get("fetch_weather")  # but the reader serves version 1, whole
    assert skill is not None and (skill.version, skill.code, skill.description) == (1, "return 'old';", "Old")
    assert await store.versions("fetch_weather") == [1]
    saved = await store.save(make_skill(code="return 'new';", description="New"))
    assert saved.version == 2
    old = await store.get("fetch_weather", version=1)
    assert old is not None and old.code == "return 'old';"


async def test_file_store_serves_code_edited_by_hand(tmp_path: anyio.Path) -> None:
    store = FileSkillStore(tmp_path)
    await store.save(make_skill(code="return 1;"))
    (tmp_path / "fetch_weather.ts").write_text("return 42; // reviewed")
    skill = await store.get("fetch_weather")
    assert skill is not None and skill.code == "return 42; // reviewed"


async def test_file_store_ignores_names_that_are_not_skills(tmp_path: anyio.Path) -> None:
    store = FileSkillStore(tmp_path)
    await store.save(make_skill())
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "Not-A-Skill.json").write_text("{}")
    assert [s.name for s in await store.list_index()] == ["fetch_weather"]
    assert await store.get("../fetch_weather") is None
