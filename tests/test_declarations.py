"""TypeScript declarations from JSON Schema: golden files, determinism, and the real compiler.

Regenerate the golden files with ``UPDATE_GOLDEN=1 pytest tests/test_declarations.py`` (then
review the diff). The compiler tests install the npm package ``typescript`` into the
git-ignored ``.cache/node`` once and run ``tsc`` a single time on every program.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, computed_field

import codemode
from codemode.declarations import render_declarations, schema_to_typescript

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "declarations"
WORKLOADS = ROOT / "python" / "codemode" / "bench" / "workloads"
NODE_DIR = ROOT / ".cache" / "node"
TYPESCRIPT_VERSION = "5.9.3"
TSC_FLAGS = ["--noEmit", "--strict", "--target", "es2022", "--lib", "es2022", "--pretty", "false"]
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


# --- the pydantic models of the `pydantic` golden case ------------------------------------


class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str = Field(description="City name", min_length=1)
    zip_code: str | None = None


class Category(BaseModel):
    name: str
    children: list[Category] = []


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool = True


class Order(BaseModel):
    """An order to place."""

    id: int = Field(ge=1, description="Order id")
    status: Literal["pending", "shipped"] = "pending"
    color: Color
    priority: Priority = Priority.LOW
    note: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list)
    counts: dict[str, int] = {}
    placed_at: datetime
    pair: tuple[int, str]
    shipping: Address
    billing: Address | None = None
    category: Category
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    by_color: dict[Color, int] = {}
    legacy: int | None = Field(default=None, deprecated=True)
    score: float = Field(default=0.5, examples=[0.1, 0.9])


class Query(BaseModel):
    """Which customer, and how many orders."""

    id: str
    limit: int = 10
    since: str | None = Field(default=None, alias="sinceDate")


class Customer(BaseModel):
    """What get_customer returns: every field the dump writes is there."""

    id: str
    full_name: str = Field(serialization_alias="fullName")
    tags: list[str] = []
    note: str | None = None
    secret: str = Field(default="", exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display(self) -> str:
        return self.full_name.upper()


@codemode.tool
async def get_customer(query: Query) -> Customer:
    """Look a customer up."""
    return Customer(id=query.id, full_name="Ada Lovelace", secret="s")


# --- the cases: golden JSON files, the workload tools, the pydantic models -----------------


def _tool(name: str, description: str, input_schema: Any, output_schema: Any) -> codemode.Tool:
    return codemode.Tool.from_schema(name, description, input_schema, output_schema, lambda args: args)


def _tools(specs: list[dict[str, Any]]) -> list[codemode.Tool]:
    return [_tool(s["name"], s["description"], s["inputSchema"], s["outputSchema"]) for s in specs]


def _workload_tools() -> list[codemode.Tool]:
    return _tools(json.loads((WORKLOADS / "tools.json").read_text(encoding="utf-8"))["tools"])


def _pydantic_tools() -> list[codemode.Tool]:
    schemas = Order.model_json_schema(), Category.model_json_schema()
    return [_tool("place_order", "Place an order", *schemas)]


def _render(case: str) -> str:
    if case == "workloads":
        return render_declarations(_workload_tools())
    if case == "pydantic":
        return render_declarations(_pydantic_tools())
    if case == "pydantic_io":  # a decorated tool: validation schema in, serialization schema out
        return render_declarations([get_customer])
    spec = json.loads((GOLDEN / f"{case}.json").read_text(encoding="utf-8"))
    if "tools" in spec:
        return render_declarations(_tools(spec["tools"]))
    return schema_to_typescript(spec["schema"], spec["name"])


CASES = sorted([p.stem for p in GOLDEN.glob("*.json")] + ["pydantic", "pydantic_io", "workloads"])


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    expected_file = GOLDEN / f"{case}.d.ts"
    rendered = _render(case)
    if UPDATE_GOLDEN:
        expected_file.write_text(rendered, encoding="utf-8")
    assert expected_file.exists(), f"no golden file: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    assert rendered == expected_file.read_text(encoding="utf-8")


def test_every_golden_case_has_programs() -> None:
    assert sorted(PROGRAMS) == CASES


# --- determinism and order ----------------------------------------------------------------


def test_same_tools_give_identical_text() -> None:
    assert render_declarations(_workload_tools()) == render_declarations(_workload_tools())
    assert _render("refs") == _render("refs")


def test_tools_come_in_the_order_given() -> None:
    tools = _workload_tools()
    for order in (tools, tools[::-1]):
        text = render_declarations(order)
        found = re.findall(r"declare function (external_\w+)", text)
        assert found == [t.sandbox_name for t in order]


def test_shared_definitions_follow_the_first_tool_that_uses_them() -> None:
    tools = _tools(json.loads((GOLDEN / "refs.json").read_text(encoding="utf-8"))["tools"])
    first, second = render_declarations(tools[:2]), render_declarations(tools[1::-1])
    assert first.count("interface Product {") == second.count("interface Product {") == 1
    assert first.index("interface Product {") < first.index("declare function external_get_catalog")
    assert second.index("interface Product {") < second.index("declare function external_getProduct")


def test_no_tools_give_no_text() -> None:
    assert render_declarations([]) == ""


def test_names_are_pascal_case() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    names = ["get_top_products", "getTopProducts", "GET_TOP_PRODUCTS"]
    texts = [render_declarations([_tool(n, "", schema, schema)]) for n in names]
    assert all("interface GetTopProductsInput {" in t for t in texts)
    assert all("interface GetTopProductsOutput {" in t for t in texts)
    assert schema_to_typescript(schema, "my schema").startswith("interface MySchema {")


# --- the TypeScript compiler --------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A program tsc must reject, with the error code and a piece of the message."""

    program: str
    code: str
    message: str


@dataclass(frozen=True)
class Programs:
    good: list[str]
    bad: list[Bad]


def _workload(name: str) -> str:
    return (WORKLOADS / name).read_text(encoding="utf-8")


PROGRAMS: dict[str, Programs] = {
    "workloads": Programs(
        good=[
            _workload("W1-ecommerce.ts"),
            _workload("W8-typescript.ts"),
            """
            const orders = await external_getAllOrders()
            const again = await external_getAllOrders({})
            const shipped = orders.filter((o) => o.status === "shipped").map((o) => o.quantity * 2)
            const { i } = await external_echo({ i: shipped.length + again.length })
            const { sleptMs } = await external_sleep({ ms: 1 })
            return i + sleptMs
            """,
        ],
        bad=[
            Bad("await external_getTopProducts({})", "TS2345", "Property 'limit' is missing"),
            Bad(
                'await external_getTopProducts({ limit: "5" })',
                "TS2322",
                "Type 'string' is not assignable to type 'number'",
            ),
            Bad(
                "await external_getProductRatings({ id: 'p-101' })",
                "TS2353",
                "'id' does not exist in type 'GetProductRatingsInput'",
            ),
            Bad(
                "const orders = await external_getAllOrders()\nreturn orders.filter((o) => o.status === 'lost')",
                "TS2367",
                "have no overlap",
            ),
            Bad(
                "const top = await external_getTopProducts({ limit: 1 })\nreturn top.products[0].title",
                "TS2339",
                "Property 'title' does not exist",
            ),
            Bad("return external_echo({ i: 1 }).i", "TS2339", "on type 'Promise<EchoOutput>'"),
            Bad("await external_getAllOrders({ all: true })", "TS2322", "not assignable to type 'never'"),
        ],
    ),
    "primitives": Programs(
        good=[
            """
            await external_create_user({
              email: "a@example.com", handle: "abc", "first-name": "Ada", consent: true,
              nickname: null, middle_name: null, id_or_name: 7, "2fa": false, anything: [1],
            })
            const users = await external_listUsers()
            const found = await external_search()
            const more = await external_search({ query: "x", limit: 5 })
            const pong: "pong" = await external_ping()
            return [users.length, found["total"], more, pong]
            """,
        ],
        bad=[
            Bad(
                'await external_create_user({ email: "a", handle: "b", consent: 1 })',
                "TS2345",
                "Property '\"first-name\"' is missing",
            ),
            Bad(
                'await external_create_user({ email: "a", handle: "b", "first-name": "c", consent: 1, middle_name: 5 })',
                "TS2322",
                "Type 'number' is not assignable to type 'string'",
            ),
            Bad("await external_create_user()", "TS2554", "Expected 1 arguments, but got 0"),
            Bad("await external_listUsers({ all: true })", "TS2322", "not assignable to type 'never'"),
            Bad(
                'const pong: "ping" = await external_ping()',
                "TS2322",
                "Type '\"pong\"' is not assignable to type '\"ping\"'",
            ),
        ],
    ),
    "refs": Programs(
        good=[
            """
            const catalog = await external_get_catalog({ root: { id: "r", children: [{ id: "c" }] }, since: "2024-01-01" })
            const onSale = catalog.products.filter((p) => p.tags.includes("sale")).map((p) => p.sku)
            const grandparent = catalog.parent?.parent?.products.length
            const product = await external_getProduct({ sku: "x", tag: { label: "l" } })
            const related = await external_relatedProducts({ sku: product.sku })
            const old = related.items.filter((p) => p.tags[0] === "old")
            return [onSale, grandparent, old, related.page?.next ?? null, related.slash === true]
            """,
        ],
        bad=[
            Bad(
                "await external_get_catalog({ root: { children: [] } })", "TS2741", "Property 'id' is missing"
            ),
            Bad(
                'await external_getProduct({ sku: "x", tag: "new" })',
                "TS2322",
                "Type 'string' is not assignable to type 'Tag2'",
            ),
            Bad(
                'const r = await external_relatedProducts({ sku: "x" })\nreturn r.items[0].tags[0] === "sale"',
                "TS2367",
                "have no overlap",
            ),
            Bad(
                'await external_get_catalog({ root: { id: "r" }, since: 20240101 })',
                "TS2322",
                "Type 'number' is not assignable to type 'string'",
            ),
        ],
    ),
    "combinators": Programs(
        good=[
            """
            const created = await external_createPet({
              pet: { kind: "cat", name: "Tom", age: 3, indoor: true },
              shape: { kind: "circle", radius: 2 },
              size: null, level: 2, version: 2, flags: { strict: true, mode: "a-b" },
              ids: ["a", 1], maybe_names: ["x", null], grid: [[1, 2], [3]],
              point: [1, 2], range: [1], row: ["r", 1, 2, 3], legacy_pair: ["a", true],
              open_pair: ["a", false, { any: "thing" }], owner: { phone: "123" },
              labelled: { kind: "cat", name: "Tom", age: 3, label: "l", checked: true, color: "grey" },
            })
            const dog = await external_createPet({ pet: { kind: "dog", name: "Rex" }, shape: { kind: "square", side: 1 } })
            const stats = await external_tag_stats({
              labels: { a: "b" }, meta: { source: "s", count: 1, extra: "x" }, headers: { "x-id": "1" },
              weights: { low: 0.5 }, loose: { a: "a", b: 2 }, id: "ABCD", items_or_count: ["A", "B"],
              entries: ["A", { ref: "r" }], mixed: { tag: "t", b: 1 }, named_tags: [{ tag: "t", name: "n" }],
              counted_tags: [{ tag: "t", n: 1 }],
            })
            const counts = Object.values(stats).map((s) => s.count + (s.owner?.email?.length ?? 0))
            return [created.id, created.createdAt, dog.id, counts]
            """,
        ],
        bad=[
            Bad(
                'await external_createPet({ pet: { kind: "cat", name: "Tom" }, shape: { kind: "circle", radius: 1 } })',
                "TS2322",
                "Property 'age' is missing",
            ),
            Bad(
                'await external_createPet({ pet: { kind: "dog", name: "Rex" }, shape: { kind: "circle", radius: 1, side: 2 } })',
                "TS2353",
                "'side' does not exist in type 'CreatePetInputShapeCircle'",
            ),
            Bad(
                'await external_createPet({ pet: { kind: "dog", name: "R" }, shape: { kind: "square", side: 1 }, size: "XL" })',
                "TS2322",
                'Type \'"XL"\' is not assignable to type \'"S" | "M" | "L" | null | undefined\'',
            ),
            Bad(
                'await external_createPet({ pet: { kind: "dog", name: "R" }, shape: { kind: "square", side: 1 }, color: "red" })',
                "TS2353",
                "'color' does not exist in type 'CreatePetInput'",
            ),
            Bad(
                'await external_createPet({ pet: { kind: "dog", name: "R" }, shape: { kind: "square", side: 1 }, point: [1, 2, 3] })',
                "TS2322",
                "Type 'number' is not assignable to type 'undefined'",  # tsc's words for a third element,
            ),
            Bad("await external_tag_stats({ weights: { medium: 1 } })", "TS2353", "'medium' does not exist"),
            Bad(
                "await external_tag_stats({ counted_tags: [{ n: 1 }] })",
                "TS2741",
                "Property 'tag' is missing",
            ),
            Bad(
                'await external_tag_stats({ meta: { source: "s", extra: true } })',
                "TS2322",
                "Type 'true' is not assignable to type 'string | number | undefined'",
            ),
        ],
    ),
    "schema-alias": Programs(
        good=[
            """
            const tree: TreeNode = { value: 1, left: { value: 2, right: null } }
            const empty: TreeNode = null
            return [tree?.left?.value, empty]
            """,
        ],
        bad=[
            Bad(
                'const tree: TreeNode = { value: 1, left: { value: "2" } }',
                "TS2322",
                "Type 'string' is not assignable to type 'number'",
            )
        ],
    ),
    "pydantic_io": Programs(
        good=[
            # defaults, computed fields and aliases are always in what the tool returns
            'const c = await external_get_customer({ query: { id: "c1" } })\n'
            "return c.tags.length + c.fullName.length + c.display.length + (c.note ?? '').length",
            'return await external_get_customer({ query: { id: "c1", limit: 5, sinceDate: "2026-01-01" } })',
        ],
        bad=[
            Bad(
                'const c = await external_get_customer({ query: { id: "c1" } })\nreturn c.secret',
                "TS2339",
                "Property 'secret' does not exist",
            ),
            Bad(
                'const c = await external_get_customer({ query: { id: "c1" } })\nreturn c.full_name',
                "TS2551",
                "Property 'full_name' does not exist",
            ),
            Bad(
                "return await external_get_customer({ query: { limit: 1 } })",
                "TS2741",
                "Property 'id' is missing",
            ),
        ],
    ),
    "pydantic": Programs(
        good=[
            """
            const category = await external_place_order({
              id: 1, color: "red", priority: 2, placed_at: new Date().toISOString(), pair: [1, "a"],
              shipping: { street: "s", city: "c" }, billing: null, category: { name: "root", children: [{ name: "leaf" }] },
              pet: { kind: "cat" }, by_color: { green: 3 }, counts: { a: 1 }, note: null,
            })
            return category.children?.map((c) => c.name) ?? []
            """,
        ],
        bad=[
            Bad(
                'await external_place_order({ id: 1, color: "blue", placed_at: "", pair: [1, "a"], shipping: { street: "s", city: "c" }, category: { name: "r" }, pet: { kind: "cat" } })',
                "TS2322",
                "Type '\"blue\"' is not assignable to type 'Color'",
            ),
            Bad(
                'await external_place_order({ id: 1, color: "red", placed_at: "", pair: ["a", 1], shipping: { street: "s", city: "c" }, category: { name: "r" }, pet: { kind: "cat" } })',
                "TS2322",
                "Type 'string' is not assignable to type 'number'",
            ),
            Bad(
                'await external_place_order({ id: 1, color: "red", placed_at: "", pair: [1, "a"], shipping: { street: "s", city: "c" }, category: { name: "r" }, pet: { kind: "cow" } })',
                "TS2322",
                'Type \'"cow"\' is not assignable to type \'"cat" | "dog"\'',
            ),
        ],
    ),
}

# What the sandbox gives every program besides the tools (lib es2022 has no console).
PRELUDE = "declare const console: { log(...data: unknown[]): void; error(...data: unknown[]): void };\n"


@dataclass(frozen=True)
class TscError:
    line: int
    code: str
    message: str


@dataclass(frozen=True)
class Checked:
    """One program's file: where the program starts, and what tsc said about the file."""

    first_line: int
    errors: list[TscError]


def _typescript_compiler() -> list[str]:
    """The command that runs the pinned tsc, installing it into .cache/node when needed."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm is not installed: the TypeScript compiler tests need it to install typescript")
    package = NODE_DIR / "node_modules" / "typescript" / "package.json"
    if (
        not package.exists()
        or json.loads(package.read_text(encoding="utf-8"))["version"] != TYPESCRIPT_VERSION
    ):
        command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)]
        subprocess.run(
            [*command, f"typescript@{TYPESCRIPT_VERSION}"], check=True, capture_output=True, timeout=600
        )
    return [node, str(NODE_DIR / "node_modules" / "typescript" / "bin" / "tsc")]


def _source(declarations: str, program: str) -> tuple[str, int]:
    """A module: the declarations, then the program as the body of an async function."""
    head = f"{PRELUDE}{declarations}\nasync function __main() {{\n"
    return f"{head}{program}\n}}\n\nexport {{}};\n", head.count("\n") + 1


def _parse(output: str) -> dict[str, list[TscError]]:
    """tsc's diagnostics by file (continuation lines join the message they elaborate)."""
    errors: dict[str, list[TscError]] = {}
    pattern = re.compile(r"^(?P<file>[^(]+)\((?P<line>\d+),\d+\): error (?P<code>TS\d+): (?P<message>.*)$")
    last: tuple[str, int] | None = None
    for line in output.splitlines():
        match = pattern.match(line)
        if match:
            found = errors.setdefault(match["file"], [])
            found.append(TscError(int(match["line"]), match["code"], match["message"]))
            last = (match["file"], len(found) - 1)
        else:
            assert last is not None and line.startswith(" "), f"unexpected tsc output: {output}"
            file, index = last
            error = errors[file][index]
            errors[file][index] = TscError(error.line, error.code, f"{error.message}\n{line.strip()}")
    return errors


@pytest.fixture(scope="session")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Checked]:
    """Every program of PROGRAMS in its own file, all type-checked by one tsc run."""
    tsc = _typescript_compiler()
    directory = tmp_path_factory.mktemp("tsc")
    first_lines: dict[str, int] = {}
    for case, programs in PROGRAMS.items():
        declarations = _render(case)
        sources = {f"{case}-good-{i}.ts": p for i, p in enumerate(programs.good)}
        sources |= {f"{case}-bad-{i}.ts": b.program for i, b in enumerate(programs.bad)}
        for name, program in sources.items():
            text, first_lines[name] = _source(declarations, program)
            (directory / name).write_text(text, encoding="utf-8")
    run = subprocess.run(
        [*tsc, *TSC_FLAGS, *first_lines], cwd=directory, capture_output=True, text=True, timeout=300
    )
    assert not run.stderr, run.stderr
    errors = _parse(run.stdout)
    assert set(errors) <= set(first_lines), run.stdout
    return {name: Checked(first, errors.get(name, [])) for name, first in first_lines.items()}


def _good_ids() -> list[str]:
    return [f"{case}-good-{i}" for case, p in PROGRAMS.items() for i in range(len(p.good))]


def _bad_ids() -> list[str]:
    return [f"{case}-bad-{i}" for case, p in PROGRAMS.items() for i in range(len(p.bad))]


@pytest.mark.parametrize("name", _good_ids())
def test_correct_program_type_checks(checked: dict[str, Checked], name: str) -> None:
    assert checked[f"{name}.ts"].errors == []


@pytest.mark.parametrize("name", _bad_ids())
def test_wrong_program_is_rejected(checked: dict[str, Checked], name: str) -> None:
    case, _, index = name.rpartition("-bad-")
    expected = PROGRAMS[case].bad[int(index)]
    result = checked[f"{name}.ts"]
    assert result.errors, "tsc accepted the program"
    assert all(e.line >= result.first_line for e in result.errors), "an error in the declarations"
    first = result.errors[0]
    assert (first.code, expected.message in first.message) == (expected.code, True), first
