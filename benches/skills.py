"""Skills benchmarks: the cost of a ``skill_*`` call over the same code inline, and
``with_skills`` (BM25 selection of 5) and the store's own search with 10,000 skills stored in
SQLite (or in memory with ``--store memory``).

    python3 benches/skills.py [--skills 10000] [--calls 10000] [--repeat 200]
    python3 benches/skills.py --store memory --no-calls    # the memory store's search only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

import codemode
from codemode.skills import MemorySkillStore, Skill, SkillRuntime, SkillStore, SQLiteSkillStore, with_skills

DOUBLE = Skill(
    name="double",
    description="Double a number",
    code="return { value: input.n * 2 };",
    input_schema={"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]},
    output_schema={"type": "object", "properties": {"value": {"type": "number"}}, "required": ["value"]},
)

WORDS = (
    "fetch weather forecast city order invoice customer report sales total average product stock "
    "price email send schedule meeting calendar user account balance transfer refund shipping "
    "track parcel translate text summary search document file upload convert currency rate"
).split()


async def call_overhead(calls: int, repeat: int) -> None:
    cm = codemode.create_code_mode(tools=[])
    runtime = SkillRuntime(cm, [DOUBLE])
    loop = f"let s = 0; for (let i = 0; i < {calls}; i++) {{ s += BODY; }} return s;"
    programs = {
        "skill_double": loop.replace("BODY", "(await skill_double({n: i})).value"),
        "inline": loop.replace("BODY", "({ value: i * 2 }).value"),
        "inline async fn": "const f = async (input) => ({ value: input.n * 2 });"
        + loop.replace("BODY", "(await f({n: i})).value"),
    }
    timings: dict[str, float] = {}
    for label, program in programs.items():
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = await runtime.execute(program)
            samples.append(time.perf_counter() - started)
            assert result.success, result.error
        timings[label] = statistics.median(samples)
        print(f"{label:>16}: {timings[label] * 1000:8.2f} ms for {calls} calls (median of {repeat})")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await runtime.execute(programs["skill_double"], on_event=_ignore)
        samples.append(time.perf_counter() - started)
    timings["skill_double, events on"] = statistics.median(samples)
    print(f"skill_double with on_event: {timings['skill_double, events on'] * 1000:8.2f} ms")
    for base in ("inline", "inline async fn"):
        extra = (timings["skill_double"] - timings[base]) / calls * 1e6
        print(f"skill_* call over {base}: {extra:.2f} us per call")
    one = [await _time(runtime.execute("return await skill_double({n: 1});")) for _ in range(repeat)]
    bare = [await _time(cm.execute("return { value: 1 * 2 };")) for _ in range(repeat)]
    unused = [await _time(runtime.execute("return { value: 1 * 2 };")) for _ in range(repeat)]
    print(
        f"one execution calling one skill: {statistics.median(one) * 1e6:.0f} us; "
        f"the same code inline without skills: {statistics.median(bare) * 1e6:.0f} us; "
        f"with the skill available but not called: {statistics.median(unused) * 1e6:.0f} us"
    )


def _ignore(event: object) -> None:
    pass


async def _time(awaitable) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    await awaitable
    return time.perf_counter() - started


def _percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p90 of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.9)] * 1000


async def selection(count: int, repeat: int, kind: str) -> None:
    cm = codemode.create_code_mode(tools=[])
    with tempfile.TemporaryDirectory() as directory:
        store: SkillStore = (
            MemorySkillStore() if kind == "memory" else SQLiteSkillStore(Path(directory) / "skills.db")
        )
        started = time.perf_counter()
        for index in range(count):
            a, b, c = (
                WORDS[index % len(WORDS)],
                WORDS[(index * 7) % len(WORDS)],
                WORDS[(index * 13) % len(WORDS)],
            )
            await store.save(
                Skill(
                    name=f"{a}_{b}_{index}",
                    description=f"{a.title()} the {b} of a {c} (variant {index})",
                    code="return { value: input.n * 2 };",
                    input_schema=DOUBLE.input_schema,
                    output_schema=DOUBLE.output_schema,
                    usage_hints=[f"use for {c} {a}"],
                )
            )
        print(f"stored {count} skills in {time.perf_counter() - started:.1f} s")
        messages = [
            {"role": "user", "content": "What is the weather forecast for my city?"},
            {"role": "assistant", "content": "Which city?"},
            {"role": "user", "content": "Paris, and send the summary by email"},
        ]
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            ctx = await with_skills(cm, store=store, messages=messages)
            samples.append(time.perf_counter() - started)
        assert len(ctx.selected) == 5, ctx.selected
        p50, p90 = _percentiles(samples)
        print(f"with_skills, {count} skills in {kind}, 5 selected: p50 {p50:.2f} ms, p90 {p90:.2f} ms")
        query = "weather forecast city paris send summary email"
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            hits = await store.search(query, 5)
            samples.append(time.perf_counter() - started)
        assert len(hits) == 5, hits
        p50, p90 = _percentiles(samples)
        print(f"store.search, {count} skills in {kind}, limit 5: p50 {p50:.2f} ms, p90 {p90:.2f} ms")
        # register_skill as the model calls it in a conversation's context: every check
        # (schemas, parse, references, cycles), the write, and the prompt rebuilt with the
        # new skill; no example_input
        samples = []
        for index in range(repeat):
            ctx = await with_skills(cm, store=store, messages=messages)
            register = next(tool for tool in ctx.tools if tool.name == "register_skill")
            arguments = {
                "name": f"triple_{index}",
                "description": "Triple a number, then double it with the double skill",
                "code": "const d = await skill_double({ n: input.n });\nreturn { value: d.value * 3 / 2 };",
                "input_schema": DOUBLE.input_schema,
                "output_schema": DOUBLE.output_schema,
                "usage_hints": ["for tripling"],
            }
            if index == 0:
                await store.save(DOUBLE)
            started = time.perf_counter()
            outcome = await register.call(arguments)
            samples.append(time.perf_counter() - started)
            assert outcome["success"], outcome
        p50, p90 = _percentiles(samples)
        print(f"register_skill, {count} skills in {kind}: p50 {p50:.2f} ms, p90 {p90:.2f} ms")
        await store.aclose()


async def main(args: argparse.Namespace) -> None:
    if args.calls_bench:
        await call_overhead(args.calls, args.repeat_calls)
    await selection(args.skills, args.repeat, args.store)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skills", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--repeat-calls", type=int, default=20)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument(
        "--no-calls", dest="calls_bench", action="store_false", help="skip the skill_* call overhead part"
    )
    anyio.run(main, parser.parse_args())
