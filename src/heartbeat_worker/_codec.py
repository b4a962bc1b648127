"""How SWF's strings become Python arguments, and return values become SWF's strings.

SWF carries ``input`` and ``result`` as opaque strings; this framework makes them JSON,
typed by the activity's hints through a :class:`~heartbeat_worker.Converter`. The mapping
from one JSON value to a Python signature is deliberately small:

* no parameters: the input must be absent or ``null``;
* one parameter: it receives the decoded input, whatever its shape (absent input, or
  ``null``, is ``None``, or the parameter's default if it has one);
* several parameters: a JSON object is passed as keyword arguments, a JSON array as
  positional arguments.

Each argument is then converted to its parameter's hint; the hints are read once per
function (:func:`signature_hints`), and a parameter without one costs nothing.
"""

from __future__ import annotations

import contextlib
import inspect
import typing
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._converter import DEFAULT_CONVERTER, Converter, is_plain, within
from ._errors import ConversionError
from ._limits import DATA_MAX, check_length

__all__ = ["InputError", "SignatureHints", "bind_input", "decode_result", "encode_result"]


class InputError(Exception):
    """The task's input cannot be turned into a call of the activity; the reason says why."""


@dataclass(frozen=True, slots=True)
class SignatureHints:
    """The type hints of a function that need converting (plain ones are left out)."""

    parameters: dict[str, Any]
    result: Any


_hints: weakref.WeakKeyDictionary[Callable[..., Any], SignatureHints] = weakref.WeakKeyDictionary()


def signature_hints(function: Callable[..., Any]) -> SignatureHints:
    """Read ``function``'s hints once; unresolvable ones (forward references to names the
    module does not define) count as no hint rather than failing every task."""
    try:
        return _hints[function]
    except (KeyError, TypeError):
        pass
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:
        hints = {}
    result = hints.pop("return", Any)
    found = SignatureHints(
        parameters={name: hint for name, hint in hints.items() if not is_plain(hint)},
        result=Any if result is None or result is type(None) else result,
    )
    with contextlib.suppress(TypeError):  # not weakly referenceable: read again next time
        _hints[function] = found
    return found


def bind_input(
    signature: inspect.Signature,
    raw_input: str | None,
    *,
    converter: Converter = DEFAULT_CONVERTER,
    hints: SignatureHints | None = None,
) -> inspect.BoundArguments:
    if raw_input is None or raw_input == "":
        value: Any = None
    else:
        try:
            value = converter.decode(raw_input)
        except ValueError as error:
            raise InputError(f"input is not valid JSON: {error}") from None

    parameters = [
        parameter
        for parameter in signature.parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    variadic = len(parameters) != len(signature.parameters)
    try:
        if not parameters and not variadic:
            if value is not None:
                raise InputError("the activity takes no input, but the task has some")
            bound = signature.bind()
        elif len(parameters) == 1 and not variadic:
            if value is None and parameters[0].default is not parameters[0].empty:
                bound = signature.bind()  # no input: the parameter keeps its default
            else:
                bound = signature.bind(value)
        elif isinstance(value, dict):
            bound = signature.bind(**value)
        elif isinstance(value, list):
            bound = signature.bind(*value)
        elif value is None:
            bound = signature.bind()
        else:
            raise InputError(
                "an activity with several parameters takes a JSON object (keyword arguments) "
                f"or array (positional arguments), not {type(value).__name__}"
            )
    except TypeError as error:
        raise InputError(f"input does not fit the activity's signature: {error}") from None
    if hints is not None and hints.parameters:
        _convert_arguments(bound, hints.parameters, converter, single=len(parameters) == 1)
    return bound


def _convert_arguments(
    bound: inspect.BoundArguments, hints: dict[str, Any], converter: Converter, *, single: bool
) -> None:
    arguments = bound.arguments
    for name, hint in hints.items():
        if name not in arguments:
            continue
        try:
            arguments[name] = converter.convert(arguments[name], hint)
        except ConversionError as error:
            if single:
                located = error.path or error.located
                raise InputError(str(error) if located else f"input: {error}") from None
            raise InputError(str(within(error, name))) from None
        except (TypeError, ValueError) as error:  # a converter of the user's own
            where = "input" if single else f"argument {name!r}"
            raise InputError(f"{where} does not fit its type: {error}") from None


def encode_result(result: Any, converter: Converter = DEFAULT_CONVERTER) -> str | None:
    """Encode a return value for ``RespondActivityTaskCompleted``; ``None`` sends none.

    Raises ``TypeError``/``ValueError`` for values the converter cannot encode and
    :class:`~heartbeat_worker.SWFLimitError` for results over SWF's 32768-character limit.
    """
    if result is None:
        return None
    encoded = converter.encode(result)
    return check_length("result", encoded, DATA_MAX)


def decode_result(
    result: str | None, function: Callable[..., Any], converter: Converter = DEFAULT_CONVERTER
) -> Any:
    """The typed value of an activity's result string, by its return hint (for tests and
    for code that reads results with the activity's own types)."""
    if result is None:
        return None
    value = converter.decode(result)
    hint = signature_hints(function).result
    return value if is_plain(hint) else converter.convert(value, hint)
