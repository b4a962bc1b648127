"""Typed payloads: how JSON values become the types an activity declares, and back.

SWF carries inputs, results and details as strings; this framework makes them JSON. An
activity that declares ``def load(job: Job) -> Report`` should receive a ``Job`` and may
return a ``Report``, without writing the mapping itself. The :class:`Converter` interface
has three methods, each a seam a user may replace (msgspec, a schema of their own): text
to plain JSON values (``decode``), plain values to a declared type (``convert``), and any
value to text (``encode``).

The default, :class:`JSONConverter`, needs nothing beyond the standard library. It encodes
by the value (a dataclass, enum, datetime... is turned into JSON when ``json`` meets it, so
a plain dict costs what ``json.dumps`` costs) and decodes by the type hint, with a plan
built once per hint and cached: a parameter without a hint, or hinted ``Any``, is passed
through untouched, which keeps activities that do not use typed payloads as fast as before.
pydantic v2 models are recognised only when pydantic is already imported (by the module
that defines the model), so a worker without them never imports it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import functools
import json
import sys
import types
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

from ._errors import ConversionError

__all__ = ["DEFAULT_CONVERTER", "Converter", "JSONConverter", "within"]

Plan = Callable[[Any], Any]
"""Turns one plain JSON value into the hinted type, or raises :class:`ConversionError`.

Plans build no path while they work: a container that catches an error from a member
prefixes the member's name, so the path costs something only when there is an error."""


@runtime_checkable
class Converter(Protocol):
    """What the worker needs to turn payloads into typed values and back.

    ``encode`` and ``decode`` work on the text SWF carries (it must be JSON: the checkpoint
    envelope and the built-in decider read it), ``convert`` turns a decoded value into an
    instance of a type hint. ``convert`` raises ``ValueError`` or ``TypeError`` (for
    example :class:`~heartbeat_worker.ConversionError`) when the value does not fit; the
    message is sent as the failure reason, so it should name the field and the problem.
    """

    def encode(self, value: Any) -> str:
        """Any value an activity returns or records as details -> JSON text."""
        ...

    def decode(self, text: str) -> Any:
        """JSON text -> plain values (dict, list, str, int, float, bool, None)."""
        ...

    def convert(self, value: Any, hint: Any) -> Any:
        """A plain value -> an instance of ``hint`` (a type, or a typing construct)."""
        ...


def _dataclass_encoder(kind: type) -> Callable[[Any], Any]:
    names = tuple(field.name for field in dataclasses.fields(kind))
    return lambda value: {name: getattr(value, name) for name in names}


def _encoder_for(kind: type) -> Callable[[Any], Any] | None:
    if dataclasses.is_dataclass(kind):
        return _dataclass_encoder(kind)
    if issubclass(kind, enum.Enum):
        return _enum_value
    if issubclass(kind, dt.date | dt.time):  # datetime is a date
        return _isoformat
    if issubclass(kind, uuid.UUID | Decimal):
        return str
    if issubclass(kind, bytes | bytearray | memoryview):
        return _base64
    if issubclass(kind, set | frozenset):
        return list
    if _is_pydantic_model(kind):
        return _model_dump
    return None


def _enum_value(value: Any) -> Any:
    return value.value


def _isoformat(value: Any) -> Any:
    return value.isoformat()


def _base64(value: Any) -> Any:
    return base64.b64encode(bytes(value)).decode("ascii")


def _model_dump(value: Any) -> Any:
    return value.model_dump(mode="json")


_encoders: dict[type, Callable[[Any], Any]] = {}
"""Per type, how ``_to_json`` encodes it: looked up once, then a dictionary hit."""


def _to_json(value: Any) -> Any:
    """The ``default`` of the encoder: called only for values ``json`` cannot encode."""
    kind = type(value)
    encoder = _encoders.get(kind)
    if encoder is None:
        encoder = _encoder_for(kind)
        if encoder is None:
            raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")
        if len(_encoders) < _ENCODERS_MAX:
            _encoders[kind] = encoder
    return encoder(value)


_ENCODERS_MAX = 1024
"""Types remembered by the encoder: a bound, in case types are created at run time."""


class JSONConverter:
    """The default converter: standard-library JSON, typed by the activity's hints.

    Supported hints: dataclasses (nested), ``TypedDict``, ``Enum``, ``datetime``/``date``/
    ``time`` (ISO 8601), ``UUID``, ``Decimal`` (a string), ``bytes`` (base64), ``list``,
    ``tuple``, ``set``, ``dict`` of those, ``Optional``/unions, ``Literal``, ``NewType``,
    ``Annotated``, the JSON scalars, and pydantic v2 models. Fields a dataclass or
    TypedDict does not declare are ignored, so a newer decider can send more than an older
    worker knows.
    """

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(separators=(",", ":"), default=_to_json)

    def encode(self, value: Any) -> str:
        return self._encoder.encode(value)

    def decode(self, text: str) -> Any:
        return json.loads(text)

    def convert(self, value: Any, hint: Any) -> Any:
        return plan_for(hint)(value)


DEFAULT_CONVERTER: Converter = JSONConverter()


def is_plain(hint: Any) -> bool:
    """Whether values of this hint need no conversion at all (no hint, ``Any``)."""
    return hint is Any or hint is object or hint is typing.Any


def _passthrough(value: Any) -> Any:
    return value


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _fail(problem: str) -> ConversionError:
    return ConversionError("", problem)


def _join(path: str, member: str | int) -> str:
    if isinstance(member, int):
        return f"{path}[{member}]"
    return f"{path}.{member}" if path else member


def within(error: ConversionError, member: str | int) -> ConversionError:
    """``error`` as seen from the container holding ``member`` (a field name or index)."""
    path = error.path
    joined = member if isinstance(member, str) else f"[{member}]"
    if path:
        joined = f"{joined}{path}" if path.startswith("[") else f"{joined}.{path}"
    return ConversionError(joined, error.problem, located=error.located)


def _locate(plan: Plan, members: Any) -> ConversionError:
    """Which member of a container failed: found again, on the error path only."""
    for member, element in members:
        try:
            plan(element)
        except ConversionError as error:
            return within(error, member)
    return _fail("conversion failed")


@functools.lru_cache(maxsize=1024)
def plan_for(hint: Any) -> Plan:
    """The conversion of one hint, built once (hints are hashable; the cache is bounded)."""
    return _build(hint)


def _plan(hint: Any) -> Plan:
    try:
        return plan_for(hint)
    except TypeError:  # an unhashable hint (rare): build without the cache
        return _build(hint)


def _build(hint: Any) -> Plan:
    if is_plain(hint) or isinstance(hint, typing.TypeVar):
        return _passthrough
    if hint is None or hint is type(None):
        return _none
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if origin is typing.Annotated:
        return _plan(arguments[0])
    if origin is typing.Union or origin is types.UnionType:
        return _union(arguments)
    if origin is typing.Literal:
        return _literal(arguments)
    if isinstance(hint, typing.NewType):
        return _plan(hint.__supertype__)
    if origin is not None:
        return _generic(origin, arguments, hint)
    if not isinstance(hint, type):
        return _passthrough  # a string annotation that could not be resolved, and the like
    if hint is bool or hint is str:
        return _exact(hint)
    if hint is int:
        return _int
    if hint is float:
        return _float
    if hint is list or hint is dict:
        return _exact(hint)
    if issubclass(hint, enum.Enum):
        return _enum(hint)
    if hint is dt.datetime:
        return _from_string(dt.datetime.fromisoformat, "an ISO 8601 date and time")
    if hint is dt.date:
        return _from_string(dt.date.fromisoformat, "an ISO 8601 date")
    if hint is dt.time:
        return _from_string(dt.time.fromisoformat, "an ISO 8601 time")
    if hint is uuid.UUID:
        return _from_string(uuid.UUID, "a UUID")
    if hint is Decimal:
        return _decimal
    if hint is bytes:
        return _bytes
    if _is_pydantic_model(hint):
        return _pydantic(hint)
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint)
    if typing.is_typeddict(hint):
        return _typeddict(hint)
    return _instance(hint)


def _none(value: Any) -> Any:
    if value is not None:
        raise _fail(f"expected null, got {_describe(value)}")
    return None


def _exact(kind: type) -> Plan:
    name = {str: "a string", bool: "true or false", list: "an array", dict: "an object"}[kind]

    def check(value: Any) -> Any:
        if type(value) is not kind and not (kind is not bool and isinstance(value, kind)):
            raise _fail(f"expected {name}, got {_describe(value)}")
        return value

    return check


def _int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"expected an integer, got {_describe(value)}")
    return value


def _float(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"expected a number, got {_describe(value)}")
    return float(value)


def _decimal(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(f"expected a decimal number as a string, got {_describe(value)}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _fail(f"expected a decimal number, got {_describe(value)}") from None


def _bytes(value: Any) -> Any:
    if not isinstance(value, str):
        raise _fail(f"expected base64 text, got {_describe(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise _fail(f"expected base64 text, got {_describe(value)}") from None


def _from_string(parse: Callable[[str], Any], what: str) -> Plan:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise _fail(f"expected {what} as a string, got {_describe(value)}")
        try:
            return parse(value)
        except ValueError:
            raise _fail(f"expected {what}, got {_describe(value)}") from None

    return convert


def _enum(kind: type[enum.Enum]) -> Plan:
    def convert(value: Any) -> Any:
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in kind)
            raise _fail(f"{value!r} is not a valid {kind.__name__} (one of {allowed})") from None

    return convert


def _literal(allowed: tuple[Any, ...]) -> Plan:
    def check(value: Any) -> Any:
        if value not in allowed:
            raise _fail(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value

    return check


def _union(members: tuple[Any, ...]) -> Plan:
    optional = type(None) in members
    others = [member for member in members if member is not type(None)]
    if len(others) == 1:
        inner = _plan(others[0])

        def optional_one(value: Any) -> Any:
            return None if value is None else inner(value)

        return optional_one if optional else inner
    plans = [_plan(member) for member in others]

    def first_fit(value: Any) -> Any:
        if value is None and optional:
            return None
        problems = []
        for plan in plans:
            try:
                return plan(value)
            except (TypeError, ValueError) as error:
                problems.append(str(error))
        raise _fail("fits none of the union's types: " + "; ".join(problems))

    return first_fit


def _generic(origin: Any, arguments: tuple[Any, ...], hint: Any) -> Plan:
    if origin in (list, set, frozenset, Sequence) or origin is typing.Sequence:
        item = _plan(arguments[0]) if arguments else _passthrough
        build: Callable[[Any], Any] = list if origin in (list, Sequence) else origin

        def sequence(value: Any) -> Any:
            if not isinstance(value, list):
                raise _fail(f"expected an array, got {_describe(value)}")
            try:
                return build([item(element) for element in value])
            except ConversionError:
                raise _locate(item, enumerate(value)) from None

        return sequence
    if origin is tuple:
        return _tuple(arguments)
    if origin in (dict, Mapping) or origin is typing.Mapping:
        key = _plan(arguments[0]) if arguments else _passthrough
        item = _plan(arguments[1]) if arguments else _passthrough

        def mapping(value: Any) -> Any:
            if not isinstance(value, dict):
                raise _fail(f"expected an object, got {_describe(value)}")
            converted = {}
            name: Any = ""
            try:
                for name, element in value.items():
                    converted[key(name)] = item(element)
            except ConversionError as error:
                raise within(error, str(name)) from None
            return converted

        return mapping
    if isinstance(origin, type) and dataclasses.is_dataclass(origin):
        return _dataclass(origin)
    return _instance(origin) if isinstance(origin, type) else _passthrough


def _tuple(arguments: tuple[Any, ...]) -> Plan:
    if len(arguments) == 2 and arguments[1] is Ellipsis:
        item = _plan(arguments[0])

        def variadic(value: Any) -> Any:
            if not isinstance(value, list):
                raise _fail(f"expected an array, got {_describe(value)}")
            try:
                return tuple([item(element) for element in value])
            except ConversionError:
                raise _locate(item, enumerate(value)) from None

        return variadic
    plans = [_plan(argument) for argument in arguments]

    def fixed(value: Any) -> Any:
        if not isinstance(value, list):
            raise _fail(f"expected an array, got {_describe(value)}")
        if plans and len(value) != len(plans):
            raise _fail(f"expected {len(plans)} items, got {len(value)}")
        if not plans:
            return tuple(value)
        converted = []
        for index, (plan, element) in enumerate(zip(plans, value, strict=True)):
            try:
                converted.append(plan(element))
            except ConversionError as error:
                raise within(error, index) from None
        return tuple(converted)

    return fixed


def _resolved_hints(kind: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(kind, include_extras=True)
    except Exception:
        return dict.fromkeys(getattr(kind, "__annotations__", {}), Any)


def _dataclass(kind: type) -> Plan:
    hints = _resolved_hints(kind)
    fields = [
        (
            field.name,
            _plan(hints.get(field.name, Any)),
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
        )
        for field in dataclasses.fields(kind)
        if field.init
    ]
    name = kind.__name__

    def convert(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise _fail(f"expected an object ({name}), got {_describe(value)}")
        arguments = {}
        field_name = ""
        try:
            for field_name, plan, required in fields:
                if field_name in value:
                    arguments[field_name] = plan(value[field_name])
                elif required:
                    raise _fail(f"missing (a required field of {name})")
        except ConversionError as error:
            raise within(error, field_name) from None
        return kind(**arguments)

    return convert


def _typeddict(kind: type) -> Plan:
    hints = _resolved_hints(kind)
    required: frozenset[str] = getattr(kind, "__required_keys__", frozenset(hints))
    plans = {key: _plan(hint) for key, hint in hints.items()}
    name = kind.__name__

    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _fail(f"expected an object ({name}), got {_describe(value)}")
        for key in required:
            if key not in value:
                raise within(_fail(f"missing (a required key of {name})"), key)
        converted = {}
        key = ""
        try:
            for key, element in value.items():
                plan = plans.get(key)
                if plan is not None:
                    converted[key] = plan(element)
        except ConversionError as error:
            raise within(error, key) from None
        return converted

    return convert


def _instance(kind: type) -> Plan:
    def check(value: Any) -> Any:
        if not isinstance(value, kind):
            raise _fail(
                f"expected {kind.__name__}, got {_describe(value)} (the converter does not "
                "know how to build it; use a supported type or a converter of your own)",
            )
        return value

    return check


def _is_pydantic_model(kind: Any) -> bool:
    """Only if pydantic is imported already: a worker without models never imports it."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None:
        return False
    return isinstance(kind, type) and issubclass(kind, pydantic.BaseModel)


def _pydantic(kind: Any) -> Plan:
    def convert(value: Any) -> Any:
        try:
            return kind.model_validate(value)
        except ValueError as error:  # pydantic.ValidationError is a ValueError
            problems = []
            for item in getattr(error, "errors", lambda: [])():
                where = ""
                for part in item.get("loc", ()):
                    where = _join(where, part)
                problems.append(f"{where or kind.__name__}: {item.get('msg', '')}")
            if not problems:
                raise _fail(str(error)) from None
            raise ConversionError("", "; ".join(problems), located=True) from None

    return convert
