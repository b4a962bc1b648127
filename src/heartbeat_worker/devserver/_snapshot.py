"""A read-only view of the dev server's domains, open executions and open activity tasks.

What a test or a status page wants to know about running work without reading histories:
which tasks are open, whether they started, the last heartbeat details and when they came,
how long each timeout has left. Task tokens are left out: they are credentials (a short
digest, the one worker logs carry, identifies a started task instead).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

from .._logging import token_hash
from ._engine import Engine

__all__ = [
    "ActivityTaskView",
    "DomainView",
    "ExecutionView",
    "PollView",
    "Snapshot",
    "take_snapshot",
]


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
    token_hash: str | None = None
    """A digest of the task token (as in worker logs); None until the task is started."""
    schedule_to_close_timeout: float | None = None
    start_to_close_timeout: float | None = None
    schedule_to_start_timeout: float | None = None
    heartbeat_left: float | None = None
    """Seconds before the heartbeat timeout fires, at ``taken_at``; None when it cannot."""
    start_to_close_left: float | None = None
    schedule_to_close_left: float | None = None
    schedule_to_start_left: float | None = None


@dataclass(frozen=True, slots=True)
class DomainView:
    name: str
    description: str | None
    deprecated: bool
    open_executions: int
    activity_types: int
    workflow_types: int


@dataclass(frozen=True, slots=True)
class ExecutionView:
    """One open workflow execution."""

    domain: str
    workflow_id: str
    run_id: str
    workflow_name: str
    workflow_version: str
    task_list: str
    started_at: float
    """Epoch seconds."""
    cancel_requested: bool
    open_activity_tasks: int
    execution_left: float | None
    """Seconds before the execution start-to-close timeout, at ``taken_at``."""


@dataclass(frozen=True, slots=True)
class PollView:
    """One long poll waiting for a task, its client connection still open."""

    kind: Literal["activity", "decision"]
    domain: str
    task_list: str
    identity: str | None
    since: float
    """Epoch seconds when the poll arrived."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float
    """Epoch seconds."""
    open_executions: int
    activity_tasks: tuple[ActivityTaskView, ...]
    domains: tuple[DomainView, ...] = ()
    executions: tuple[ExecutionView, ...] = ()
    """The open executions, oldest first (at most ``limit`` of them, if one was given)."""
    open_activity_tasks: int = 0
    """Every open activity task, including those beyond ``limit``."""
    polls: tuple[PollView, ...] = ()
    """The polls waiting for a task, oldest first per task list (a poll whose connection has
    closed is left out: it will never be handed a task unless ``keep_abandoned_polls``)."""

    def task(self, activity_id: str, workflow_id: str | None = None) -> ActivityTaskView | None:
        """The open task with this activity id (and workflow id, when given), if any."""
        for view in self.activity_tasks:
            if view.activity_id == activity_id and workflow_id in (None, view.workflow_id):
                return view
        return None


def _left(when: float | None, now: float) -> float | None:
    return None if when is None else max(0.0, when - now)


def take_snapshot(engine: Engine, limit: int | None = None) -> Snapshot:
    """Read the engine's state; call it from the server's event loop.

    ``limit`` bounds how many executions and activity tasks are described (the counts stay
    exact), so that a page refreshed every second costs little with thousands of tasks.
    """
    now = engine.loop.time()
    views: list[ActivityTaskView] = []
    executions: list[ExecutionView] = []
    domains: list[DomainView] = []
    open_executions = open_tasks = 0
    for domain in engine.registry.domains.values():
        domains.append(
            DomainView(
                name=domain.name,
                description=domain.description,
                deprecated=domain.deprecated,
                open_executions=len(domain.open_executions),
                activity_types=len(domain.activity_types),
                workflow_types=len(domain.workflow_types),
            )
        )
        for execution in domain.open_executions.values():
            open_executions += 1
            open_tasks += len(execution.activities)
            if limit is not None and len(executions) >= limit:
                continue
            executions.append(
                ExecutionView(
                    domain=domain.name,
                    workflow_id=execution.workflow_id,
                    run_id=execution.run_id,
                    workflow_name=execution.workflow_type["name"],
                    workflow_version=execution.workflow_type["version"],
                    task_list=execution.task_list,
                    started_at=execution.start_timestamp,
                    cancel_requested=execution.cancel_requested,
                    open_activity_tasks=len(execution.activities),
                    execution_left=_left(
                        execution.handle.when() if execution.handle is not None else None, now
                    ),
                )
            )
            for task in execution.activities.values():
                if limit is not None and len(views) >= limit:
                    break
                handles = task.handles
                started = bool(task.started_event_id)
                views.append(
                    ActivityTaskView(
                        domain=domain.name,
                        task_list=task.task_list,
                        workflow_id=execution.workflow_id,
                        run_id=execution.run_id,
                        activity_id=task.activity_id,
                        activity_name=task.activity_type["name"],
                        activity_version=task.activity_type["version"],
                        state="started" if started else "scheduled",
                        scheduled_event_id=task.scheduled_event_id,
                        started_event_id=task.started_event_id,
                        heartbeat_timeout=task.heartbeat,
                        cancel_requested=task.cancel_requested_event_id is not None,
                        heartbeats=task.heartbeats,
                        details=task.details,
                        last_heartbeat_at=task.last_heartbeat_at,
                        token_hash=token_hash(task.token) if task.token is not None else None,
                        schedule_to_close_timeout=task.schedule_to_close,
                        start_to_close_timeout=task.start_to_close,
                        schedule_to_start_timeout=task.schedule_to_start,
                        # The heartbeat timer may lag the deadline, which heartbeats move.
                        heartbeat_left=_left(
                            task.heartbeat_deadline
                            if started and task.heartbeat is not None
                            else None,
                            now,
                        ),
                        start_to_close_left=_when_left(handles.get("START_TO_CLOSE"), now),
                        schedule_to_close_left=_when_left(handles.get("SCHEDULE_TO_CLOSE"), now),
                        schedule_to_start_left=_when_left(handles.get("SCHEDULE_TO_START"), now),
                    )
                )
    polls = [
        PollView("activity", domain_name, task_list, identity, since)
        for (domain_name, task_list), queue in engine.activity_queues.items()
        for identity, since in queue.open_polls()
    ]
    polls += [
        PollView("decision", domain_name, task_list, identity, since)
        for (domain_name, task_list), queue in engine.decision_queues.items()
        for identity, since in queue.open_polls()
    ]
    return Snapshot(
        taken_at=time.time(),
        polls=tuple(polls),
        open_executions=open_executions,
        activity_tasks=tuple(views),
        domains=tuple(domains),
        executions=tuple(executions),
        open_activity_tasks=open_tasks,
    )


def _when_left(handle: asyncio.TimerHandle | None, now: float) -> float | None:
    return None if handle is None else max(0.0, handle.when() - now)
