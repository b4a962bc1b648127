"""Workflow timers: the ``StartTimer`` and ``CancelTimer`` decisions, and ``TimerFired``.

A timer is identified by its id within an execution, and a fired or cancelled id can be
reused; the started event id tells a stale loop timer from the current one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._state import Execution, Timer, optional, parse_duration

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Timers"]

Json = dict[str, Any]


class Timers:
    """The timers of every execution."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        """``StartTimer``; True when it failed (the decider must see why)."""
        timer_id = attributes["timerId"]
        if timer_id in execution.timers:
            execution.record(
                "StartTimerFailed",
                {
                    "timerId": timer_id,
                    "cause": "TIMER_ID_ALREADY_IN_USE",
                    "decisionTaskCompletedEventId": completed_id,
                },
            )
            return True
        fire_after = attributes["startToFireTimeout"]
        event: Json = {
            "timerId": timer_id,
            "startToFireTimeout": fire_after,
            "decisionTaskCompletedEventId": completed_id,
        }
        optional(event, "control", attributes.get("control"))
        started_id = execution.record("TimerStarted", event)
        seconds = parse_duration(fire_after, "startToFireTimeout") or 0.0
        handle = self.engine.later(seconds, self.fired, execution, timer_id, started_id)
        execution.timers[timer_id] = Timer(timer_id, started_id, handle)
        return False

    def fired(self, execution: Execution, timer_id: str, started_id: int) -> None:
        timer = execution.timers.get(timer_id)
        if timer is None or timer.started_event_id != started_id:
            return
        del execution.timers[timer_id]
        execution.record("TimerFired", {"timerId": timer_id, "startedEventId": started_id})
        self.engine.decisions.need(execution)

    def cancel(self, execution: Execution, attributes: Json, completed_id: int) -> bool:
        """``CancelTimer``; True when it failed (the decider must see why)."""
        timer_id = attributes["timerId"]
        timer = execution.timers.pop(timer_id, None)
        if timer is None:
            execution.record(
                "CancelTimerFailed",
                {
                    "timerId": timer_id,
                    "cause": "TIMER_ID_UNKNOWN",
                    "decisionTaskCompletedEventId": completed_id,
                },
            )
            return True
        timer.handle.cancel()
        execution.record(
            "TimerCanceled",
            {
                "timerId": timer_id,
                "startedEventId": timer.started_event_id,
                "decisionTaskCompletedEventId": completed_id,
            },
        )
        return False

    def close_all(self, execution: Execution) -> None:
        """Stop the execution's timers without events: it is closing."""
        for timer in execution.timers.values():
            timer.handle.cancel()
        execution.timers.clear()
