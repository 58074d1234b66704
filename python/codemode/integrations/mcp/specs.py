"""Upstream MCP servers as given: :data:`ServerSpec`, read from a command line
(:func:`server_spec`) or a config file (:func:`load_servers_config`), and their names
(:func:`default_name`, :func:`check_upstream_name`)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from pathlib import Path, PurePath
from urllib.parse import urlsplit

from mcp.client.stdio import StdioServerParameters

ServerSpec = StdioServerParameters | str
"""An upstream MCP server: a command to run (stdio) or a streamable HTTP URL."""


def server_spec(command: str | Sequence[str]) -> ServerSpec:
    """An upstream server from a command line (a shell-quoted string or its words) or an
    ``http(s)://`` URL (streamable HTTP)."""
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if not words:
        raise ValueError("empty MCP server command")
    if len(words) == 1 and words[0].startswith(("http://", "https://")):
        return words[0]
    return StdioServerParameters(command=words[0], args=words[1:])


def load_servers_config(path: str | Path) -> dict[str, ServerSpec]:
    """Servers from a JSON file in the usual MCP client format::

    {"mcpServers": {"time": {"command": "mcp-server-time", "args": [], "env": {}, "cwd": "."},
                    "remote": {"url": "http://127.0.0.1:8000/mcp"}}}

    Raises ``FileNotFoundError``, ``json.JSONDecodeError`` (a ``ValueError``) for a file that
    is not JSON, and ``ValueError`` naming the server whose entry has the wrong shape.
    """
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = config.get("mcpServers", config) if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected an object mapping server names to servers")
    servers: dict[str, ServerSpec] = {}
    for name, entry in entries.items():
        shape = f'{path}: server {name!r} must be {{"command": ..., "args": [...]}} or {{"url": ...}}'
        if not isinstance(entry, dict):
            raise ValueError(shape)
        if "url" in entry:
            servers[name] = str(entry["url"])
        elif isinstance(entry.get("command"), str) and isinstance(entry.get("args", []), list):
            servers[name] = StdioServerParameters(
                command=entry["command"],
                args=[str(arg) for arg in entry.get("args", [])],
                env=entry.get("env"),
                cwd=entry.get("cwd"),
            )
        else:
            raise ValueError(shape)
    return servers


def check_upstream_name(name: str) -> str:
    """``name`` when it can name an upstream (its tools' prefix: ``external_<name>_<tool>``),
    else ``ValueError`` saying why."""
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(
            f"upstream name {name!r} is not an identifier: use letters, digits and _, "
            "not starting with a digit (it prefixes the functions: external_<name>_<tool>)"
        )
    return name


_LAUNCHER = re.compile(r"(python[0-9.]*|py|node|npx|bunx|bun|deno|uv|uvx|pipx|sh|bash)(\.exe)?")
_LAUNCHER_WORDS = frozenset({"run", "tool", "exec"})
_SCRIPT_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts")
_GENERIC_STEMS = frozenset({"index", "main", "server", "__main__", "cli"})
_PACKAGING_DIRS = frozenset({"dist", "build", "src", "lib", "bin", "node_modules"})
_NAME_AFFIXES = ("mcp_server_", "server_", "mcp_", "_mcp_server", "_server", "_mcp")


def default_name(spec: ServerSpec) -> str:
    """A short, predictable upstream name: from a URL its host's name (``mcp.deepwiki.com``:
    ``deepwiki``; a loopback or IP address: ``local``), from a command its program's name,
    or the script's or package's it runs (``mcp-server-time``, ``python -m mcp_server_time``
    and ``uvx mcp-server-time``: ``time``; ``npx -y @modelcontextprotocol/server-everything``:
    ``everything``)."""
    if isinstance(spec, str):
        host = urlsplit(spec).hostname or ""
        if host == "localhost" or not host or host.replace(".", "").isdigit() or ":" in host:
            return "local"
        labels = [label for label in host.split(".")[:-1] if label not in ("www", "mcp", "api")]
        return _identifier(labels[0] if labels else host.split(".")[0])
    words = [spec.command, *spec.args]
    target = words[0]
    if _LAUNCHER.fullmatch(PurePath(target).name):
        if "-m" in words[1:-1]:
            target = words[words.index("-m") + 1]
        else:
            rest = [w for w in words[1:] if not w.startswith("-") and w not in _LAUNCHER_WORDS]
            target = rest[0] if rest else target
    if target.startswith("@"):  # an npm package: @scope/name@version
        target = target.split("/", 1)[-1]
    head, _, version = target.rpartition("@")
    path = PurePath(head if head and "/" not in version else target)  # name@1.2.3: name
    stem = path.stem if path.suffix in _SCRIPT_SUFFIXES else path.name
    if stem in _GENERIC_STEMS:  # dist/index.js: the package's directory names it
        parents = [part for part in reversed(path.parent.parts) if part not in _PACKAGING_DIRS]
        stem = parents[0] if parents else stem
    return _identifier(stem)


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text.lower()).strip("_")
    for affix in _NAME_AFFIXES:
        shorter = name.removeprefix(affix) if affix.endswith("_") else name.removesuffix(affix)
        if shorter != name and shorter:
            name = shorter
            break
    if not name:
        return "mcp"
    return name if name[0].isalpha() or name[0] == "_" else f"s{name}"


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _describe(spec: ServerSpec) -> str:
    if isinstance(spec, str):
        return spec
    return shlex.join([spec.command, *spec.args])
