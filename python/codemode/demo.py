"""Demo tools: a small store with best-selling products and their customer ratings.

    codemode run examples/top_products.ts --tools codemode.demo

runs the TypeScript a model would write for "which products sell best and how are they
rated?" against these tools on the embedded engine, and prints the live timeline and the
result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import codemode

TOP_PRODUCTS_PROGRAM = Path(__file__).with_name("demo_top_products.ts")
"""The program of the demo (``examples/top_products.ts`` is this file): which products sell best,
and how customers rate them."""

PRODUCTS: list[dict[str, Any]] = [
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
