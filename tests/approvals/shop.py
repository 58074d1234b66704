"""The tools of the approval tests: orders, and refunds that need a person's approval above 100.

Importable from a second process (``python -m tests.approvals.shop``), which resumes a run
paused in the first one: ``resume STORE_URL TOKEN DECISIONS_JSON`` prints the result as JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

import codemode

ORDERS = {
    "o-1": {"id": "o-1", "amount": 40.0},
    "o-2": {"id": "o-2", "amount": 250.0},
    "o-3": {"id": "o-3", "amount": 900.0},
}
REFUNDED: list[str] = []
KEY = "the approval tests' signing key"


@codemode.tool
async def get_order(order_id: str) -> dict[str, Any]:
    """One order: its id and amount."""
    return ORDERS[order_id]


@codemode.tool(requires_approval=lambda args: args.amount > 100)
async def refund(order_id: str, amount: float) -> str:
    """Refund an order (a person approves refunds over 100)."""
    REFUNDED.append(order_id)
    return f"refunded {order_id}"


TOOLS = [get_order, refund]

REFUND_ALL = """
const orders = await Promise.all(["o-1", "o-2", "o-3"].map((id) => external_get_order({ order_id: id })))
console.log(`refunding ${orders.length} orders`)
const outcomes = await Promise.allSettled(
  orders.map((o: { id: string; amount: number }) => external_refund({ order_id: o.id, amount: o.amount })),
)
return outcomes.map((o) => (o.status === "fulfilled" ? o.value : `failed: ${o.reason.message}`))
"""


def main(argv: list[str]) -> int:
    """``resume STORE_URL TOKEN DECISIONS_JSON``: resume in this process and print the result."""
    command, url, token, decisions = argv
    assert command == "resume"
    from codemode.approvals import execution_store_from_url

    choices = {
        "approve": codemode.approve,
        "reject": lambda: codemode.reject("not in this process"),
    }

    async def resume() -> codemode.ExecutionResult:
        async with execution_store_from_url(url) as store:
            cm = codemode.create_code_mode(TOOLS, execution_store=store, approval_key=KEY)
            chosen = {int(call): choices[name]() for call, name in json.loads(decisions).items()}
            return await cm.resume(token, chosen)

    result = anyio.run(resume)
    print(json.dumps({"output": result.to_tool_output(), "refunded": REFUNDED}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
