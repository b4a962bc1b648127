"""Fault injection: make the dev server fail the way SWF and networks do, on purpose.

A worker is only as reliable as its handling of a throttled call, a 500, a slow answer or a
connection that breaks. This module lets a test (or a person at a terminal) ask for those
failures, per operation, with a probability and for a window of time:

``throttle``
    refused with ``ThrottlingException`` (HTTP 400), as SWF answers a caller over its quota;
``error``
    refused with ``InternalFailure`` (HTTP 500), or with HTTP 400 and the error ``code`` the
    rule names (``ExpiredTokenException``, ``AccessDeniedException``...): an error that
    is no one's fault but the caller's, and that retrying soon does not cure;
``latency``
    answered ``latency`` seconds late (the request is applied after the wait);
``drop``
    the connection is closed without an answer, before the request is applied;
``drop-reply``
    the request is applied, then the connection is closed without an answer: the reply is
    lost. This is how a client comes to retry an answer SWF already recorded, and then gets
    ``UnknownResourceFault`` for it.

Every fault but ``drop-reply`` is decided before the request is applied, so it changes
nothing in the server's state. Faults that refuse a request (``throttle``, ``error``,
``drop``, ``drop-reply``) share one roll of the dice per request: their probabilities add up,
so three rules of 5%, 5% and 10% fail 20% of the matching calls. Latency rules roll
separately and their delays add up.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, TypedDict, cast, get_args

from aiohttp import web

from ._model import SWFError, model

__all__ = ["SPEC_HELP", "Fault", "FaultKind", "Faults", "drop_connection", "parse_fault_spec"]

FaultKind = Literal["throttle", "error", "latency", "drop", "drop-reply"]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)

_THROTTLING: Final = "com.amazon.coral.availability#ThrottlingException"
_INTERNAL_FAILURE: Final = "com.amazon.coral.service#InternalFailure"

SPEC_HELP: Final = (
    "inject a fault: KIND[,operation=OP[+OP...]][,probability=P][,after=S][,duration=S]"
    "[,latency=S][,code=ERROR]; KIND is throttle, error, latency, drop or drop-reply "
    "(repeatable; see docs/devserver.md)"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault rule. Times are ``time.monotonic()`` seconds; see :meth:`Faults.add`."""

    kind: FaultKind
    operations: frozenset[str] | None
    """The operations it applies to; None for every operation."""
    probability: float
    starts: float
    ends: float | None
    latency: float = 0.0
    code: str | None = None
    """For an ``error`` rule: answer HTTP 400 with this error code instead of a 500."""

    def applies(self, operation: str, now: float) -> bool:
        if self.operations is not None and operation not in self.operations:
            return False
        return self.starts <= now and (self.ends is None or now < self.ends)


class Faults:
    """The fault rules of one dev server (``DevServer.faults``), and what they did.

    Safe to change from any thread while the server runs: rules are replaced, never edited
    in place. ``calls`` counts the requests for known operations the server received, and
    ``injected`` the faults applied, by ``(operation, kind)``.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._rules: tuple[Fault, ...] = ()
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.calls: Counter[str] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()

    @property
    def rules(self) -> tuple[Fault, ...]:
        return self._rules

    def seed(self, value: int) -> None:
        """Make the dice reproducible from now on."""
        self._random.seed(value)

    def add(
        self,
        kind: FaultKind,
        *,
        operation: str | Iterable[str] | None = None,
        probability: float = 1.0,
        after: float = 0.0,
        duration: float | None = None,
        latency: float = 0.0,
        code: str | None = None,
    ) -> Fault:
        """Add a rule and return it (for :meth:`remove`).

        ``operation``: an SWF operation name such as ``"RecordActivityTaskHeartbeat"``, or
        several, or None for all. ``probability``: of each matching request being hit.
        ``after``: seconds from now before the rule applies; ``duration``: seconds it then
        applies for (None: until removed). ``latency``: the delay of a ``latency`` rule.
        ``code``: for an ``error`` rule, the error code of an HTTP 400 answer (such as
        ``"ExpiredTokenException"``) instead of ``InternalFailure``.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        if after < 0 or (duration is not None and duration < 0):
            raise ValueError("after and duration must not be negative")
        if kind == "latency":
            if latency <= 0:
                raise ValueError("a latency fault needs latency > 0 (seconds)")
        elif latency:
            raise ValueError("latency only applies to latency faults")
        if code is not None and (kind != "error" or not code.isidentifier()):
            raise ValueError("code applies to error faults only, and must be an error code name")
        operations = None
        if operation is not None:
            names = frozenset([operation] if isinstance(operation, str) else operation)
            unknown = names - set(model().operation_names)
            if unknown or not names:
                raise ValueError(f"unknown SWF operation(s): {sorted(unknown)}")
            operations = names
        starts = time.monotonic() + after
        fault = Fault(
            kind=kind,
            operations=operations,
            probability=probability,
            starts=starts,
            ends=None if duration is None else starts + duration,
            latency=latency,
            code=code,
        )
        with self._lock:
            self._rules = (*self._rules, fault)
        return fault

    def add_spec(self, spec: str) -> Fault:
        """Add a rule written as on the command line (see :func:`parse_fault_spec`)."""
        kind, options = parse_fault_spec(spec)
        return self.add(kind, **options)

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._rules = tuple(rule for rule in self._rules if rule is not fault)

    def clear(self) -> None:
        """Remove every rule (the counters are kept)."""
        with self._lock:
            self._rules = ()

    def total(self, kind: str | None = None, operation: str | None = None) -> int:
        """How many faults were injected, of one kind and/or on one operation."""
        return sum(
            count
            for (op, fault_kind), count in self.injected.items()
            if (kind is None or fault_kind == kind) and (operation is None or op == operation)
        )

    # -- the request path (the server's event loop) ----------------------------------------

    async def before(self, operation: str) -> Literal["drop", "drop-reply"] | None:
        """Apply the faults decided before ``operation`` runs.

        Waits out latency and raises :class:`SWFError` for a refusal. Returns ``"drop"``
        when the connection must be closed instead of applying the request, and
        ``"drop-reply"`` when it must be closed after applying it.
        """
        self.calls[operation] += 1
        rules = self._rules
        if not rules:
            return None
        now = time.monotonic()
        matching = [rule for rule in rules if rule.applies(operation, now)]
        delay = 0.0
        for rule in matching:
            if rule.kind == "latency" and self._random.random() < rule.probability:
                delay += rule.latency
                self.injected[(operation, "latency")] += 1
        chosen = self._roll([rule for rule in matching if rule.kind != "latency"])
        if delay:
            await asyncio.sleep(delay)
        if chosen is None:
            return None
        self.injected[(operation, chosen.kind)] += 1
        if chosen.kind == "throttle":
            raise SWFError(_THROTTLING, "Rate exceeded", 400)
        if chosen.kind == "error" and chosen.code is not None:
            raise SWFError(chosen.code, "Error injected by a fault rule", 400)
        if chosen.kind == "error":
            raise SWFError(_INTERNAL_FAILURE, "Internal failure injected by a fault rule", 500)
        return "drop" if chosen.kind == "drop" else "drop-reply"

    def _roll(self, rules: list[Fault]) -> Fault | None:
        if not rules:
            return None
        roll = self._random.random()
        cumulative = 0.0
        for rule in rules:
            cumulative += rule.probability
            if roll < cumulative:
                return rule
        return None


def drop_connection(request: web.Request) -> web.Response:
    """Close the client's connection; the response returned is never written."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=204)


class FaultOptions(TypedDict, total=False):
    operation: list[str]
    probability: float
    after: float
    duration: float
    latency: float
    code: str


def parse_fault_spec(spec: str) -> tuple[FaultKind, FaultOptions]:
    """``KIND[,key=value...]`` into the arguments of :meth:`Faults.add`.

    Keys: ``operation`` (``+`` between several names; ``*`` for all), ``probability``,
    ``after``, ``duration``, ``latency``, ``code``. For example
    ``throttle,operation=RecordActivityTaskHeartbeat,probability=0.2`` or
    ``drop,operation=PollForActivityTask,after=30,duration=10``.
    """
    kind, *pairs = (part.strip() for part in spec.split(","))
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    options: FaultOptions = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        key = key.strip()
        if not equals or not value:
            raise ValueError(f"expected key=value, got {pair!r}")
        if key == "operation":
            if value != "*":
                options["operation"] = value.split("+")
        elif key == "code":
            options["code"] = value
        elif key in ("probability", "after", "duration", "latency"):
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {value!r}") from None
            if key == "probability":
                options["probability"] = number
            elif key == "after":
                options["after"] = number
            elif key == "duration":
                options["duration"] = number
            else:
                options["latency"] = number
        else:
            raise ValueError(
                f"unknown key {key!r}; expected operation, probability, after, duration, latency, "
                "code"
            )
    return cast(FaultKind, kind), options
