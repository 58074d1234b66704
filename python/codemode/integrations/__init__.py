"""Adapters for the agent frameworks and protocols Python users already use.

Each module needs its optional extra, e.g. ``pip install codemode[pydantic-ai]``:
``pydantic_ai``, ``langchain``, ``openai_agents``, ``mcp``, ``ag_ui``, and ``providers``
(OpenAI and Anthropic tool definitions, no extra needed).
"""
