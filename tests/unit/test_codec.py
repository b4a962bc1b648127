from __future__ import annotations

import inspect
from typing import Any

import pytest

from heartbeat_worker import SWFLimitError
from heartbeat_worker._codec import InputError, bind_input, encode_result


def none() -> None: ...
def one(value: Any) -> None: ...
def two(a: int, b: int = 2) -> None: ...
def variadic(*args: Any, **kwargs: Any) -> None: ...


def bound(function: Any, raw: str | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    arguments = bind_input(inspect.signature(function), raw)
    return arguments.args, arguments.kwargs


def test_no_parameters_take_absent_or_null_input_only() -> None:
    assert bound(none, None) == ((), {})
    assert bound(none, "null") == ((), {})
    with pytest.raises(InputError, match="takes no input"):
        bound(none, '{"a": 1}')


def test_one_parameter_receives_the_decoded_input_whatever_its_shape() -> None:
    assert bound(one, '{"a": 1}') == (({"a": 1},), {})
    assert bound(one, "[1, 2]") == (([1, 2],), {})
    assert bound(one, None) == ((None,), {})


def test_several_parameters_take_an_object_or_an_array() -> None:
    assert bound(two, '{"a": 1}') == ((1,), {})
    assert bound(two, "[1, 3]") == ((1, 3), {})
    with pytest.raises(InputError, match="does not fit the activity's signature"):
        bound(two, '{"c": 1}')
    with pytest.raises(InputError, match="takes a JSON object"):
        bound(two, '"text"')


def test_variadic_functions_take_objects_and_arrays() -> None:
    assert bound(variadic, '{"x": 1}') == ((), {"x": 1})
    assert bound(variadic, "[1]") == ((1,), {})


def test_malformed_json_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        bound(one, "{nope")


def test_results_are_compact_json_and_none_sends_nothing() -> None:
    assert encode_result({"a": [1, 2]}) == '{"a":[1,2]}'
    assert encode_result(None) is None
    with pytest.raises(TypeError):
        encode_result(object())
    with pytest.raises(SWFLimitError, match="result is 32771 characters"):
        encode_result("x" * 32769)
