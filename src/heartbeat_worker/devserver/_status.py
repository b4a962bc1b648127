"""The status page's data: a snapshot as JSON-ready values (``GET /status.json``).

Bounded so that a page refreshing every second stays cheap next to the API: at most
:data:`LIMIT` executions and activity tasks are described (the counts stay exact), and
heartbeat details are cut to :data:`DETAILS_MAX` characters.
"""

from __future__ import annotations

from typing import Any, Final

from ._engine import Engine
from ._snapshot import ActivityTaskView, DomainView, ExecutionView, Snapshot, take_snapshot

__all__ = ["DETAILS_MAX", "LIMIT", "status_view"]

Json = dict[str, Any]

LIMIT: Final = 200
DETAILS_MAX: Final = 2000


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


def _activity_task(view: ActivityTaskView) -> Json:
    details = view.details
    truncated = details is not None and len(details) > DETAILS_MAX
    return {
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


def snapshot_view(snapshot: Snapshot) -> Json:
    return {
        "taken_at": snapshot.taken_at,
        "domains": [_domain(view) for view in snapshot.domains],
        "open_executions": snapshot.open_executions,
        "executions": [_execution(view) for view in snapshot.executions],
        "open_activity_tasks": snapshot.open_activity_tasks,
        "activity_tasks": [_activity_task(view) for view in snapshot.activity_tasks],
    }


def status_view(engine: Engine) -> Json:
    """The JSON view of ``engine``'s state; call it from the server's event loop."""
    return snapshot_view(take_snapshot(engine, LIMIT))
