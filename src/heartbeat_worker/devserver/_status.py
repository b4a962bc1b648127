"""The status page's data: a snapshot as JSON-ready values (``GET /status.json``).

Bounded so that a page refreshing every second stays cheap next to the API: at most
:data:`LIMIT` executions and activity tasks are described (the counts stay exact), the
last :data:`CLOSED_LIMIT` closed executions, and heartbeat details are cut to
:data:`DETAILS_MAX` characters.

Beyond the snapshot, it answers what a person watching work asks first: which worker
(identity, from the ``ActivityTaskStarted`` event) runs each task, how far it got (a
``progress`` pair when the details carry ``done`` and ``total``), who is polling each task
list and for how long, and how the latest executions ended.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ._engine import Engine
from ._snapshot import (
    ActivityTaskView,
    DomainView,
    ExecutionView,
    PollView,
    Snapshot,
    take_snapshot,
)
from ._state import Execution

__all__ = ["CLOSED_LIMIT", "DETAILS_MAX", "LIMIT", "progress", "status_view"]

Json = dict[str, Any]

LIMIT: Final = 200
DETAILS_MAX: Final = 2000
CLOSED_LIMIT: Final = 50
"""Closed executions listed, most recently closed first."""


def progress(details: str | None) -> Json | None:
    """``{"done", "total"}`` when heartbeat details are a JSON object carrying both numbers."""
    if not details or not details.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(details)
    except ValueError:
        return None
    done, total = value.get("done"), value.get("total")
    numbers = (int, float)
    if isinstance(done, numbers) and isinstance(total, numbers) and total > 0:
        return {"done": done, "total": total}
    return None


def _domain(view: DomainView) -> Json:
    return {
        "name": view.name,
        "description": view.description,
        "deprecated": view.deprecated,
        "open_executions": view.open_executions,
        "activity_types": view.activity_types,
        "workflow_types": view.workflow_types,
    }


def _execution(view: ExecutionView) -> Json:
    return {
        "domain": view.domain,
        "workflow_id": view.workflow_id,
        "run_id": view.run_id,
        "workflow_type": {"name": view.workflow_name, "version": view.workflow_version},
        "task_list": view.task_list,
        "started_at": view.started_at,
        "cancel_requested": view.cancel_requested,
        "open_activity_tasks": view.open_activity_tasks,
        "time_left": view.execution_left,
    }


def _activity_task(view: ActivityTaskView, identity: str | None = None) -> Json:
    details = view.details
    truncated = details is not None and len(details) > DETAILS_MAX
    return {
        "identity": identity,
        "progress": progress(details),
        "domain": view.domain,
        "task_list": view.task_list,
        "workflow_id": view.workflow_id,
        "run_id": view.run_id,
        "activity_id": view.activity_id,
        "activity_type": {"name": view.activity_name, "version": view.activity_version},
        "state": view.state,
        "token_hash": view.token_hash,
        "cancel_requested": view.cancel_requested,
        "heartbeats": view.heartbeats,
        "last_heartbeat_at": view.last_heartbeat_at,
        "details": details[:DETAILS_MAX] if details is not None and truncated else details,
        "details_truncated": truncated,
        "timeouts": {
            "heartbeat": view.heartbeat_timeout,
            "start_to_close": view.start_to_close_timeout,
            "schedule_to_close": view.schedule_to_close_timeout,
            "schedule_to_start": view.schedule_to_start_timeout,
        },
        # Seconds before each timeout fires, at taken_at; null when that timeout cannot fire
        # (NONE, not started yet, or already past its phase).
        "time_left": {
            "heartbeat": view.heartbeat_left,
            "start_to_close": view.start_to_close_left,
            "schedule_to_close": view.schedule_to_close_left,
            "schedule_to_start": view.schedule_to_start_left,
        },
    }


def _poll(view: PollView, now: float) -> Json:
    return {
        "kind": view.kind,
        "domain": view.domain,
        "task_list": view.task_list,
        "identity": view.identity,
        "since": view.since,
        "age": max(0.0, now - view.since),
    }


def snapshot_view(
    snapshot: Snapshot,
    identities: dict[tuple[str, int], str | None] | None = None,
    closed: list[Json] | None = None,
) -> Json:
    identities = identities or {}
    return {
        "taken_at": snapshot.taken_at,
        "domains": [_domain(view) for view in snapshot.domains],
        "open_executions": snapshot.open_executions,
        "executions": [_execution(view) for view in snapshot.executions],
        "open_activity_tasks": snapshot.open_activity_tasks,
        "activity_tasks": [
            _activity_task(view, identities.get((view.run_id, view.started_event_id)))
            for view in snapshot.activity_tasks
        ],
        "polls": [_poll(view, snapshot.taken_at) for view in snapshot.polls],
        "closed_executions": closed or [],
    }


def status_view(engine: Engine) -> Json:
    """The JSON view of ``engine``'s state; call it from the server's event loop."""
    snapshot = take_snapshot(engine, LIMIT)
    return snapshot_view(snapshot, _identities(engine, snapshot), _closed(engine))


def _identities(engine: Engine, snapshot: Snapshot) -> dict[tuple[str, int], str | None]:
    """The identity each started task's ``ActivityTaskStarted`` event recorded."""
    found: dict[tuple[str, int], str | None] = {}
    for view in snapshot.activity_tasks:
        if not view.started_event_id:
            continue
        domain = engine.registry.domains.get(view.domain)
        execution = None if domain is None else domain.runs.get((view.workflow_id, view.run_id))
        if execution is None or view.started_event_id > len(execution.events):
            continue
        event = execution.events[view.started_event_id - 1]
        attributes = event.get("activityTaskStartedEventAttributes", {})
        found[(view.run_id, view.started_event_id)] = attributes.get("identity")
    return found


def _closed(engine: Engine) -> list[Json]:
    """The last :data:`CLOSED_LIMIT` closed executions, most recently closed first."""
    closed = [
        execution
        for domain in engine.registry.domains.values()
        for execution in domain.runs.values()
        if not execution.is_open
    ]
    closed.sort(key=lambda execution: execution.close_timestamp or 0.0, reverse=True)
    return [_closed_execution(execution) for execution in closed[:CLOSED_LIMIT]]


def _closed_execution(execution: Execution) -> Json:
    status = execution.close_status or "CLOSED"
    ending = status.lower().replace("_", " ")
    last = execution.events[-1] if execution.events else {}
    attributes: Json = next(
        (value for key, value in last.items() if key.endswith("EventAttributes")), {}
    )
    if status == "FAILED" and attributes.get("reason"):
        ending += f": {attributes['reason']}"
    elif status == "TIMED_OUT" and attributes.get("timeoutType"):
        ending += f" ({attributes['timeoutType']})"
    elif status == "TERMINATED" and attributes.get("reason"):
        ending += f": {attributes['reason']}"
    return {
        "domain": execution.domain.name,
        "workflow_id": execution.workflow_id,
        "run_id": execution.run_id,
        "workflow_type": dict(execution.workflow_type),
        "close_status": status,
        "ending": ending,
        "started_at": execution.start_timestamp,
        "closed_at": execution.close_timestamp,
    }
