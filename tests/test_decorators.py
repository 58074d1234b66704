"""@codemode.tool, Tool.from_pydantic and tool names: schemas from signatures and docstrings,
pydantic validation and conversion both ways, as the program sees them."""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import anyio
import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import codemode
from codemode.tools import js_identifier

pytestmark = pytest.mark.anyio


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Item(BaseModel):
    """A catalogue item."""

    name: str
    price: Decimal = Decimal("0")


class Point(TypedDict):
    x: int
    y: int


@dataclass
class Span:
    start: dt.date
    end: dt.date


async def run(tools: list[Any], code: str, driver: codemode.drivers.IsolateDriver) -> Any:
    """The program's result; fails the test when the program fails."""
    result = await codemode.create_code_mode(tools, driver=driver).execute(code)
    assert result.success, result.error
    return result.result


async def caught(tool: Any, code: str, driver: codemode.drivers.IsolateDriver) -> list[str]:
    """``[name, message]`` of the error the program catches running ``code``."""
    return await run(
        [tool], f"try {{ {code}; return null }} catch (e: any) {{ return [e.name, e.message] }}", driver
    )


# -- names, descriptions and parameter docs from docstrings ------------------------------


def google(query: str, limit: int = 10) -> list[str]:
    """Search the catalogue.

    Matches names and descriptions.

    Args:
        query: What to look for.
        limit: At most this many results.

    Returns:
        The matching names.
    """
    return [query] * limit


def numpy(query: str, limit: int = 10) -> list[str]:
    """Search the catalogue.

    Matches names and descriptions.

    Parameters
    ----------
    query : str
        What to look for.
    limit : int
        At most this many results.

    Returns
    -------
    list of str
        The matching names.
    """
    return [query] * limit


def rest(query: str, limit: int = 10) -> list[str]:
    """Search the catalogue.

    Matches names and descriptions.

    :param query: What to look for.
    :param int limit: At most this many results.
    :returns: The matching names.
    """
    return [query] * limit


@pytest.mark.parametrize("function", [google, numpy, rest], ids=["google", "numpy", "rest"])
async def test_docstring_styles(function: Any, driver: codemode.drivers.IsolateDriver) -> None:
    tool = codemode.tool(function)
    assert tool.name == function.__name__
    assert tool.description == "Search the catalogue.\n\nMatches names and descriptions."
    properties = tool.input_schema["properties"]
    assert properties["query"] == {"type": "string", "description": "What to look for."}
    assert properties["limit"] == {
        "type": "integer",
        "default": 10,
        "description": "At most this many results.",
    }
    assert tool.output_schema == {
        "type": "array",
        "items": {"type": "string"},
        "description": "The matching names.",
    }
    code = f"return await external_{tool.name}({{ query: 'x', limit: 2 }})"
    assert await run([tool], code, driver) == ["x", "x"]


def test_explicit_name_and_description() -> None:
    @codemode.tool(name="find", description="Find things.")
    def search(query: str) -> str:
        """Ignored summary.

        Args:
            query: Still documented.
        """
        return query

    assert (search.name, search.description) == ("find", "Find things.")
    assert search.input_schema["properties"]["query"]["description"] == "Still documented."
    assert search("direct") == "direct"  # the decorated function stays callable


def test_no_docstring_no_annotations() -> None:
    @codemode.tool
    def anything(value, other=3):  # type: ignore[no-untyped-def]
        return value

    assert anything.description == ""
    assert anything.output_schema is None
    assert anything.input_schema == {
        "type": "object",
        "properties": {"value": {}, "other": {"default": 3}},
        "required": ["value"],
        "additionalProperties": False,
    }


# -- the input schema --------------------------------------------------------------------


def every_type(
    item: Item,
    point: Point,
    span: Span,
    color: Color,
    kind: Literal["a", "b"],
    maybe: int | None,
    optional: str | None,
    tags: list[str],
    counts: dict[str, int],
    pair: tuple[int, str],
    when: dt.datetime,
    day: dt.date,
    amount: Decimal,
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
    *,
    verbose: bool = False,
    mode: str,
) -> None:
    """Takes everything."""


def test_schema_of_each_parameter_type() -> None:
    schema = codemode.tool(every_type).input_schema
    props = schema["properties"]
    assert schema["type"] == "object" and "title" not in schema
    assert schema["additionalProperties"] is False
    assert props["item"] == {"$ref": "#/$defs/Item"}
    item = schema["$defs"]["Item"]
    assert item["description"] == "A catalogue item."
    assert item["required"] == ["name"] and item["properties"]["name"] == {"type": "string"}
    assert props["point"] == {"$ref": "#/$defs/Point"}
    assert schema["$defs"]["Point"]["properties"] == {"x": {"type": "integer"}, "y": {"type": "integer"}}
    assert props["span"] == {"$ref": "#/$defs/Span"}
    assert schema["$defs"]["Span"]["properties"]["start"] == {"type": "string", "format": "date"}
    assert props["color"] == {"$ref": "#/$defs/Color"}
    assert schema["$defs"]["Color"]["enum"] == ["red", "green"]
    assert props["kind"] == {"enum": ["a", "b"], "type": "string"}
    assert props["maybe"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["optional"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["counts"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["pair"]["minItems"] == props["pair"]["maxItems"] == 2
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["day"] == {"type": "string", "format": "date"}
    assert {"type": "number"} in props["amount"]["anyOf"]
    assert props["limit"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}
    assert props["verbose"] == {"type": "boolean", "default": False}
    assert props["mode"] == {"type": "string"}
    required = set(schema["required"])
    assert {"item", "maybe", "optional", "when", "mode"} <= required
    assert not {"limit", "verbose"} & required
    assert all("title" not in prop for prop in props.values())


def test_parameter_names_pydantic_reserves() -> None:
    @codemode.tool
    def query(schema: str, model_config: int = 1, _cursor: str = "") -> list[Any]:
        return [schema, model_config, _cursor]

    assert set(query.input_schema["properties"]) == {"schema", "model_config", "_cursor"}
    assert query.handler(query.validate({"schema": "s", "model_config": 2, "_cursor": "c"})) == ["s", 2, "c"]


@pytest.mark.parametrize(
    ("signature", "parameter"),
    [
        ("def f(*items: int) -> None: ...", "*items"),
        ("def f(query: str, **options: Any) -> None: ...", "**options"),
        ("def f(query: str, /, limit: int) -> None: ...", "'query' is positional-only"),
        ("def f(self, query: str) -> None: ...", "'self'"),
    ],
)
def test_unsupported_parameters_rejected(signature: str, parameter: str) -> None:
    namespace: dict[str, Any] = {"Any": Any}
    exec(signature, namespace)
    with pytest.raises(TypeError, match=r"@codemode\.tool f: parameter .*") as info:
        codemode.tool(namespace["f"])
    assert parameter in str(info.value)


def test_unresolvable_annotation_is_a_clear_error() -> None:
    def f(x: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(TypeError, match=r"cannot resolve its type annotations.*Missing"):
        codemode.tool(f)


# -- calls -------------------------------------------------------------------------------


async def test_defaults_and_keyword_only(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def page(query: str, limit: int = 10, *, offset: int = 0, sort: str) -> dict[str, Any]:
        return {"query": query, "limit": limit, "offset": offset, "sort": sort}

    assert page.input_schema["required"] == ["query", "sort"]
    code = "return [await external_page({ query: 'q', sort: 'asc' }), await external_page({ query: 'q', limit: 2, offset: 4, sort: 'desc' })]"
    assert await run([page], code, driver) == [
        {"query": "q", "limit": 10, "offset": 0, "sort": "asc"},
        {"query": "q", "limit": 2, "offset": 4, "sort": "desc"},
    ]


async def test_arguments_arrive_converted(driver: codemode.drivers.IsolateDriver) -> None:
    seen: dict[str, Any] = {}

    @codemode.tool
    async def record(
        item: Item,
        color: Color,
        when: dt.datetime,
        day: dt.date,
        span: Span,
        pair: tuple[int, str],
        amount: Decimal,
    ) -> str:
        seen.update(item=item, color=color, when=when, day=day, span=span, pair=pair, amount=amount)
        return "ok"

    code = """return await external_record({
      item: { name: 'pen', price: '1.25' }, color: 'green', when: '2024-05-06T07:08:09Z', day: '2024-05-06',
      span: { start: '2024-01-01', end: '2024-12-31' }, pair: [1, 'one'], amount: 2.5,
    })"""
    assert await run([record], code, driver) == "ok"
    assert seen["item"] == Item(name="pen", price=Decimal("1.25"))
    assert seen["color"] is Color.GREEN
    assert seen["when"] == dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    assert seen["day"] == dt.date(2024, 5, 6)
    assert seen["span"] == Span(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert seen["pair"] == (1, "one")
    assert seen["amount"] == Decimal("2.5")


async def test_sync_tool_does_not_block_the_loop(driver: codemode.drivers.IsolateDriver) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    ticks: list[float] = []

    @codemode.tool
    def slow(seconds: float) -> float:
        threads.append(threading.get_ident())
        time.sleep(seconds)
        return seconds

    async def tick() -> None:
        while True:
            ticks.append(time.perf_counter())
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await anyio.sleep(0)
        assert await run([slow], "return await external_slow({ seconds: 0.2 })", driver) == 0.2
        tg.cancel_scope.cancel()
    assert threads and loop_thread not in threads
    assert len(ticks) >= 8
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.15


async def test_async_tool_runs_on_the_loop(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    async def wait(ms: int) -> int:
        await anyio.sleep(ms / 1000)
        return ms

    assert wait.is_async
    assert await run(
        [wait], "return await Promise.all([external_wait({ ms: 20 }), external_wait({ ms: 10 })])", driver
    ) == [20, 10]


async def test_bound_method(driver: codemode.drivers.IsolateDriver) -> None:
    class Store:
        def __init__(self) -> None:
            self.items = {"pen": 3}

        def stock(self, name: str) -> int:
            """How many of an item are in stock.

            Args:
                name: The item's name.
            """
            return self.items[name]

    stock = codemode.tool(Store().stock)
    assert "self" not in stock.input_schema["properties"]
    assert stock.input_schema["properties"]["name"]["description"] == "The item's name."
    assert await run([stock], "return await external_stock({ name: 'pen' })", driver) == 3


async def test_local_classes_in_annotations(driver: codemode.drivers.IsolateDriver) -> None:
    class Query(BaseModel):
        text: str

    @codemode.tool
    def lookup(query: Query) -> Query:
        return Query(text=query.text.upper())

    assert await run([lookup], "return await external_lookup({ query: { text: 'hi' } })", driver) == {
        "text": "HI"
    }


# -- invalid arguments -------------------------------------------------------------------


@codemode.tool
def search(query: str, limit: Annotated[int, Field(le=50)] = 10, color: Color = Color.RED) -> list[str]:
    """Search."""
    return [query] * min(limit, 2)


async def test_validation_errors_name_field_and_problem(driver: codemode.drivers.IsolateDriver) -> None:
    name, message = await caught(search, "await external_search({ limit: 500 })", driver)
    assert name == "InvalidArgumentsError"
    assert message == (
        "external_search: invalid arguments: query: Field required; "
        "limit: Input should be less than or equal to 50 (got 500)"
    )
    name, message = await caught(
        search, "await external_search({ query: 'q', color: 'blue', extra: 1 })", driver
    )
    assert name == "InvalidArgumentsError"
    assert "color: Input should be 'red' or 'green' (got \"blue\")" in message
    assert "extra: Extra inputs are not permitted (got 1)" in message


async def test_nested_error_paths(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def order(items: list[Item]) -> int:
        return len(items)

    _, message = await caught(
        order, "await external_order({ items: [{ name: 'a' }, { price: 'x' }] })", driver
    )
    assert message.startswith(
        "external_order: invalid arguments: items[1].name: Field required; items[1].price:"
    )


async def test_long_inputs_are_cut_and_many_errors_counted(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def many(
        a: int, b: int, c: int, d: int, e: int, f: int, g: int, h: int, i: int, j: int, k: int, m: str
    ) -> int:
        return 0

    _, message = await caught(many, "await external_many({ m: 'x'.repeat(1000) } as any)", driver)
    assert message.endswith("; and 1 more")
    _, message = await caught(many, "await external_many({ a: 'y'.repeat(1000) } as any)", driver)
    assert 'a: Input should be a valid integer, unable to parse string as an integer (got "yyy' in message
    assert len(message) < 1000


async def test_invalid_arguments_raised_by_the_function(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool(redact_errors=True)
    def pick(index: int) -> int:
        raise codemode.InvalidArguments(f"index {index} is out of range")

    assert await caught(pick, "await external_pick({ index: 9 })", driver) == [
        "InvalidArgumentsError",
        "index 9 is out of range",
    ]


# -- results -----------------------------------------------------------------------------


async def test_results_come_back_as_json(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def typed() -> tuple[Item, Span, dt.datetime, Color, Decimal]:
        return (
            Item(name="pen", price=Decimal("1.5")),
            Span(dt.date(2024, 1, 1), dt.date(2024, 1, 2)),
            dt.datetime(2024, 1, 2, 3, 4, 5),
            Color.GREEN,
            Decimal("2.50"),
        )

    @codemode.tool
    def untyped():  # type: ignore[no-untyped-def]
        return {"item": Item(name="cup"), "when": dt.date(2024, 3, 4), "color": Color.RED, "tags": {"a"}}

    code = "return [await external_typed({}), await external_untyped({})]"
    assert await run([typed, untyped], code, driver) == [
        [
            {"name": "pen", "price": "1.5"},
            {"start": "2024-01-01", "end": "2024-01-02"},
            "2024-01-02T03:04:05",
            "green",
            "2.50",
        ],
        {"item": {"name": "cup", "price": "0"}, "when": "2024-03-04", "color": "red", "tags": ["a"]},
    ]
    assert typed.output_schema is not None and typed.output_schema["type"] == "array"


async def test_dict_result_validated_into_model(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def make() -> Item:
        return {"name": "pen", "price": 2}  # type: ignore[return-value]

    assert await run([make], "return await external_make({})", driver) == {"name": "pen", "price": "2"}


class Account(BaseModel):
    user_id: int = Field(alias="userId")


async def test_aliases_both_ways(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def bump(account: Account) -> Account:
        return Account(userId=account.user_id + 1)

    assert bump.output_schema is not None and set(bump.output_schema["properties"]) == {"userId"}
    assert await run([bump], "return await external_bump({ account: { userId: 1 } })", driver) == {
        "userId": 2
    }


async def test_output_validation_failure_is_a_tool_error(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def count() -> int:
        return "many"  # type: ignore[return-value]

    name, message = await caught(count, "await external_count({})", driver)
    assert name == "ToolError"
    assert message.startswith(
        "external_count returned an invalid result: result: Input should be a valid integer"
    )

    @codemode.tool(validate_output=False)
    def lax() -> int:
        return "many"  # type: ignore[return-value]

    assert await run([lax], "return await external_lax({})", driver) == "many"


async def test_result_that_is_not_json(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    def opaque():  # type: ignore[no-untyped-def]
        return object()

    name, message = await caught(opaque, "await external_opaque({})", driver)
    assert name == "ToolError" and "not JSON" in message


# -- errors ------------------------------------------------------------------------------


async def test_exceptions_reach_the_program(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool
    async def fetch(url: str) -> str:
        raise ConnectionError(f"cannot reach {url}")

    assert await caught(fetch, "await external_fetch({ url: 'db.local' })", driver) == [
        "ToolError",
        "cannot reach db.local",
    ]


@pytest.mark.parametrize("is_async", [False, True])
async def test_redacted_errors(
    driver: codemode.drivers.IsolateDriver, is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def secret(user: str) -> str:
        raise RuntimeError(f"password for {user} is hunter2")

    async def secret_async(user: str) -> str:
        return secret(user)

    tool = codemode.tool(secret_async if is_async else secret, name="secret", redact_errors=True)
    with caplog.at_level(logging.ERROR, logger="codemode"):
        result = await caught(tool, "await external_secret({ user: 'ann' })", driver)
    assert result == ["ToolError", "external_secret failed"]
    assert "hunter2" in caplog.text and "external_secret failed" in caplog.text


async def test_redacted_output_errors(
    driver: codemode.drivers.IsolateDriver, caplog: pytest.LogCaptureFixture
) -> None:
    @codemode.tool(redact_errors=True)
    def leak() -> int:
        return "hunter2"  # type: ignore[return-value]

    with caplog.at_level(logging.WARNING, logger="codemode"):
        name, message = await caught(leak, "await external_leak({})", driver)
    assert name == "ToolError" and "hunter2" not in message
    assert "hunter2" in caplog.text


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("search", "search"),
        ("getUser$", "getUser$"),
        ("get-user", "get_user"),
        ("user.list", "user_list"),
        ("tools/list items", "tools_list_items"),
        ("2fa", "_2fa"),
        ("delete", "delete_"),
        ("class", "class_"),
        ("café", "cafe"),
        ("a--b", "a_b"),
    ],
)
def test_js_identifier(name: str, identifier: str) -> None:
    assert js_identifier(name) == identifier
    assert js_identifier(identifier) == identifier


def test_js_identifier_rejects_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        js_identifier("")


async def test_names_are_converted(driver: codemode.drivers.IsolateDriver) -> None:
    @codemode.tool(name="get-items")
    def items(n: int) -> list[int]:
        return list(range(n))

    @codemode.tool
    def delete(key: str) -> str:
        return f"deleted {key}"

    raw = codemode.Tool.from_schema("user.list", "users", {"type": "object"}, None, lambda args: ["ann"])
    assert (items.name, items.original_name) == ("get_items", "get-items")
    assert (delete.name, delete.original_name) == ("delete_", "delete")
    assert (raw.name, raw.original_name) == ("user_list", "user.list")
    assert codemode.tool(google).original_name == "google"
    code = "return [await external_get_items({ n: 2 }), await external_delete_({ key: 'k' }), await external_user_list({})]"
    assert await run([items, delete, raw], code, driver) == [[0, 1], "deleted k", ["ann"]]


def test_name_clashes_are_reported() -> None:
    first = codemode.Tool.from_schema("get-user", "a", {"type": "object"}, None, lambda args: 1)
    second = codemode.Tool.from_schema("get_user", "b", {"type": "object"}, None, lambda args: 2)
    with pytest.raises(ValueError, match=r"'get-user' and 'get_user' both become external_get_user"):
        codemode.create_code_mode([first, second])
    with pytest.raises(ValueError, match="two tools are named 'get-user'"):
        codemode.create_code_mode([first, first])


def test_binding_names_must_be_identifiers() -> None:
    with pytest.raises(ValueError, match=r"not a valid JavaScript identifier.*'get_user'"):
        codemode.drivers.ToolBinding("get-user", "d", {"type": "object"}, lambda args: 1)


# -- Tool.from_pydantic ------------------------------------------------------------------


class Order(BaseModel):
    item: Item
    quantity: int = Field(1, ge=1, description="How many.")


class Receipt(BaseModel):
    total: Decimal
    at: dt.datetime


@pytest.mark.parametrize("is_async", [False, True])
async def test_from_pydantic(driver: codemode.drivers.IsolateDriver, is_async: bool) -> None:
    received: list[Any] = []

    def place(order: Order) -> Receipt:
        received.append(order)
        return Receipt(total=order.item.price * order.quantity, at=dt.datetime(2024, 1, 1))

    async def place_async(order: Order) -> Receipt:
        return place(order)

    tool = codemode.Tool.from_pydantic(
        "place-order", "Place an order", Order, Receipt, place_async if is_async else place
    )
    assert (tool.name, tool.original_name, tool.is_async) == ("place_order", "place-order", is_async)
    assert tool.input_schema["properties"]["quantity"] == {
        "type": "integer",
        "minimum": 1,
        "default": 1,
        "description": "How many.",
    }
    assert tool.output_schema is not None and set(tool.output_schema["properties"]) == {"total", "at"}
    code = "return await external_place_order({ item: { name: 'pen', price: 1.5 }, quantity: 2 })"
    assert await run([tool], code, driver) == {"total": "3.0", "at": "2024-01-01T00:00:00"}
    assert isinstance(received[0], Order) and received[0].quantity == 2
    name, message = await caught(
        tool, "await external_place_order({ item: { name: 'pen' }, quantity: 0 })", driver
    )
    assert (name, message) == (
        "InvalidArgumentsError",
        "external_place_order: invalid arguments: quantity: Input should be greater than or equal to 1 (got 0)",
    )


async def test_from_pydantic_output_validation_and_redaction(driver: codemode.drivers.IsolateDriver) -> None:
    def broken(order: Order) -> Any:
        return {"total": "lots"}

    tool = codemode.Tool.from_pydantic("broken", "", Order, Receipt, broken)
    name, message = await caught(tool, "await external_broken({ item: { name: 'a' } })", driver)
    assert (
        name == "ToolError"
        and "total: Input should be a valid decimal" in message
        and "at: Field required" in message
    )

    def failing(order: Order) -> None:
        raise KeyError("internal detail")

    tool = codemode.Tool.from_pydantic("failing", "", Order, None, failing, redact_errors=True)
    assert await caught(tool, "await external_failing({ item: { name: 'a' } })", driver) == [
        "ToolError",
        "external_failing failed",
    ]


# -- Tool.from_schema output validation --------------------------------------------------


async def test_from_schema_output_validation(driver: codemode.drivers.IsolateDriver) -> None:
    output = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    def wrong(args: dict[str, Any]) -> dict[str, Any]:
        return {"n": "one"}

    checked = codemode.Tool.from_schema(
        "checked", "", {"type": "object"}, output, wrong, validate_output=True
    )
    name, message = await caught(checked, "await external_checked({})", driver)
    assert (name, message) == (
        "ToolError",
        "external_checked returned an invalid result: result.n must be integer",
    )
    unchecked = codemode.Tool.from_schema("unchecked", "", {"type": "object"}, output, wrong)
    assert await run([unchecked], "return await external_unchecked({})", driver) == {"n": "one"}


def _rich_result() -> dict[str, Any]:
    return {
        "price": Decimal("1.25"),
        "tags": {"a"},
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 1, 2),
        "id": uuid.UUID("123e4567-e89b-12d3-a456-426614174000"),
        "span": Span(dt.date(2026, 1, 1), dt.date(2026, 1, 3)),
        "color": Color.RED,
        "item": Item(name="pen", price=Decimal("2")),
    }


async def test_from_schema_results_convert_like_decorated_ones(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    """Decimal, sets, datetimes, UUIDs, dataclasses, enums and models reach the program as
    pydantic's ``to_jsonable_python`` makes them, whichever way the tool was made."""

    @codemode.tool
    def decorated() -> Any:  # no return type to validate: converted generically
        """Returns rich values."""
        return _rich_result()

    output = {"type": "object", "properties": {"price": {"type": "string"}}}
    tools = [
        decorated,
        codemode.Tool.from_schema("plain", "", {"type": "object"}, None, lambda args: _rich_result()),
        codemode.Tool.from_schema(
            "checked", "", {"type": "object"}, output, lambda args: _rich_result(), validate_output=True
        ),
    ]
    code = "return [await external_decorated({}), await external_plain({}), await external_checked({})]"
    decorated_result, plain, checked = await run(tools, code, driver)
    assert plain == checked == decorated_result
    assert plain == {
        "price": "1.25",
        "tags": ["a"],
        "when": "2026-01-02T03:04:05Z",
        "day": "2026-01-02",
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "span": {"start": "2026-01-01", "end": "2026-01-03"},
        "color": "red",
        "item": {"name": "pen", "price": "2"},
    }
    not_json = codemode.Tool.from_schema("odd", "", {"type": "object"}, None, lambda args: object())
    name, message = await caught(not_json, "await external_odd({})", driver)
    assert name == "ToolError" and message.startswith("external_odd returned a value that is not JSON: ")
