"""A real execution on the embedded engine: top products with their average ratings.

Run it with ``python3 -m codemode.demo``. It builds two tools from JSON Schema, runs the
TypeScript a model would write for "which products sell best and how are they rated?", and
prints the result and the live timeline of the execution.
"""

from __future__ import annotations

import asyncio
from typing import Any

import codemode

PRODUCTS = [
    {"id": "p-101", "name": "Trail Running Shoes", "totalSales": 8421, "price": 129.99},
    {"id": "p-102", "name": "Wireless Earbuds", "totalSales": 15230, "price": 79.5},
    {"id": "p-103", "name": "Insulated Water Bottle", "totalSales": 12044, "price": 19.95},
    {"id": "p-104", "name": "Yoga Mat", "totalSales": 6310, "price": 34},
    {"id": "p-105", "name": "Smart Watch", "totalSales": 9877, "price": 199},
]
RATINGS = {
    product["id"]: [
        {"userId": f"u-{r + 1:03d}", "score": 5 - ((r * (r + p) * (p + 1)) % 9 % 4)} for r in range(20)
    ]
    for p, product in enumerate(PRODUCTS)
}

PROGRAM = """\
interface Product { id: string; name: string; totalSales: number; price: number }

const top = await external_getTopProducts({ limit: 5 })
console.log(`ranking ${top.products.length} products`)

const ratings = await Promise.all(
  top.products.map((p: Product) => external_getProductRatings({ productId: p.id })),
)

return top.products.map((product: Product, i: number) => {
  const scores = ratings[i].ratings.map((r: { score: number }) => r.score)
  const avg = scores.reduce((sum: number, s: number) => sum + s, 0) / scores.length
  return { name: product.name, sales: product.totalSales, averageRating: Math.round(avg * 100) / 100 }
})
"""


async def get_top_products(args: dict[str, Any]) -> dict[str, Any]:
    ranked = sorted(PRODUCTS, key=lambda p: p["totalSales"], reverse=True)
    return {"products": ranked[: args["limit"]]}


async def get_product_ratings(args: dict[str, Any]) -> dict[str, Any]:
    if args["productId"] not in RATINGS:
        raise ValueError(f"Unknown product: {args['productId']}")
    return {"productId": args["productId"], "ratings": RATINGS[args["productId"]]}


TOOLS = [
    codemode.Tool.from_schema(
        "getTopProducts",
        "Get the best-selling products, ordered by total sales (highest first)",
        {
            "type": "object",
            "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 50}},
            "required": ["limit"],
        },
        None,
        get_top_products,
    ),
    codemode.Tool.from_schema(
        "getProductRatings",
        "Get all customer ratings (1-5 stars) for one product",
        {"type": "object", "properties": {"productId": {"type": "string"}}, "required": ["productId"]},
        None,
        get_product_ratings,
    ),
]


def print_event(event: codemode.Event) -> None:
    value = {k: v for k, v in event.value.items() if k not in ("toolCallId", "timestamp")}
    detail = ", ".join(f"{k}={v!r}" for k, v in value.items() if k not in ("result",))
    print(f"  {event.name.removeprefix('code_mode:'):<20} {detail[:100]}")


async def main() -> None:
    cm = codemode.create_code_mode(TOOLS, driver=codemode.QuickJSDriver(), timeout=5.0, memory_limit_mb=64)
    print("timeline:")
    result = await cm.execute(PROGRAM, tool_call_id="demo", on_event=print_event)
    print("result:")
    for row in result.result or []:
        print(f"  {row['name']:<24} sales {row['sales']:>6}   average rating {row['averageRating']}")
    print(f"logs: {result.logs}   duration: {result.duration_ms:.2f} ms   tool calls: {result.tool_calls}")
    if not result.success:
        raise SystemExit(f"demo failed: {result.error}")


if __name__ == "__main__":
    asyncio.run(main())
