"""The engines the playground can run programs on, and one code mode per engine over the same
tools (made when first used, closed with the app)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..code_mode import CodeMode, create_code_mode
from ..tools import ToolBinding

CLOUDFLARE_URL_ENV = "CODEMODE_CLOUDFLARE_URL"
CLOUDFLARE_SECRET_ENV = "CODEMODE_CLOUDFLARE_SECRET"


@dataclass(frozen=True)
class Engine:
    """One engine as the page lists it: ``available`` is false, with the reason in ``detail``,
    where this machine or this install lacks it."""

    id: str
    label: str
    available: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "available": self.available, "detail": self.detail}


def _v8_missing() -> str | None:
    """Why V8 cannot run here, or ``None`` when it can."""
    try:
        from ..v8._driver import find_addon, find_node

        find_node()
        find_addon()
    except (ImportError, RuntimeError) as e:
        return str(e)
    return None


def detect_engines(cloudflare_url: str | None = None, cloudflare_secret: str | None = None) -> list[Engine]:
    """Every engine, available or not, in the order the page offers them (the Cloudflare
    Worker's URL and secret default to ``$CODEMODE_CLOUDFLARE_URL`` and ``..._SECRET``)."""
    engines = [
        Engine("quickjs", "QuickJS", True, "embedded, in process"),
        Engine("quickjs-process", "QuickJS (process isolation)", True, "confined worker processes"),
    ]
    v8_missing = _v8_missing()
    engines.append(Engine("v8", "V8", v8_missing is None, v8_missing or "isolated-vm, an isolate per run"))
    url = cloudflare_url or os.environ.get(CLOUDFLARE_URL_ENV)
    if url and (cloudflare_secret or os.environ.get(CLOUDFLARE_SECRET_ENV)):
        engines.append(Engine("cloudflare", "Cloudflare Worker", True, url))
    else:
        engines.append(
            Engine(
                "cloudflare",
                "Cloudflare Worker",
                False,
                f"set {CLOUDFLARE_URL_ENV} and {CLOUDFLARE_SECRET_ENV} (codemode cloudflare dev prints them)",
            )
        )
    return engines


def _driver(engine: Engine, cloudflare_secret: str | None) -> Any:
    if engine.id == "quickjs":
        return None  # create_code_mode's default: QuickJS in process
    if engine.id == "quickjs-process":
        from ..quickjs import QuickJSDriver

        return QuickJSDriver(isolation="process")
    if engine.id == "v8":
        from ..v8 import V8Driver

        return V8Driver()
    from ..cloudflare import CloudflareDriver

    return CloudflareDriver(engine.detail, cloudflare_secret or os.environ[CLOUDFLARE_SECRET_ENV])


class Engines:
    """The engines of one playground and a code mode per engine, made on first use."""

    def __init__(
        self,
        tools: Sequence[ToolBinding],
        cloudflare_url: str | None = None,
        cloudflare_secret: str | None = None,
    ) -> None:
        self.tools = list(tools)
        self.listed = detect_engines(cloudflare_url, cloudflare_secret)
        self._cloudflare_secret = cloudflare_secret
        self._by_id = {engine.id: engine for engine in self.listed}
        self._code_modes: dict[str, CodeMode] = {}

    def code_mode(self, engine_id: str) -> CodeMode:
        """The code mode running on ``engine_id``; ``ValueError`` if it is unknown or missing here."""
        engine = self._by_id.get(engine_id)
        if engine is None:
            raise ValueError(f"unknown engine {engine_id!r}; the engines: {', '.join(self._by_id)}")
        if not engine.available:
            raise ValueError(f"the {engine.label} engine is not available here: {engine.detail}")
        cm = self._code_modes.get(engine_id)
        if cm is None:
            cm = self._code_modes[engine_id] = create_code_mode(
                self.tools, driver=_driver(engine, self._cloudflare_secret)
            )
        return cm

    async def aclose(self) -> None:
        for cm in self._code_modes.values():
            await cm.aclose()
        self._code_modes.clear()
