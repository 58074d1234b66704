"""MCP: serve ``execute_typescript`` to any MCP client, and code mode over MCP servers.

Needs the ``mcp`` extra (the official MCP Python SDK, 2.x)::

    pip install 'codemode[mcp]'

Serve a code mode (the tool's description carries the system prompt, so every MCP client
shows the model the rules and the TypeScript declarations)::

    cm = codemode.create_code_mode(tools)
    await serve_stdio(cm)                            # or serve_streamable_http(cm, port=8000)

Code mode over MCP servers: their tools become ``external_*`` functions of one
``execute_typescript`` tool::

    servers = {"time": StdioServerParameters(command="mcp-server-time")}
    async with McpProxy.connect(servers) as proxy:
        cm = proxy.code_mode()
        result = await cm.execute("return await external_get_current_time({timezone: 'UTC'})")

The same from the command line: ``codemode mcp serve --tools my_tools`` and
``codemode mcp proxy -- mcp-server-time``.

With a skill store (``serve(cm, skills_store=store)``, ``codemode mcp serve --skills-store
URL``), the server also lists the skill management tools (``search_skills``, ``get_skill``,
``register_skill``, ``update_skill``) and the store's skills as tools of their own, and
programs call them as ``skill_<name>``. A skill registered through the server joins the list:
the clients that listed the tools get ``notifications/tools/list_changed``. ``build_server``
and the other ``serve_*`` functions take a :class:`~codemode.skills.SkillContext` the same way.
"""

from __future__ import annotations

from .elicitation import APPROVAL_SCHEMA as APPROVAL_SCHEMA
from .proxy import McpProxy, serve_proxy
from .server import (
    DECLARATIONS_URI,
    build_server,
    serve,
    serve_stdio,
    serve_streamable_http,
    streamable_http_app,
)
from .server import skills_context as skills_context
from .specs import ServerSpec, check_upstream_name, default_name, load_servers_config, server_spec
from .tools import McpToolError, tool_result_value, tools_from_session
from .upstreams import BACKOFF, McpConnectError, Upstream, list_all_tools

__all__ = [
    "BACKOFF",
    "DECLARATIONS_URI",
    "McpConnectError",
    "McpProxy",
    "McpToolError",
    "ServerSpec",
    "Upstream",
    "build_server",
    "check_upstream_name",
    "default_name",
    "list_all_tools",
    "load_servers_config",
    "serve",
    "serve_proxy",
    "serve_stdio",
    "serve_streamable_http",
    "server_spec",
    "streamable_http_app",
    "tool_result_value",
    "tools_from_session",
]
