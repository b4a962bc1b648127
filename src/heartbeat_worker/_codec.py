"""How SWF's strings become Python arguments, and return values become SWF's strings.

SWF carries ``input`` and ``result`` as opaque strings; this framework makes them JSON.
The mapping from one JSON value to a Python signature is deliberately small:

* no parameters: the input must be absent or ``null``;
* one parameter: it receives the decoded input, whatever its shape (absent input is ``None``);
* several parameters: a JSON object is passed as keyword arguments, a JSON array as
  positional arguments.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from ._limits import DATA_MAX, check_length

__all__ = ["InputError", "bind_input", "encode_result"]


class InputError(Exception):
    """The task's input cannot be turned into a call of the activity; the reason says why."""


def bind_input(signature: inspect.Signature, raw_input: str | None) -> inspect.BoundArguments:
    if raw_input is None or raw_input == "":
        value: Any = None
    else:
        try:
            value = json.loads(raw_input)
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
            return signature.bind()
        if len(parameters) == 1 and not variadic:
            return signature.bind(value)
        if isinstance(value, dict):
            return signature.bind(**value)
        if isinstance(value, list):
            return signature.bind(*value)
        if value is None:
            return signature.bind()
        raise InputError(
            "an activity with several parameters takes a JSON object (keyword arguments) "
            f"or array (positional arguments), not {type(value).__name__}"
        )
    except TypeError as error:
        raise InputError(f"input does not fit the activity's signature: {error}") from None


def encode_result(result: Any) -> str | None:
    """JSON-encode a return value for ``RespondActivityTaskCompleted``; ``None`` sends none.

    Raises ``TypeError``/``ValueError`` for values JSON cannot encode and
    :class:`~heartbeat_worker.SWFLimitError` for results over SWF's 32768-character limit.
    """
    if result is None:
        return None
    encoded = json.dumps(result, separators=(",", ":"))
    return check_length("result", encoded, DATA_MAX)
