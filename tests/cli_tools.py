"""Tools for the CLI tests (loaded by `codemode ... --tools tests/cli_tools.py`)."""

from __future__ import annotations

from typing import Any

import codemode


async def _lookup(args: dict[str, Any]) -> dict[str, Any]:
    stock = {"apple": 3, "pear": 0}
    if args["item"] not in stock:
        raise KeyError(f"no such item: {args['item']}")
    return {"item": args["item"], "stock": stock[args["item"]]}


TOOLS = [
    codemode.Tool.from_schema(
        "lookup",
        "Stock level of one item",
        {"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]},
        {"type": "object", "properties": {"item": {"type": "string"}, "stock": {"type": "integer"}}},
        _lookup,
    )
]
