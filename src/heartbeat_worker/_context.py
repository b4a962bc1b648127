"""What a running activity can ask of the framework: ``heartbeat()``, ``info()``,
``cancel_requested()``, ``wait_for_stop()``, and the handle ``current_activity()``.

The state lives in a :class:`contextvars.ContextVar`, which anyio copies into worker
threads, so the module-level functions work from a coroutine and from the thread of a
blocking activity without the user passing anything around. Threads the activity starts
itself (a ``ThreadPoolExecutor``) get no copy; for them, the activity takes an
:class:`ActivityHandle` with :func:`current_activity` and passes it along: its methods work
from any thread, because each write is a single attribute assignment.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import ActivityCancelled, NotInActivityError
from ._limits import HEARTBEAT_DETAILS_MAX, check_length

if TYPE_CHECKING:
    from ._converter import Converter

__all__ = [
    "ActivityContext",
    "ActivityHandle",
    "ActivityInfo",
    "StopReason",
    "cancel_requested",
    "current_activity",
    "current_context",
    "heartbeat",
    "heartbeat_observer",
    "info",
    "wait_for_stop",
]


class StopReason(enum.Enum):
    """Why the framework asked an activity to stop; each one leads to a different answer."""

    CANCEL_REQUESTED = "cancel requested"
    """SWF said ``cancelRequested``: answer ``RespondActivityTaskCanceled``."""

    TASK_LOST = "task lost"
    """SWF closed the task (timed out, workflow closed): no answer is possible."""

    SHUTDOWN = "worker shutdown"
    """The worker is stopping: answer ``RespondActivityTaskFailed`` so a decider retries."""

    STALLED = "stalled"
    """No ``heartbeat()`` call for the activity's progress timeout: answer
    ``RespondActivityTaskFailed`` with a reason starting ``stalled:``."""


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

    def __init__(
        self,
        info: ActivityInfo,
        *,
        in_thread: bool,
        converter: Converter | None = None,
        progress_timeout: float | None = None,
        task_token: str | None = None,
    ) -> None:
        if converter is None:
            from ._converter import DEFAULT_CONVERTER

            converter = DEFAULT_CONVERTER
        self.info = info
        self.in_thread = in_thread
        self.converter = converter
        self.progress_timeout = progress_timeout
        """Seconds without a ``heartbeat()`` call after which the activity counts as stalled
        (None: never)."""
        self.details_json: str | None = None
        self.stop_reason: StopReason | None = None
        self.observer = heartbeat_observer.get()
        self.last_progress = time.monotonic()
        """``time.monotonic()`` of the latest ``heartbeat()`` call (or of the start)."""
        self.loop_thread = threading.get_ident()
        self.activity_thread: int | None = None
        """The thread a blocking activity runs in, once it started (for its stack)."""
        self.coroutine: Any = None
        """The coroutine of a coroutine activity, while it runs (for its stack)."""
        self.completes_later = False
        self.stalled_reason: str | None = None
        self._task_token = task_token
        self._stopped: anyio.Event | None = None

    def record_details(self, details: Any) -> None:
        encoded = self.converter.encode(details)
        self.details_json = check_length("heartbeat details", encoded, HEARTBEAT_DETAILS_MAX)

    def request_stop(self, reason: StopReason) -> bool:
        """Ask the activity to stop; the first reason wins. Returns whether this call won.

        Called on the event loop thread.
        """
        if self.stop_reason is not None:
            return False
        self.stop_reason = reason
        if self._stopped is not None:
            self._stopped.set()
        return True

    def seconds_since_progress(self) -> float:
        """Seconds since the activity last called ``heartbeat()`` (or started)."""
        return time.monotonic() - self.last_progress

    async def wait_for_stop(self) -> StopReason:
        if self.stop_reason is None:
            if self._stopped is None:
                self._stopped = anyio.Event()
            await self._stopped.wait()
        assert self.stop_reason is not None
        return self.stop_reason

    @property
    def latest_details(self) -> Any:
        return None if self.details_json is None else self.converter.decode(self.details_json)


_current: ContextVar[ActivityContext] = ContextVar("heartbeat_worker_activity")


def current_context() -> ActivityContext:
    try:
        return _current.get()
    except LookupError:
        raise NotInActivityError(
            "this function can only be called from inside a running activity"
        ) from None


def _heartbeat(context: ActivityContext, details: Any) -> None:
    if details is not None:
        context.record_details(details)
    context.last_progress = time.monotonic()
    if context.observer is not None:
        context.observer(details)
    if context.stop_reason is not None and (
        context.in_thread or threading.get_ident() != context.loop_thread
    ):
        raise ActivityCancelled(f"activity stopped: {context.stop_reason.value}")


def heartbeat(details: Any = None) -> None:
    """Record the activity's latest progress; the background heartbeater sends it.

    This never waits for the network: it only replaces the details that the next automatic
    heartbeat carries (SWF keeps the latest ones only, and hands them to the decider if the
    task times out, which makes them a natural checkpoint). ``None`` keeps the previous
    details; every call, with or without details, counts as progress for the activity's
    progress timeout. Details may be anything the worker's converter encodes (dataclasses,
    enums, datetimes...); the JSON encoding must fit SWF's 2048-character limit, or
    :class:`~heartbeat_worker.SWFLimitError` is raised here, where the activity can decide.

    Outside the event loop (a blocking activity, or a thread it started), this is also
    where a stop arrives: once one has been requested it raises
    :class:`~heartbeat_worker.ActivityCancelled`.
    """
    _heartbeat(current_context(), details)


def info() -> ActivityInfo:
    """Describe the task the calling activity is running."""
    return current_context().info


def cancel_requested() -> bool:
    """Whether the activity has been asked to stop.

    True once SWF requested cancellation, and also when the worker must stop the activity
    for another reason (the task was lost, the worker is shutting down, the activity
    stalled), because in each case the right thing for a blocking activity is the same:
    clean up and return or raise :class:`~heartbeat_worker.ActivityCancelled`.
    :func:`current_activity` ``.stop_reason()`` tells them apart.
    """
    return current_context().stop_reason is not None


async def wait_for_stop() -> StopReason:
    """Wait until the activity is asked to stop, and return why.

    For a task the activity starts beside its work (a watcher that closes a connection on
    a stop, for example) that would otherwise poll :func:`cancel_requested`. Call it on the
    activity's event loop.
    """
    return await current_context().wait_for_stop()


class ActivityHandle:
    """The running activity, as an object that can be handed to code the framework did not
    start: threads of a ``ThreadPoolExecutor``, ``loop.run_in_executor`` callbacks, callbacks
    of other libraries. Every method works from any thread.

    Get it with :func:`current_activity` inside the activity.
    """

    __slots__ = ("_context",)

    def __init__(self, context: ActivityContext) -> None:
        self._context = context

    def heartbeat(self, details: Any = None) -> None:
        """:func:`heartbeat_worker.heartbeat` for this activity, from any thread."""
        _heartbeat(self._context, details)

    def info(self) -> ActivityInfo:
        """:func:`heartbeat_worker.info` for this activity."""
        return self._context.info

    def cancel_requested(self) -> bool:
        """:func:`heartbeat_worker.cancel_requested` for this activity."""
        return self._context.stop_reason is not None

    def stop_reason(self) -> StopReason | None:
        """Why the activity was asked to stop (None while it was not): a cleanup can tell a
        workflow's cancel request from a deploy (``SHUTDOWN``) or a stall."""
        return self._context.stop_reason

    def seconds_since_progress(self) -> float:
        """Seconds since the last ``heartbeat()`` call (or the start of the activity)."""
        return self._context.seconds_since_progress()

    async def wait_for_stop(self) -> StopReason:
        """:func:`heartbeat_worker.wait_for_stop` for this activity (on its event loop)."""
        return await self._context.wait_for_stop()

    def task_token_for_later(self) -> str:
        """The task token, for an activity that another process will answer.

        The token is a secret (whoever has it can answer the task): store it where only the
        completing process reads it, then raise :class:`~heartbeat_worker.CompleteLater`.
        This is the only way the framework hands out a token; it never logs one.
        """
        token = self._context._task_token
        if token is None:
            raise NotInActivityError("this activity has no task token to hand out")
        return token

    def __repr__(self) -> str:
        info = self._context.info
        return f"<ActivityHandle {info.activity_type} {info.activity_id} token={info.token_hash}>"


def current_activity() -> ActivityHandle:
    """A handle on the calling activity, to pass to threads and callbacks it starts."""
    return ActivityHandle(current_context())


def bind(context: ActivityContext) -> None:
    """Make ``context`` current for the calling task (and the threads it starts)."""
    _current.set(context)
