"""What a running activity can ask of the framework: ``heartbeat()``, ``info()``,
``cancel_requested()``.

The state lives in a :class:`contextvars.ContextVar`, which anyio copies into worker
threads, so the same three functions work from a coroutine and from the thread of a
blocking activity without the user passing anything around.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._errors import ActivityCancelled, NotInActivityError
from ._limits import HEARTBEAT_DETAILS_MAX, check_length

__all__ = [
    "ActivityContext",
    "ActivityInfo",
    "StopReason",
    "cancel_requested",
    "current_context",
    "heartbeat",
    "heartbeat_observer",
    "info",
]


class StopReason(enum.Enum):
    """Why the framework asked an activity to stop; each one leads to a different answer."""

    CANCEL_REQUESTED = "cancel requested"
    """SWF said ``cancelRequested``: answer ``RespondActivityTaskCanceled``."""

    TASK_LOST = "task lost"
    """SWF closed the task (timed out, workflow closed): no answer is possible."""

    SHUTDOWN = "worker shutdown"
    """The worker is stopping: answer ``RespondActivityTaskFailed`` so a decider retries."""


@dataclass(frozen=True, slots=True)
class ActivityInfo:
    """A description of the task an activity is running, as SWF handed it over."""

    domain: str
    task_list: str
    activity_id: str
    activity_type: str
    activity_version: str
    workflow_id: str
    run_id: str
    started_event_id: int
    heartbeat_timeout: float | None
    """The heartbeat timeout in force for this task (seconds; None when SWF has none)."""
    start_to_close_timeout: float | None
    started_at: datetime
    token_hash: str
    """A short, non-reversible digest of the task token, for correlating logs."""
    checkpoint: Any = None
    """Progress details from a previous attempt, when the scheduler passed them along."""


heartbeat_observer: ContextVar[Callable[[Any], None] | None] = ContextVar(
    "heartbeat_worker_heartbeat_observer", default=None
)
"""Called with the details of every ``heartbeat()`` call (None for a call without any).

The worker never sets it; :mod:`heartbeat_worker.testing` does, so that tests see each call
and not only the latest details. A context created where it is set keeps it, which covers
the activity's own thread too.
"""


class ActivityContext:
    """Mutable state shared by one activity, its heartbeater and the worker.

    Writes from the activity's thread are single attribute assignments, which the
    interpreter performs atomically; everything else happens on the event loop.
    """

    def __init__(self, info: ActivityInfo, *, in_thread: bool) -> None:
        self.info = info
        self.in_thread = in_thread
        self.details_json: str | None = None
        self.stop_reason: StopReason | None = None
        self.observer = heartbeat_observer.get()

    def record_details(self, details: Any) -> None:
        encoded = json.dumps(details, separators=(",", ":"))
        self.details_json = check_length("heartbeat details", encoded, HEARTBEAT_DETAILS_MAX)

    def request_stop(self, reason: StopReason) -> bool:
        """Ask the activity to stop; the first reason wins. Returns whether this call won."""
        if self.stop_reason is not None:
            return False
        self.stop_reason = reason
        return True

    @property
    def latest_details(self) -> Any:
        return None if self.details_json is None else json.loads(self.details_json)


_current: ContextVar[ActivityContext] = ContextVar("heartbeat_worker_activity")


def current_context() -> ActivityContext:
    try:
        return _current.get()
    except LookupError:
        raise NotInActivityError(
            "this function can only be called from inside a running activity"
        ) from None


def heartbeat(details: Any = None) -> None:
    """Record the activity's latest progress; the background heartbeater sends it.

    This never waits for the network: it only replaces the details that the next automatic
    heartbeat carries (SWF keeps the latest ones only, and hands them to the decider if the
    task times out, which makes them a natural checkpoint). ``None`` keeps the previous
    details. The JSON encoding must fit SWF's 2048-character limit, or
    :class:`~heartbeat_worker.SWFLimitError` is raised here, where the activity can decide.

    In a blocking activity, this is also where cancellation arrives: once a stop has been
    requested it raises :class:`~heartbeat_worker.ActivityCancelled`.
    """
    context = current_context()
    if details is not None:
        context.record_details(details)
    if context.observer is not None:
        context.observer(details)
    if context.in_thread and context.stop_reason is not None:
        raise ActivityCancelled(f"activity stopped: {context.stop_reason.value}")


def info() -> ActivityInfo:
    """Describe the task the calling activity is running."""
    return current_context().info


def cancel_requested() -> bool:
    """Whether the activity has been asked to stop.

    True once SWF requested cancellation, and also when the worker must stop the activity
    for another reason (the task was lost, or the worker is shutting down), because in each
    case the right thing for a blocking activity is the same: clean up and return or raise
    :class:`~heartbeat_worker.ActivityCancelled`.
    """
    return current_context().stop_reason is not None


def bind(context: ActivityContext) -> None:
    """Make ``context`` current for the calling task (and the threads it starts)."""
    _current.set(context)
