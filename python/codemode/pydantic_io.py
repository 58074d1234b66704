"""Pydantic at the boundary: the JSON Schema pydantic types declare, the validation of a
pydantic tool's input, the dump of its result, and the wording of validation errors for the
program."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import to_jsonable_python

from .errors import InvalidArgumentsError

_MAX_ERRORS = 10  # problems listed in an InvalidArgumentsError message
_MAX_PREVIEW = 40  # characters of a bad value quoted in it
_NO_OUTPUT_TYPES: tuple[Any, ...] = (None, type(None), Any, inspect.Signature.empty)
# orjson serialises these natively; passed through (so that it fails) they mark a value to convert
_PLAIN_JSON = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class ToolSchema(GenerateJsonSchema):
    """JSON Schema without the titles pydantic derives from property names. Of an output (the
    serialization-mode schema), every field the dump writes is required: a field with a default
    is always there in what the tool returns (``tags: list[str] = []`` is ``tags: string[]``,
    not ``tags?: string[]``), as are computed fields."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def field_is_required(self, field: Any, total: bool) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)


Output = tuple[TypeAdapter[Any] | None, dict[str, Any] | None]


def output_adapter(return_type: Any, returns_doc: str | None) -> Output:
    """The adapter and JSON Schema of a return type; ``(None, None)`` when it says nothing."""
    if any(return_type is t for t in _NO_OUTPUT_TYPES):
        return None, None
    adapter: TypeAdapter[Any] = TypeAdapter(return_type)
    schema = adapter.json_schema(mode="serialization", schema_generator=ToolSchema)
    if returns_doc and "description" not in schema:
        schema["description"] = returns_doc
    return adapter, schema


def to_json_data(value: Any) -> Any:
    """``value`` as JSON data: unchanged when it already is (checked at serialisation speed,
    about 2 ms a MB), else converted by pydantic (models, dataclasses, datetimes, Decimal,
    sets...; about 20 ms a MB, as it builds new objects)."""
    try:
        orjson.dumps(value, option=_PLAIN_JSON)
    except TypeError:
        return to_jsonable_python(value)
    return value


def validate_input(model: type[BaseModel], sandbox_name: str, args: Any) -> BaseModel:
    """``args`` validated into ``model``; raises InvalidArgumentsError with every problem."""
    try:
        return model.model_validate(args)
    except ValidationError as e:
        raise InvalidArgumentsError(f"{sandbox_name}: invalid arguments: {describe_errors(e)}") from None


# -- error messages ----------------------------------------------------------------------


def describe_errors(error: ValidationError, *, root: str = "input") -> str:
    """A pydantic error as ``path: problem (got value)`` items joined by ``; `` (at most
    ten, then how many more)."""
    problems = [_describe(item, root) for item in error.errors(include_url=False)]
    text = "; ".join(problems[:_MAX_ERRORS])
    if len(problems) > _MAX_ERRORS:
        text += f"; and {len(problems) - _MAX_ERRORS} more"
    return text


def _describe(item: Mapping[str, Any], root: str) -> str:
    path = _path(item["loc"]) or root
    if item["type"] == "missing":
        return f"{path}: {item['msg']}"
    return f"{path}: {item['msg']} (got {_preview(item.get('input'))})"


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _preview(value: Any) -> str:
    try:
        text = orjson.dumps(value, default=str).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _MAX_PREVIEW else text[: _MAX_PREVIEW - 3] + "..."
