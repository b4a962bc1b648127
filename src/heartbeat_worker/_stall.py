"""Stall detection: automatic heartbeats that cannot hide a stuck activity.

Automatic heartbeats keep a task alive whatever the activity does, so a deadlock or a read
without a timeout would keep its task alive for ever, and SWF would never time it out. An
activity that reports progress in a loop can declare a *progress timeout*: when it has not
called ``heartbeat()`` for that long, the worker takes it as stalled, logs where it is stuck
(one WARNING with the stack of its coroutine, or of its thread), stops it as it would for a
cancel request (with the grace period), and answers ``RespondActivityTaskFailed`` with a
reason starting ``stalled:`` and the latest progress details, so that a decider can retry at
once from that checkpoint.

The watch is one helper task per task that has a progress timeout, sleeping until the
moment the timeout would pass; tasks without one pay nothing. It reads
``ActivityContext.last_progress``, which ``heartbeat()`` updates with a single assignment
from whichever thread calls it.
"""

from __future__ import annotations

import math
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import anyio

from ._context import ActivityContext, ActivityInfo, StopReason

__all__ = ["RunningActivity", "activity_stack", "stalled_reason", "watch_progress"]

STALLED_PREFIX = "stalled: "
_STACK_FRAMES_MAX = 30
"""Innermost frames kept in the log line: enough to reach the user's code from deep inside
a library, short enough for one log line to stay readable."""


def effective_progress_timeout(declared: float | None, default: float | None) -> float | None:
    """The activity's own value, else the worker's default; ``math.inf`` means off."""
    value = default if declared is None else declared
    return None if value is None or math.isinf(value) else value


async def watch_progress(
    context: ActivityContext, on_stall: Callable[[float], None], scope: anyio.CancelScope
) -> None:
    """Call ``on_stall(idle_seconds)`` once the activity goes ``progress_timeout`` without a
    ``heartbeat()``; end without calling it if the activity is stopped otherwise or
    ``scope`` is cancelled (the task ended)."""
    timeout = context.progress_timeout
    assert timeout is not None
    with scope:
        while context.stop_reason is None:
            idle = context.seconds_since_progress()
            if idle >= timeout:
                on_stall(idle)
                return
            await anyio.sleep(timeout - idle)


def stalled_reason(context: ActivityContext, idle: float) -> str:
    timeout = context.progress_timeout
    return f"{STALLED_PREFIX}no progress reported for {idle:.1f} s (progress timeout {timeout:g} s)"


def _coroutine_frames(coroutine: Any) -> list[FrameType]:
    """The frames of a suspended coroutine, outermost first, following what it awaits."""
    frames: list[FrameType] = []
    current = coroutine
    while current is not None and len(frames) < 200:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return frames


def activity_stack(context: ActivityContext) -> str:
    """Where the activity is now: its thread's stack, or its coroutine's await chain."""
    if context.activity_thread is not None:
        frame = sys._current_frames().get(context.activity_thread)
        if frame is None:
            return "(the activity's thread has ended)"
        lines = traceback.format_stack(frame)
    elif context.coroutine is not None:
        frames = _coroutine_frames(context.coroutine)
        if not frames:
            return "(the activity's coroutine is not suspended)"
        summary = traceback.StackSummary.extract((frame, frame.f_lineno) for frame in frames)
        lines = summary.format()
    else:
        return "(the activity has not started)"
    return "".join(lines[-_STACK_FRAMES_MAX:])


@dataclass(frozen=True, slots=True)
class RunningActivity:
    """A read-out of one running activity, for status pages and metrics."""

    info: ActivityInfo
    seconds_since_progress: float
    """Seconds since the activity last called ``heartbeat()`` (or started)."""
    progress_timeout: float | None
    """Its progress timeout in force (None: not watched)."""
    stop_reason: StopReason | None
    """Why it was asked to stop, if it was."""

    @classmethod
    def of(cls, context: ActivityContext) -> RunningActivity:
        return cls(
            info=context.info,
            seconds_since_progress=context.seconds_since_progress(),
            progress_timeout=context.progress_timeout,
            stop_reason=context.stop_reason,
        )
