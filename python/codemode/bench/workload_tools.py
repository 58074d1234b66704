"""The five benchmark tools of ``workloads/tools.json``, built with the public ``codemode`` API.

Names, descriptions, input/output JSON Schemas and behaviour are exactly those of tools.json, the
file the peer measurements were made with. Products and ratings are read from its ``data``; the
11,300 orders are built by its generator and checked against the recorded sha256 at import.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from functools import cache
from typing import Any

import codemode

from .spec import SPEC, WORKLOADS_DIR

__all__ = ["HANDLERS", "ORDERS", "SPEC", "WORKLOADS_DIR", "build_tools", "generate_orders", "js_json"]

PRODUCTS: list[dict[str, Any]] = SPEC["data"]["products"]
RATINGS: dict[str, list[dict[str, Any]]] = SPEC["data"]["ratings"]
ORDER_STATUSES = ("pending", "shipped", "delivered", "returned")


def generate_orders(count: int) -> list[dict[str, Any]]:
    """The orders of ``data.orders.generator`` (keys in the generator's order)."""
    return [
        {
            "id": i + 1,
            "customer": f"customer-{(i * 37) % 1000}",
            "sku": f"SKU-{(i * 7919) % 100000:05d}",
            "quantity": 1 + i % 9,
            "status": ORDER_STATUSES[i % 4],
        }
        for i in range(count)
    ]


def js_json(value: Any) -> str:
    """``JSON.stringify(value)`` with no spaces, as the sha256 in tools.json was computed."""
    return json.dumps(value, separators=(",", ":"))


def _build_checked_orders() -> list[dict[str, Any]]:
    """Generate the orders and verify their JSON size and sha256 against tools.json."""
    spec = SPEC["data"]["orders"]
    orders = generate_orders(spec["count"])
    encoded = js_json(orders).encode("utf-8")
    digest = hashlib.sha256(encoded).hexdigest()
    if digest != spec["jsonSha256"] or len(encoded) != spec["jsonBytes"]:
        raise RuntimeError(
            f"orders do not match tools.json: sha256 {digest} ({len(encoded)} bytes), "
            f"expected {spec['jsonSha256']} ({spec['jsonBytes']} bytes)"
        )
    return orders


ORDERS: list[dict[str, Any]] = _build_checked_orders()
"""The 11,300 orders, built once; getAllOrders returns this very list."""


async def get_top_products(args: dict[str, Any]) -> dict[str, Any]:
    """Products sorted by totalSales, highest first; the first ``limit`` of them."""
    ranked = sorted(PRODUCTS, key=lambda p: p["totalSales"], reverse=True)
    return {"products": ranked[: args["limit"]]}


async def get_product_ratings(args: dict[str, Any]) -> dict[str, Any]:
    """All ratings of one product; an unknown id raises ``Unknown product: <id>``."""
    product_id = args["productId"]
    if product_id not in RATINGS:
        raise ValueError(f"Unknown product: {product_id}")
    return {"productId": product_id, "ratings": RATINGS[product_id]}


async def echo(args: dict[str, Any]) -> dict[str, Any]:
    """Return ``{ i }`` unchanged."""
    return {"i": args["i"]}


async def get_all_orders(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Every order (about 1 MB as JSON), returned as the Python list itself."""
    return ORDERS


async def sleep(args: dict[str, Any]) -> dict[str, Any]:
    """Wait ``ms`` milliseconds on a host timer, then return ``{ sleptMs: ms }``."""
    await asyncio.sleep(args["ms"] / 1000)
    return {"sleptMs": args["ms"]}


HANDLERS = {
    "getTopProducts": get_top_products,
    "getProductRatings": get_product_ratings,
    "echo": echo,
    "getAllOrders": get_all_orders,
    "sleep": sleep,
}
"""The handler of each tool of tools.json, by name."""


@cache
def build_tools() -> tuple[codemode.Tool, ...]:
    """The tools of tools.json (same order), each with its exact schemas and description."""
    return tuple(
        codemode.Tool.from_schema(
            spec["name"],
            spec["description"],
            spec["inputSchema"],
            spec.get("outputSchema"),
            HANDLERS[spec["name"]],
        )
        for spec in SPEC["tools"]
    )
