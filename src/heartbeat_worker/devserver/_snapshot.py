"""A read-only view of the dev server's open activity tasks, as plain values.

What a test or a status page wants to know about running work without reading histories:
which tasks are open, whether they started, the last heartbeat details and when they came.
Task tokens are left out: they are credentials.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from ._engine import Engine

__all__ = ["ActivityTaskView", "Snapshot", "take_snapshot"]


@dataclass(frozen=True, slots=True)
class ActivityTaskView:
    """One open activity task (scheduled, or started and not yet closed)."""

    domain: str
    task_list: str
    workflow_id: str
    run_id: str
    activity_id: str
    activity_name: str
    activity_version: str
    state: Literal["scheduled", "started"]
    scheduled_event_id: int
    started_event_id: int
    """0 until the task is started."""
    heartbeat_timeout: float | None
    """Seconds, None for ``NONE``."""
    cancel_requested: bool
    heartbeats: int
    """RecordActivityTaskHeartbeat calls received for this task."""
    details: str | None
    """The last heartbeat's details, as SWF would put them in ``ActivityTaskTimedOut``."""
    last_heartbeat_at: float | None
    """Epoch seconds of the last heartbeat received; None before the first."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float
    """Epoch seconds."""
    open_executions: int
    activity_tasks: tuple[ActivityTaskView, ...]

    def task(self, activity_id: str, workflow_id: str | None = None) -> ActivityTaskView | None:
        """The open task with this activity id (and workflow id, when given), if any."""
        for view in self.activity_tasks:
            if view.activity_id == activity_id and workflow_id in (None, view.workflow_id):
                return view
        return None


def take_snapshot(engine: Engine) -> Snapshot:
    """Read the engine's state; call it from the server's event loop."""
    views: list[ActivityTaskView] = []
    open_executions = 0
    for domain in engine.registry.domains.values():
        for execution in domain.open_executions.values():
            open_executions += 1
            for task in execution.activities.values():
                views.append(
                    ActivityTaskView(
                        domain=domain.name,
                        task_list=task.task_list,
                        workflow_id=execution.workflow_id,
                        run_id=execution.run_id,
                        activity_id=task.activity_id,
                        activity_name=task.activity_type["name"],
                        activity_version=task.activity_type["version"],
                        state="started" if task.started_event_id else "scheduled",
                        scheduled_event_id=task.scheduled_event_id,
                        started_event_id=task.started_event_id,
                        heartbeat_timeout=task.heartbeat,
                        cancel_requested=task.cancel_requested_event_id is not None,
                        heartbeats=task.heartbeats,
                        details=task.details,
                        last_heartbeat_at=task.last_heartbeat_at,
                    )
                )
    return Snapshot(
        taken_at=time.time(), open_executions=open_executions, activity_tasks=tuple(views)
    )
