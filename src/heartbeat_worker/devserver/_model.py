"""Request validation compiled from botocore's SWF service model.

botocore checks only minimum lengths on the client, so the server is where an oversize
heartbeat or a missing member must be caught, as SWF catches it. Each operation's input shape is
compiled once into a tree of small closures: validating a heartbeat then costs a few dictionary
look-ups instead of a walk over the model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final

from botocore.model import ListShape, ServiceModel, Shape, StructureShape

__all__ = [
    "SERIALIZATION_EXCEPTION",
    "UNKNOWN_OPERATION_EXCEPTION",
    "VALIDATION_EXCEPTION",
    "SWFError",
    "model",
    "validator_for",
]

_FAULT_PREFIX: Final = "com.amazonaws.swf.base.model#"
VALIDATION_EXCEPTION: Final = "com.amazon.coral.validate#ValidationException"
SERIALIZATION_EXCEPTION: Final = "com.amazon.coral.service#SerializationException"
UNKNOWN_OPERATION_EXCEPTION: Final = "com.amazon.coral.service#UnknownOperationException"


class SWFError(Exception):
    """An error answer, carrying the ``__type`` botocore maps to the modelled exception.

    botocore keeps what follows the last ``#`` of ``__type`` as the error code, so
    ``client.exceptions.UnknownResourceFault`` and friends are raised on the client side exactly
    as with the real service.
    """

    def __init__(self, type_name: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.type_name = type_name if "#" in type_name else _FAULT_PREFIX + type_name
        self.message = message
        self.status = status

    @property
    def code(self) -> str:
        """The error code a client sees: what follows the last ``#`` of the type."""
        return self.type_name.rpartition("#")[2]

    def body(self) -> dict[str, str]:
        return {"__type": self.type_name, "message": self.message}


def validation_error(problems: list[str]) -> SWFError:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return SWFError(
        VALIDATION_EXCEPTION, f"{count} validation {noun} detected: " + "; ".join(problems)
    )


@functools.cache
def model() -> ServiceModel:
    """botocore's SWF model, loaded once: it is the contract for every field and error."""
    import botocore.session

    return botocore.session.get_session().get_service_model("swf")


# The documentation of names and ids (domains, types, workflow and activity ids, task lists,
# timers) forbids these; the model has no pattern for them, so the rule is read from the text.
_FORBIDDEN_RULE: Final = "must not contain a <code>:</code>"
_WHITESPACE_RULE: Final = "must not start or end with whitespace"
_FORBIDDEN: Final = re.compile("[:/|\u0000-\u001f\u007f-\u009f]")


def _name_problem(value: str, path: str, *, whitespace: bool) -> str | None:
    if value == "arn":
        found = "be the literal string 'arn'"
    elif _FORBIDDEN.search(value):
        found = "contain ':', '/', '|' or a control character"
    elif whitespace and value != value.strip():
        found = "start or end with whitespace"
    else:
        return None
    return f"Value '{value[:64]}' at '{path}' failed to satisfy constraint: Member must not {found}"


def _named(check: _Check, member: Shape, *, whitespace: bool) -> _Check:
    """``check`` plus the naming rule; for a task list, the rule applies to its name."""
    in_structure = member.type_name == "structure"

    def check_name(value: Any, path: str, problems: list[str]) -> None:
        check(value, path, problems)
        name, where = value, path
        if in_structure and isinstance(value, dict):
            name, where = value.get("name"), f"{path}.name"
        if isinstance(name, str):
            problem = _name_problem(name, where, whitespace=whitespace)
            if problem is not None:
                problems.append(problem)

    return check_name


# A check appends human-readable problems to the list; a wrong JSON type raises at once, as a
# wrong type is a serialization problem, not a constraint violation.
_Check = Callable[[Any, str, list[str]], None]


def _type_error(path: str, expected: str) -> SWFError:
    return SWFError(SERIALIZATION_EXCEPTION, f"Expected {expected} at '{path}'")


def _compile(shape: Shape, cache: dict[str, _Check]) -> _Check:
    cached = cache.get(shape.name)
    if cached is not None:
        return cached
    kind = shape.type_name
    check: _Check
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        # Recursive shapes do not occur in SWF, but a placeholder keeps compilation safe.
        members: dict[str, _Check] = {}

        def check_structure(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, dict):
                raise _type_error(path or "body", "an object")
            for name in required:
                if value.get(name) is None:
                    where = f"{path}.{name}" if path else name
                    problems.append(
                        f"Value null at '{where}' failed to satisfy constraint: "
                        "Member must not be null"
                    )
            for name, item in value.items():
                member_check = members.get(name)
                if member_check is not None and item is not None:
                    member_check(item, f"{path}.{name}" if path else name, problems)

        required = tuple(shape.required_members)
        check = check_structure
        cache[shape.name] = check
        for name, member in shape.members.items():
            members[name] = _compile(member, cache)
            documentation = member.documentation or ""
            if _FORBIDDEN_RULE in documentation:
                whitespace = _WHITESPACE_RULE in documentation
                members[name] = _named(members[name], member, whitespace=whitespace)
        return check
    if kind == "list":
        assert isinstance(shape, ListShape)
        item_check = _compile(shape.member, cache)
        max_items = shape.metadata.get("max")
        min_items = shape.metadata.get("min")

        def check_list(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, list):
                raise _type_error(path, "a list")
            if max_items is not None and len(value) > max_items:
                problems.append(
                    f"Value at '{path}' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {max_items}"
                )
            if min_items is not None and len(value) < min_items:
                problems.append(
                    f"Value at '{path}' failed to satisfy constraint: "
                    f"Member must have length greater than or equal to {min_items}"
                )
            for index, item in enumerate(value, start=1):
                item_check(item, f"{path}.{index}.member", problems)

        check = check_list
    elif kind == "string":
        max_len = shape.metadata.get("max")
        min_len = shape.metadata.get("min", 0)
        enum = frozenset(shape.metadata.get("enum", ()))

        def check_string(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, str):
                raise _type_error(path, "a string")
            length = len(value)
            if max_len is not None and length > max_len:
                problems.append(
                    f"Value at '{path}' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {max_len}"
                )
            if length < min_len:
                problems.append(
                    f"Value at '{path}' failed to satisfy constraint: "
                    f"Member must have length greater than or equal to {min_len}"
                )
            if enum and value not in enum:
                problems.append(
                    f"Value '{value[:64]}' at '{path}' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(sorted(enum))}]"
                )

        check = check_string
    elif kind in ("integer", "long"):
        max_value = shape.metadata.get("max")
        min_value = shape.metadata.get("min")

        def check_integer(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise _type_error(path, "an integer")
            if max_value is not None and value > max_value:
                problems.append(
                    f"Value '{value}' at '{path}' failed to satisfy constraint: "
                    f"Member must have value less than or equal to {max_value}"
                )
            if min_value is not None and value < min_value:
                problems.append(
                    f"Value '{value}' at '{path}' failed to satisfy constraint: "
                    f"Member must have value greater than or equal to {min_value}"
                )

        check = check_integer
    elif kind == "boolean":

        def check_boolean(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, bool):
                raise _type_error(path, "a boolean")

        check = check_boolean
    elif kind == "timestamp":

        def check_timestamp(value: Any, path: str, problems: list[str]) -> None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _type_error(path, "a timestamp in epoch seconds")

        check = check_timestamp
    else:  # pragma: no cover - SWF has no maps or blobs

        def check_anything(value: Any, path: str, problems: list[str]) -> None:
            return None

        check = check_anything
    cache[shape.name] = check
    return check


Validator = Callable[[Any], None]


@functools.cache
def _validators() -> dict[str, Validator]:
    service = model()
    cache: dict[str, _Check] = {}
    result: dict[str, Validator] = {}
    for name in service.operation_names:
        input_shape = service.operation_model(name).input_shape
        if input_shape is None:  # pragma: no cover - every SWF operation has an input
            continue
        check = _compile(input_shape, cache)

        def validate(body: Any, check: _Check = check) -> None:
            problems: list[str] = []
            check(body, "", problems)
            if problems:
                raise validation_error(problems)

        result[name] = validate
    return result


def validator_for(operation: str) -> Validator | None:
    """The compiled validator of ``operation``, or None if the model does not know it."""
    return _validators().get(operation)
