"""The playground's server through its HTTP API (the ASGI app, in process): runs on the real
engine streamed as AG-UI events, limits and hostile programs, the offline chat's scenarios
with real tool calls, the skills panel, the token and the loopback check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("pydantic_ai")

import httpx

from codemode.cli import load_tools
from codemode.playground.app import create_app
from codemode.playground.offline import SCENARIOS, SKILL_NAME
from codemode.skills import MemorySkillStore, Skill

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # pydantic-ai runs on asyncio only


@pytest.fixture
def store() -> MemorySkillStore:
    return MemorySkillStore()


@pytest.fixture
async def client(store: MemorySkillStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_tools("codemode.demo"), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client
    await app.state.playground.engines.aclose()


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The AG-UI events of a Server-Sent Events body."""
    assert response.headers["content-type"].startswith("text/event-stream")
    return [json.loads(chunk[len("data: ") :]) for chunk in response.text.split("\n\n") if chunk.strip()]


def custom(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e["value"] for e in events if e["type"] == "CUSTOM" and e["name"] == name]


async def run(client: httpx.AsyncClient, code: str, **body: Any) -> list[dict[str, Any]]:
    response = await client.post("/api/run", json={"code": code, **body})
    assert response.status_code == 200, response.text
    return events_of(response)


async def test_info_lists_engines_tools_prompt_and_the_offline_model(client: httpx.AsyncClient) -> None:
    info = (await client.get("/api/info")).json()
    engines = {e["id"]: e for e in info["engines"]}
    assert list(engines) == ["quickjs", "quickjs-process", "v8", "cloudflare"]
    assert engines["quickjs"]["available"] is True
    assert "declare function external_getTopProducts" in info["declarations"]
    assert "execute_typescript" in info["systemPrompt"]
    assert info["defaults"] == {"timeout": 30.0, "memoryLimitMb": 128}
    assert info["tools"] == ["getTopProducts", "getProductRatings"]
    assert "external_getTopProducts" in info["example"]
    assert info["chat"]["offline"] is True and "Offline demo model" in info["chat"]["model"]
    assert [s["id"] for s in info["chat"]["scenarios"]] == ["top-products", "recover", "skill"]


async def test_a_run_streams_its_timeline_then_the_result(client: httpx.AsyncClient) -> None:
    info = (await client.get("/api/info")).json()
    events = await run(client, info["example"])
    types = [e["type"] for e in events]
    assert types[:4] == ["RUN_STARTED", "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END"]
    assert types[-3:] == ["TOOL_CALL_RESULT", "CUSTOM", "RUN_FINISHED"]
    calls = custom(events, "code_mode:external_call")
    results = custom(events, "code_mode:external_result")
    assert len(calls) == len(results) == 6
    assert sorted(c["callId"] for c in calls) == sorted(r["callId"] for r in results) == [1, 2, 3, 4, 5, 6]
    assert custom(events, "code_mode:console")[0]["text"] == "ranking 5 products"
    (result,) = custom(events, "playground:result")
    assert result["success"] is True and result["engine"] == "quickjs" and result["toolCalls"] == 6
    assert result["result"][0] == {"name": "Wireless Earbuds", "sales": 15230, "averageRating": 4}
    assert result["durationMs"] > 0 and result["wallMs"] >= result["durationMs"]


async def test_an_error_comes_with_its_kind_line_and_frame(client: httpx.AsyncClient) -> None:
    events = await run(client, "const a: number = 1;\nconsole.log('before');\nthrow new Error('boom ' + a);")
    (result,) = custom(events, "playground:result")
    error = result["error"]
    assert result["success"] is False and error["kind"] == "runtime" and error["message"] == "boom 1"
    assert error["line"] == 3  # the column is the engine's (docs/engines.md)
    assert "3 | throw new Error('boom ' + a);" in error["frame"]
    assert result["logs"] == ["before"]
    syntax = custom(await run(client, "const = 1;"), "playground:result")[0]["error"]
    assert syntax["kind"] == "syntax" and syntax["line"] == 1


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("while (true) {}", "timeout"),
        ("const a: string[] = []; while (true) a.push('x'.repeat(1000));", "memory"),
        ("const f = (): number => f(); return f();", "memory"),
        ("const s = 'x'.repeat(2 ** 20); return Array(20).fill(s);", "result"),
        ("for (let i = 0; i < 1e6; i++) console.log('flood ' + i);", None),
    ],
)
async def test_a_hostile_program_is_just_another_failed_run(
    client: httpx.AsyncClient, code: str, kind: str | None
) -> None:
    events = await run(client, code, timeout=2, memoryLimitMb=64)
    (result,) = custom(events, "playground:result")
    if kind is None:  # a console flood is cut at the log limit (10,000 lines)
        assert len(result["logs"]) <= 10_001 and "flood 0" in result["logs"][0]
    else:
        assert result["success"] is False and result["error"]["kind"] == kind
    assert events[-1]["type"] == "RUN_FINISHED"
    after = custom(await run(client, "return 6 * 7"), "playground:result")[0]
    assert after["success"] is True and after["result"] == 42


async def test_bad_requests_are_refused_with_a_reason(client: httpx.AsyncClient) -> None:
    for body, reason in [
        ({"code": "1", "engine": "rhino"}, "unknown engine 'rhino'"),
        ({"code": "1", "timeout": 1000}, "timeout"),
        ({"code": "1", "memoryLimitMb": 0}, "memoryLimitMb"),
        ({"engine": "quickjs"}, "code"),
    ]:
        response = await client.post("/api/run", json=body)
        assert response.status_code == 400 and reason in response.json()["error"], body
    response = await client.post("/api/run", content=b"{not json")
    assert response.status_code == 400


async def test_the_engines_run_the_same_program(client: httpx.AsyncClient) -> None:
    info = (await client.get("/api/info")).json()
    available = [e["id"] for e in info["engines"] if e["available"] and e["id"] != "cloudflare"]
    assert "quickjs" in available and "quickjs-process" in available
    for engine in available:
        (result,) = custom(await run(client, info["example"], engine=engine), "playground:result")
        assert result["success"] is True and result["engine"] == engine
        assert [row["name"] for row in result["result"]][:2] == ["Wireless Earbuds", "Insulated Water Bottle"]


async def chat(client: httpx.AsyncClient, thread: str, message: str) -> list[dict[str, Any]]:
    response = await client.post("/api/chat", json={"threadId": thread, "message": message})
    assert response.status_code == 200, response.text
    events = events_of(response)
    assert events[0]["type"] == "RUN_STARTED" and events[-1]["type"] == "RUN_FINISHED"
    return events


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")


def tool_calls(events: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Each tool call of the model: its name and its output."""
    names = {e["toolCallId"]: e["toolCallName"] for e in events if e["type"] == "TOOL_CALL_START"}
    return [
        (names[e["toolCallId"]], json.loads(e["content"])) for e in events if e["type"] == "TOOL_CALL_RESULT"
    ]


async def test_offline_chat_top_products(client: httpx.AsyncClient) -> None:
    events = await chat(client, "t1", SCENARIOS[0].prompt)
    ((name, output),) = tool_calls(events)
    assert name == "execute_typescript" and output["success"] is True
    assert "Wireless Earbuds" in text_of(events) and "4.40" in text_of(events)
    # the program's events come in program mode's shape, tagged with the model's tool call id
    (call_id,) = [e["toolCallId"] for e in events if e["type"] == "TOOL_CALL_START"]
    calls = custom(events, "code_mode:external_call")
    assert len(calls) == 6 and {c["toolCallId"] for c in calls} == {call_id}


async def test_offline_chat_recovers_from_a_failing_call(client: httpx.AsyncClient) -> None:
    events = await chat(client, "t2", SCENARIOS[1].prompt)
    (first, output1), (second, output2) = tool_calls(events)
    assert first == second == "execute_typescript"
    assert output1["success"] is False and output1["error"]["kind"] == "tool"
    assert "Unknown product: p-999" in output1["error"]["message"]
    assert output2["success"] is True and output2["result"]["name"] == "Wireless Earbuds"
    assert custom(events, "code_mode:external_error")[0]["error"] == "Unknown product: p-999"


async def test_offline_chat_registers_a_skill_then_uses_it(
    client: httpx.AsyncClient, store: MemorySkillStore
) -> None:
    events = await chat(client, "t3", SCENARIOS[2].prompt)
    (register, registered), (execute, used) = tool_calls(events)
    assert register == "register_skill" and registered["result"]["name"] == SKILL_NAME
    assert execute == "execute_typescript" and used["success"] is True
    assert [row["name"] for row in used["result"]] == [
        "Insulated Water Bottle",
        "Wireless Earbuds",
        "Smart Watch",
    ]
    assert custom(events, "code_mode:skill_call")[0]["skill"] == SKILL_NAME
    (listed,) = (await client.get("/api/skills")).json()["skills"]
    assert (
        listed["name"] == SKILL_NAME and listed["stats"]["runs"] == 1 and listed["trustLevel"] == "untrusted"
    )
    # the same thread goes on with its history; a reset starts over
    again = await chat(client, "t3", "thanks!")
    assert tool_calls(again) == [] and "offline demo model" in text_of(again)
    assert (await client.post("/api/chat/reset", json={"threadId": "t3"})).json() == {"reset": True}


async def test_the_skills_panel_runs_approves_and_deletes(
    client: httpx.AsyncClient, store: MemorySkillStore
) -> None:
    await store.save(Skill(name="double", description="Double a number", code="return input.n * 2;"))
    ran = (await client.post("/api/skills/double/run", json={"input": {"n": 21}})).json()
    assert ran["success"] is True and ran["result"] == 42
    failed = (await client.post("/api/skills/double/run", json={"input": {"n": "x"}})).json()
    assert failed["success"] is True and failed["result"] is None  # NaN is null in JSON
    approved = (await client.post("/api/skills/double/approve")).json()
    assert approved["trustLevel"] == "trusted" and approved["stats"]["runs"] == 2
    assert (await client.delete("/api/skills/double")).json() == {"deleted": True}
    assert (await client.get("/api/skills")).json() == {"skills": []}
    for response in [
        await client.post("/api/skills/double/run", json={"input": {}}),
        await client.post("/api/skills/double/approve"),
        await client.delete("/api/skills/double"),
    ]:
        assert response.status_code == 404 and "double" in response.json()["error"]


async def test_a_token_is_required_on_every_request(store: MemorySkillStore) -> None:
    app = create_app(load_tools("codemode.demo"), store, token="s3cret-token", loopback_only=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3:8765") as client:
        assert (await client.get("/api/info")).status_code == 401
        assert (await client.get("/api/info", headers={"x-codemode-token": "wrong"})).status_code == 401
        assert (
            await client.get("/api/info", headers={"x-codemode-token": "s3cret-token"})
        ).status_code == 200
        page = await client.get("/?token=s3cret-token")
        assert page.status_code in (200, 503) and "codemode_token=s3cret-token" in page.headers["set-cookie"]
        assert "HttpOnly" in page.headers["set-cookie"]
        # the page's own requests carry the cookie now
        assert (await client.get("/api/info")).status_code == 200
    await app.state.playground.engines.aclose()


async def test_on_loopback_only_loopback_host_names_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/info", headers={"host": "attacker.example"})).status_code == 400
    assert (await client.get("/api/info", headers={"host": "localhost:8765"})).status_code == 200
