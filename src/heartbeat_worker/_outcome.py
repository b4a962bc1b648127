"""How a task ended, and the words SWF receives for it.

An :class:`Outcome` is decided once per task; the answer follows from it. Turning an
exception into a failure is the part with judgement in it: an activity may raise an exception
group (a task group inside it), a chain of causes, a cancellation nobody asked for, or
``SystemExit`` from a library. The reason names the first real error, because that is what a
person reading the workflow history looks for; the details hold the whole traceback, groups
and causes included, cut to SWF's limit keeping the end, where the error is.
"""

from __future__ import annotations

import enum
import json
import traceback
from dataclasses import dataclass
from pathlib import Path

import anyio

from ._errors import ActivityCancelled
from ._limits import DATA_MAX, FAILURE_REASON_MAX, cut_end, cut_start, fit_json
from ._stall import STALLED_PREFIX

__all__ = ["SHUTDOWN_REASON", "Outcome", "OutcomeKind", "is_cancellation", "leaves"]

SHUTDOWN_REASON = "worker shutdown"

_LINE_MAX = DATA_MAX // 4
"""A single traceback line (a huge exception message) is cut to this, so that the frames
that locate the error still fit in the details."""

_PACKAGE = str(Path(__file__).parent)

_STRAY_CANCELLATION = "a cancellation the worker did not request escaped the activity"


class OutcomeKind(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    LEFT = "left to SWF"
    LATER = "completes later"
    """The activity raised ``CompleteLater``: another process answers the task."""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    result: str | None = None
    reason: str | None = None
    details: str | None = None

    @property
    def label(self) -> str:
        """The outcome as metrics and interceptors name it (``shutdown`` apart from
        ``failed``, ``left`` for ``left to SWF``)."""
        if self.kind is OutcomeKind.LEFT:
            return "left"
        if self.kind is OutcomeKind.FAILED and self.reason == SHUTDOWN_REASON:
            return "shutdown"
        if self.kind is OutcomeKind.FAILED and (self.reason or "").startswith(STALLED_PREFIX):
            return "stalled"
        if self.kind is OutcomeKind.LATER:
            return "completes_later"
        return str(self.kind.value)

    @classmethod
    def failed(cls, reason: str, details: str | None = None) -> Outcome:
        return cls(
            OutcomeKind.FAILED,
            reason=cut_end(reason, FAILURE_REASON_MAX),
            details=None if details is None else fit_details(details),
        )

    @classmethod
    def canceled(cls, details: str | None) -> Outcome:
        return cls(OutcomeKind.CANCELED, details=None if details is None else fit_json(details))

    @classmethod
    def from_exception(cls, error: BaseException) -> Outcome:
        """A failure whose reason names the first real error in ``error`` (looking into
        exception groups) and whose details are the whole formatted traceback."""
        return cls.failed(failure_reason(error), format_details(error))


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions in ``error``, exception groups flattened (depth first, in order)."""
    if isinstance(error, BaseExceptionGroup):
        found: list[BaseException] = []
        for member in error.exceptions:
            found.extend(leaves(member))
        return found
    return [error]


def is_cancellation(error: BaseException) -> bool:
    """Whether ``error`` says "stopped" rather than "went wrong"."""
    return isinstance(error, ActivityCancelled | anyio.get_cancelled_exc_class())


def failure_reason(error: BaseException) -> str:
    members = leaves(error)
    first = next((member for member in members if not is_cancellation(member)), members[0])
    name = type(first).__name__
    if isinstance(first, anyio.get_cancelled_exc_class()):
        return f"{name}: {_STRAY_CANCELLATION}"
    message = cut_end(str(first), FAILURE_REASON_MAX)
    return f"{name}: {message}" if message else name


def format_details(error: BaseException) -> str:
    """The traceback, without the worker's own frames that lead into the activity."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        tb = tb.tb_next
    if tb is not None:
        error.with_traceback(tb)
    lines = traceback.format_exception(error)
    text = "".join(
        line if len(line) <= _LINE_MAX else cut_end(line.rstrip("\n"), _LINE_MAX) + "\n"
        for line in lines
    )
    return cut_start(text.rstrip("\n"), DATA_MAX)


def fit_details(details: str) -> str:
    """Details within SWF's limit: JSON stays valid JSON, other text keeps its end."""
    if len(details) <= DATA_MAX:
        return details
    try:
        json.loads(details)
    except ValueError:
        return cut_start(details, DATA_MAX)
    return fit_json(details)
