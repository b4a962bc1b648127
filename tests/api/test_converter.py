"""The default converter on its own: what each kind of hint accepts, and how an error
names the field; and a converter of one's own in place of it."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal, NewType, TypedDict

import pydantic
import pytest

from heartbeat_worker import ConversionError, JSONConverter, activity
from heartbeat_worker.testing import run_activity

converter = JSONConverter()


def convert(value: Any, hint: Any) -> Any:
    return converter.convert(value, hint)


class Point(TypedDict):
    x: int
    y: int


class Amounts(pydantic.BaseModel):
    amounts: list[Decimal]


@dataclasses.dataclass
class Holder:
    inner: Amounts
    tags: frozenset[str] = frozenset()


UserId = NewType("UserId", int)


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        ({"a": [1, 2]}, dict[str, list[int]], {"a": [1, 2]}),
        ([1, "b"], tuple[int, str], (1, "b")),
        ([1, 2, 3], tuple[int, ...], (1, 2, 3)),
        (None, int | None, None),
        ("x", int | str, "x"),
        (3, float, 3.0),
        (1.5, Decimal, Decimal("1.5")),
        ("AP8=", bytes, b"\x00\xff"),
        ("12:30:00", time, time(12, 30)),
        ("2026-12-02T06:30:00Z", datetime, datetime.fromisoformat("2026-12-02T06:30:00+00:00")),
        ("b", Literal["a", "b"], "b"),
        (7, UserId, 7),
        (7, Annotated[int, "meta"], 7),
        ({"x": 1, "y": 2, "z": 3}, Point, {"x": 1, "y": 2}),
        (
            {"inner": {"amounts": ["1.5"]}, "tags": ["a"]},
            Holder,
            Holder(Amounts(amounts=[Decimal("1.5")]), frozenset({"a"})),
        ),
    ],
)
def test_values_convert_to_their_hints(value: Any, hint: Any, expected: Any) -> None:
    assert convert(value, hint) == expected


@pytest.mark.parametrize(
    ("value", "hint", "message"),
    [
        ({"a": [1, "x"]}, dict[str, list[int]], "a[1]: expected an integer, got str 'x'"),
        ([1, 2], tuple[int, str], "[1]: expected a string, got int 2"),
        ({"x": 1}, Point, "y: missing (a required key of Point)"),
        (True, int, "expected an integer, got bool True"),
        ("2026-13-01", date, "expected an ISO 8601 date, got str '2026-13-01'"),
        ("c", Literal["a", "b"], "expected one of 'a', 'b', got 'c'"),
        ("not base64!", bytes, "expected base64 text, got str 'not base64!'"),
        (
            {"inner": {"amounts": ["1", "x"]}},
            Holder,
            "inner.amounts[1]: Input should be a valid decimal",
        ),
    ],
)
def test_a_mismatch_names_the_field_and_the_problem(value: Any, hint: Any, message: str) -> None:
    with pytest.raises(ConversionError) as raised:
        convert(value, hint)
    assert str(raised.value) == message


def test_encoding_covers_sets_and_refuses_unknown_types() -> None:
    assert json.loads(converter.encode({"tags": frozenset({"a"})})) == {"tags": ["a"]}
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        converter.encode(object())


class Shouting:
    """A converter of one's own: strings travel upper-cased."""

    def encode(self, value: Any) -> str:
        return json.dumps(value.upper() if isinstance(value, str) else value)

    def decode(self, text: str) -> Any:
        return json.loads(text)

    def convert(self, value: Any, hint: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


@activity
async def greet(name: str) -> str:
    return f"hello {name}"


@pytest.mark.anyio
async def test_a_converter_of_ones_own_replaces_the_default_everywhere() -> None:
    outcome = await run_activity(greet, "Ada", converter=Shouting())

    assert outcome.answer is not None
    assert outcome.answer.result == '"HELLO ADA"'
    assert outcome.result == "hello ada"
