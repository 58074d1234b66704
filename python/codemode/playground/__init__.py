"""``codemode playground``: a local web app to write programs against your tools, switch
engines, watch the live timeline, chat with a model (or the offline demo model), and manage
skills.

Needs the extra ``pip install "codemode[playground]"`` (Starlette, uvicorn, ag-ui-protocol,
pydantic-ai). The page's script is bundled when the package is built
(``python3 python/codemode/playground/build_web.py`` in a source tree).

    from codemode.playground.app import create_app
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
