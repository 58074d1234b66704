"""What models write runs: the TypeScript probes and the 69-line W8 program, through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import codemode

pytestmark = pytest.mark.anyio

WORKLOADS = Path(__file__).resolve().parent.parent / "python" / "codemode" / "bench" / "workloads"
SPEC = json.loads((WORKLOADS / "tools.json").read_text(encoding="utf-8"))
FEATURES = {Path(f["file"]).stem: f["expectedResult"] for f in SPEC["tsFeatures"]}


async def _top_products(args: dict[str, Any]) -> dict[str, Any]:
    products = sorted(SPEC["data"]["products"], key=lambda p: p["totalSales"], reverse=True)
    return {"products": products[: args["limit"]]}


@pytest.mark.parametrize("name", sorted(FEATURES))
async def test_feature_probe(driver: codemode.drivers.IsolateDriver, name: str) -> None:
    cm = codemode.create_code_mode([], driver=driver)
    result = await cm.execute((WORKLOADS / "ts-features" / f"{name}.ts").read_text(encoding="utf-8"))
    assert result.success, result.error
    assert result.result == FEATURES[name]


async def test_w8_program(driver: codemode.drivers.IsolateDriver) -> None:
    tool = codemode.Tool.from_schema(
        "getTopProducts", "top products", {"type": "object"}, None, _top_products
    )
    cm = codemode.create_code_mode([tool], driver=driver)
    result = await cm.execute((WORKLOADS / "W8-typescript.ts").read_text(encoding="utf-8"))
    assert result.success, result.error
    expected = next(w["expectedResult"] for w in SPEC["workloads"] if w["id"] == "W8")
    assert result.result == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import type { Foo } from './foo'\ntype Bar = Foo\nreturn 1", 1),
        ("export interface A { x: number }\nexport type B = A\nconst a: A = { x: 2 }\nreturn a.x", 2),
        ("const f = <T,>(x: T): T => x\nreturn f<number>(3)", 3),
        ("declare const g: number\nlet y: number | undefined\ny ??= 4\nreturn y!", 4),
        (
            "class P { constructor(public readonly n: number, private m = 2) {} sum() { return this.n + this.m } }\nreturn new P(3).sum()",
            5,
        ),
        ("namespace N { export const six = 6 }\nreturn N.six", 6),
        ("const enum E { A = 'a', B = 'b' }\nreturn E.B", "b"),
        (
            "function id<T extends { k: string }>(o: T): T['k'] { return o.k }\nreturn id({ k: 'seven' })",
            "seven",
        ),
        ("let v = (8 as unknown) as number satisfies number\nreturn v", 8),
        (
            "abstract class S { abstract get n(): number }\nclass T extends S { get n() { return 9 } }\nreturn new T().n",
            9,
        ),
    ],
)
async def test_typescript_constructs(cm: codemode.CodeMode, code: str, expected: Any) -> None:
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == expected


async def test_value_import_fails_clearly(cm: codemode.CodeMode) -> None:
    result = await cm.execute("import { readFile } from 'fs'\nreturn 1")
    assert not result.success and result.error is not None
    assert result.error.kind == "syntax"
    assert result.error.line == 1
