"""The playground in a real browser: Debian's chromium driven by Playwright, against the real
server (uvicorn on 127.0.0.1) running programs on the real engines.

Screenshots of the run go to ``$CODEMODE_SCREENSHOTS`` (default ``build/screenshots``); the
README's come from here.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("starlette")
pytest.importorskip("pydantic_ai")
sync_api = pytest.importorskip("playwright.sync_api")

import uvicorn  # noqa: E402

from codemode.cli import load_tools  # noqa: E402
from codemode.playground.app import BUNDLE, create_app  # noqa: E402
from codemode.playground.offline import SKILL_NAME  # noqa: E402
from codemode.skills import MemorySkillStore, Skill  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("CODEMODE_SCREENSHOTS", "build/screenshots"))
TIMEOUT_MS = 30_000

if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
if not BUNDLE.is_file():
    pytest.fail("the playground's page is not built: python3 python/codemode/playground/build_web.py")

Page = Any  # playwright.sync_api.Page


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Server:
    """The playground app under uvicorn in a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.sock = _free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the playground server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def _cloudflare() -> tuple[str | None, str | None]:
    """The session's local Worker, where workerd is installed (the engine list then has it)."""
    from tests.conftest import _local_worker, _workerd_missing

    if _workerd_missing() is not None:
        return None, None
    worker = _local_worker()
    return worker.url, worker.secret


@pytest.fixture(scope="module")
def store() -> MemorySkillStore:
    return MemorySkillStore()


@pytest.fixture(scope="module")
def server(store: MemorySkillStore) -> Iterator[Server]:
    url, secret = _cloudflare()
    app = create_app(load_tools("codemode.demo"), store, cloudflare_url=url, cloudflare_secret=secret)
    with Server(app) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    page.get_by_test_id("run-button").wait_for()
    yield page
    context.close()
    assert errors == [], f"the page threw: {errors}"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def set_program(page: Page, code: str) -> None:
    editor = page.get_by_test_id("editor").locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def run_program(page: Page, engine: str = "quickjs") -> str:
    page.get_by_test_id("engine-select").select_option(engine)
    page.get_by_test_id("run-button").click()
    status = page.get_by_test_id("run-status")
    sync_api.expect(status).not_to_have_text("running", timeout=TIMEOUT_MS)
    sync_api.expect(status).to_have_text(re.compile("done|failed"))
    return str(status.text_content())


def available_engines(page: Page) -> list[str]:
    options = page.get_by_test_id("engine-select").locator("option:not([disabled])")
    return [str(options.nth(i).get_attribute("value")) for i in range(options.count())]


def test_program_mode_on_every_installed_engine(page: Page) -> None:
    engines = available_engines(page)
    assert {"quickjs", "quickjs-process"} <= set(engines)
    assert "declare function external_getTopProducts" in str(
        page.get_by_test_id("declarations").text_content()
    )
    for engine in engines:
        assert run_program(page, engine) == "done", engine
        calls = (
            page.get_by_test_id("timeline")
            .get_by_test_id("timeline-entry")
            .and_(page.locator("[data-kind=call]"))
        )
        sync_api.expect(calls).to_have_count(6)
        assert calls.and_(page.locator("[data-state=ok]")).count() == 6
        consoles = page.get_by_test_id("timeline").locator("[data-kind=console]")
        sync_api.expect(consoles.first).to_contain_text("ranking 5 products")
        result = page.get_by_test_id("result-json")
        sync_api.expect(result).to_contain_text("Wireless Earbuds")
        sync_api.expect(result).to_contain_text("4.4")
        if engine == "quickjs":
            shot(page, "program")


def test_an_error_shows_its_frame_and_marks_the_line(page: Page) -> None:
    set_program(
        page,
        "const top = await external_getTopProducts({ limit: 2 })\n"
        "console.log(top.products.length)\n"
        "const best = top.products.find((p: any) => p.price > 1000)\n"
        "return best.name.toUpperCase()\n",
    )
    assert run_program(page) == "failed"
    error = page.get_by_test_id("result-error")
    sync_api.expect(error.get_by_test_id("error-kind")).to_have_text(re.compile("runtime"))
    sync_api.expect(error.get_by_test_id("error-message")).to_contain_text("undefined")
    sync_api.expect(error.get_by_test_id("error-frame")).to_contain_text("4 | return best.name.toUpperCase()")
    marked = page.locator(".cm-codemode-error-line")
    sync_api.expect(marked).to_have_count(1)
    sync_api.expect(marked).to_have_text("return best.name.toUpperCase()")
    shot(page, "error")
    # the next edit clears the mark
    page.get_by_test_id("editor").locator(".cm-content").click()
    page.keyboard.insert_text(" ")
    sync_api.expect(marked).to_have_count(0)


def test_compare_two_engines_side_by_side(page: Page) -> None:
    page.get_by_test_id("engine-select").select_option("quickjs")
    page.get_by_test_id("compare-select").select_option("quickjs-process")
    page.get_by_test_id("compare-button").click()
    rows = page.get_by_test_id("compare-table").get_by_test_id("compare-row")
    sync_api.expect(rows).to_have_count(2)
    assert {rows.nth(i).get_attribute("data-engine") for i in range(2)} == {"quickjs", "quickjs-process"}
    shot(page, "compare")


def chat_send(page: Page, scenario: str) -> Any:
    page.get_by_test_id(f"scenario-{scenario}").click()
    status = page.get_by_test_id("chat-status")
    sync_api.expect(status).to_have_text("done", timeout=TIMEOUT_MS)
    return page.get_by_test_id("chat-log")


def test_chat_with_the_offline_model_through_every_scenario(page: Page, store: MemorySkillStore) -> None:
    page.get_by_test_id("mode-chat").click()
    sync_api.expect(page.get_by_test_id("model-label")).to_contain_text("Offline demo model")

    log = chat_send(page, "top-products")
    cards = log.get_by_test_id("chat-tool-call")
    sync_api.expect(cards).to_have_count(1)
    sync_api.expect(cards.first).to_have_attribute("data-tool", "execute_typescript")
    sync_api.expect(cards.first).to_have_attribute("data-state", "ok")
    sync_api.expect(cards.first.locator("[data-kind=call]")).to_have_count(6)
    assistant = log.locator("[data-testid=chat-message][data-role=assistant]")
    sync_api.expect(assistant.last).to_contain_text("Wireless Earbuds")

    log = chat_send(page, "recover")
    sync_api.expect(cards).to_have_count(3)
    sync_api.expect(cards.nth(1)).to_have_attribute("data-state", "error")
    sync_api.expect(cards.nth(1)).to_contain_text("Unknown product: p-999")
    sync_api.expect(cards.nth(2)).to_have_attribute("data-state", "ok")

    log = chat_send(page, "skill")
    sync_api.expect(cards).to_have_count(5)
    sync_api.expect(cards.nth(3)).to_have_attribute("data-tool", "register_skill")
    sync_api.expect(cards.nth(4)).to_have_attribute("data-state", "ok")
    sync_api.expect(cards.nth(4).locator("[data-kind=skill]").first).to_contain_text(SKILL_NAME)
    # the skills panel shows the registration, and the run the program made with it
    item = page.get_by_test_id("skills-panel").locator(f"[data-testid=skill-item][data-name={SKILL_NAME}]")
    sync_api.expect(item.get_by_test_id("skill-trust")).to_have_text("untrusted")
    sync_api.expect(item.get_by_test_id("skill-runs")).to_contain_text("1")
    shot(page, "chat")


def off_loop(function: Any, *args: Any) -> Any:
    """``anyio.run(function, *args)`` in a thread of its own (Playwright's loop runs in this one)."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(anyio.run(function, *args)))
    thread.start()
    thread.join(30)
    return outcome[0]


def test_the_skills_panel_follows_the_store_and_runs_approves_deletes(
    page: Page, store: MemorySkillStore
) -> None:
    skill = Skill(name="double_it", description="Double a number", code="return input.n * 2;")
    off_loop(store.save, skill)  # saved behind the page's back: the panel learns of it
    item = page.get_by_test_id("skills-panel").locator("[data-testid=skill-item][data-name=double_it]")
    sync_api.expect(item).to_have_count(1)
    sync_api.expect(item.get_by_test_id("skill-code")).to_contain_text("return input.n * 2;")
    item.get_by_test_id("skill-input").fill('{"n": 21}')
    item.get_by_test_id("skill-run").click()
    sync_api.expect(item.get_by_test_id("skill-output")).to_contain_text("42")
    sync_api.expect(item.get_by_test_id("skill-runs")).to_contain_text("1")
    item.get_by_test_id("skill-approve").click()
    sync_api.expect(item.get_by_test_id("skill-trust")).to_have_text("trusted")
    shot(page, "skills")
    page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_test_id("skill-delete").click()
    sync_api.expect(item).to_have_count(0)
    assert off_loop(store.get, "double_it") is None


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("while (true) {}", "timeout"),
        ("const a: string[] = []\nwhile (true) a.push('x'.repeat(4096))", "memory"),
    ],
)
def test_the_server_survives_a_hostile_program(page: Page, server: Server, code: str, kind: str) -> None:
    page.get_by_test_id("timeout-input").fill("1")
    page.get_by_test_id("memory-input").fill("32")
    set_program(page, code)
    assert run_program(page) == "failed"
    sync_api.expect(page.get_by_test_id("error-kind")).to_have_text(re.compile(kind))
    set_program(page, "return 6 * 7")
    assert run_program(page) == "done"
    sync_api.expect(page.get_by_test_id("result-json")).to_contain_text("42")


def test_beyond_loopback_the_cli_prints_a_token_that_every_request_needs(browser: Any) -> None:
    port = _free_socket().getsockname()[1]
    command = [sys.executable, "-m", "codemode.cli", "playground", "--host", "0.0.0.0", "--port", str(port)]
    proc = subprocess.Popen([*command, "--no-browser"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://0\.0\.0\.0:\d+/\?token=(\S+)", line)
        assert match, line
        token = match.group(1)
        base = f"http://127.0.0.1:{port}/"
        context = browser.new_context()
        deadline = time.monotonic() + 30
        while True:
            try:
                refused = context.request.get(base + "api/info")
                break
            except Exception:
                assert time.monotonic() < deadline, "the CLI's server did not start"
                time.sleep(0.1)
        assert refused.status == 401
        page = context.new_page()
        page.goto(f"{base}?token={token}")
        assert run_program(page) == "done"
        sync_api.expect(page.get_by_test_id("result-json")).to_contain_text("Wireless Earbuds")
        context.close()
    finally:
        proc.terminate()
        proc.wait(30)
