"""The records of the state file, both ways: what each object is written as, and the engine
rebuilt from them, with every timer armed again.

Timers come back at their wall-clock deadlines: one that fell due while the server was down
is armed in the past and fires as soon as the event loop runs, and several fire in the order
of their deadlines, as they would have had the server kept running. SWF's clock does not
stop, so neither does a heartbeat timeout: a task whose last heartbeat is older than its
timeout times out at start-up.

Everything is read and checked before anything is armed: a file that cannot be read whole is
refused, never half loaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import StateFileError
from ._state import (
    ActivityTask,
    ActivityTypeRecord,
    DecisionTask,
    Domain,
    Execution,
    Timer,
    TypeRecord,
    WorkflowTypeRecord,
)

if TYPE_CHECKING:
    from ._engine import Engine
    from ._store import Store

__all__ = ["domain_data", "execution_data", "restore", "task_data"]

Json = dict[str, Any]
Epoch = Callable[[float | None], float | None]


# Writing


def _type_data(record: TypeRecord) -> Json:
    return {
        "name": record.name,
        "version": record.version,
        "description": record.description,
        "configuration": record.configuration,
        "creation_date": record.creation_date,
        "deprecation_date": record.deprecation_date,
    }


def domain_data(domain: Domain) -> Json:
    return {
        "name": domain.name,
        "description": domain.description,
        "retention_days": domain.retention_days,
        "deprecated": domain.deprecated,
        "tags": domain.tags,
        "activity_types": [_type_data(record) for record in domain.activity_types.values()],
        "workflow_types": [_type_data(record) for record in domain.workflow_types.values()],
    }


def execution_data(execution: Execution, epoch: Epoch) -> Json:
    started = execution.started_decision
    scheduled = execution.scheduled_decision
    return {
        "domain": execution.domain.name,
        "workflow_id": execution.workflow_id,
        "run_id": execution.run_id,
        "workflow_type": execution.workflow_type,
        "task_list": execution.task_list,
        "task_priority": execution.task_priority,
        "execution_start_to_close": execution.execution_start_to_close,
        "task_start_to_close": execution.task_start_to_close,
        "child_policy": execution.child_policy,
        "tag_list": execution.tag_list,
        "start_timestamp": execution.start_timestamp,
        "close_timestamp": execution.close_timestamp,
        "close_status": execution.close_status,
        "cancel_requested": execution.cancel_requested,
        "decision_needed": execution.decision_needed,
        "previous_started_event_id": execution.previous_started_event_id,
        "latest_activity_task_timestamp": execution.latest_activity_task_timestamp,
        "latest_execution_context": execution.latest_execution_context,
        "deadline": epoch(execution.handle.when()) if execution.handle is not None else None,
        "timers": [
            [timer.timer_id, timer.started_event_id, epoch(timer.handle.when())]
            for timer in execution.timers.values()
        ],
        "scheduled_decision": scheduled.scheduled_event_id if scheduled is not None else None,
        "started_decision": None
        if started is None
        else {
            "scheduled_event_id": started.scheduled_event_id,
            "started_event_id": started.started_event_id,
            "token": started.token,
            "deadline": epoch(started.handle.when()) if started.handle is not None else None,
        },
    }


def task_data(task: ActivityTask, epoch: Epoch) -> Json:
    started = bool(task.started_event_id)
    return {
        "activity_id": task.activity_id,
        "activity_type": task.activity_type,
        "task_list": task.task_list,
        "input": task.input,
        "scheduled_event_id": task.scheduled_event_id,
        "schedule_to_start": task.schedule_to_start,
        "schedule_to_close": task.schedule_to_close,
        "start_to_close": task.start_to_close,
        "heartbeat": task.heartbeat,
        "started_event_id": task.started_event_id,
        "token": task.token,
        "details": task.details,
        "cancel_requested_event_id": task.cancel_requested_event_id,
        "heartbeats": task.heartbeats,
        "last_heartbeat_at": task.last_heartbeat_at,
        "heartbeat_deadline": epoch(task.heartbeat_deadline)
        if started and task.heartbeat is not None
        else None,
        "deadlines": {
            kind: epoch(handle.when())
            for kind, handle in task.handles.items()
            if kind != "HEARTBEAT"
        },
    }


# Reading


def _type(cls: type[TypeRecord], data: Json) -> Any:
    return cls(
        data["name"],
        data["version"],
        data["description"],
        data["configuration"],
        data["creation_date"],
        data["deprecation_date"],
    )


def _domain(data: Json) -> Domain:
    domain = Domain(
        data["name"],
        data["description"],
        data["retention_days"],
        deprecated=data["deprecated"],
        tags=data["tags"],
    )
    for record_data in data["activity_types"]:
        record = _type(ActivityTypeRecord, record_data)
        domain.activity_types[(record.name, record.version)] = record
    for record_data in data["workflow_types"]:
        record = _type(WorkflowTypeRecord, record_data)
        domain.workflow_types[(record.name, record.version)] = record
    return domain


def _execution(domain: Domain, data: Json, events: list[Json], engine: Engine) -> Execution:
    execution = Execution(
        domain=domain,
        workflow_id=data["workflow_id"],
        run_id=data["run_id"],
        workflow_type=data["workflow_type"],
        task_list=data["task_list"],
        task_priority=data["task_priority"],
        execution_start_to_close=data["execution_start_to_close"],
        task_start_to_close=data["task_start_to_close"],
        child_policy=data["child_policy"],
        tag_list=data["tag_list"],
        start_timestamp=data["start_timestamp"],
        close_timestamp=data["close_timestamp"],
        close_status=data["close_status"],
        cancel_requested=data["cancel_requested"],
        events=events,
        decision_needed=data["decision_needed"],
        previous_started_event_id=data["previous_started_event_id"],
        latest_activity_task_timestamp=data["latest_activity_task_timestamp"],
        latest_execution_context=data["latest_execution_context"],
        journal=engine.journal,
    )
    if [event["eventId"] for event in events] != list(range(1, len(events) + 1)):
        raise ValueError(f"the history of {execution.workflow_id} has gaps")
    return execution


def _task(execution: Execution, data: Json) -> ActivityTask:
    return ActivityTask(
        execution=execution,
        activity_id=data["activity_id"],
        activity_type=data["activity_type"],
        task_list=data["task_list"],
        input=data["input"],
        scheduled_event_id=data["scheduled_event_id"],
        schedule_to_start=data["schedule_to_start"],
        schedule_to_close=data["schedule_to_close"],
        start_to_close=data["start_to_close"],
        heartbeat=data["heartbeat"],
        started_event_id=data["started_event_id"],
        token=data["token"],
        details=data["details"],
        cancel_requested_event_id=data["cancel_requested_event_id"],
        heartbeats=data["heartbeats"],
        last_heartbeat_at=data["last_heartbeat_at"],
    )


def restore(engine: Engine, store: Store) -> None:
    """Rebuild ``engine``'s state from ``store``, then arm every timer it had."""
    try:
        arming = _read(engine, store)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StateFileError(
            f"state file {store.path}: is damaged ({type(exc).__name__}: {exc}); delete it "
            "or restore a copy"
        ) from None
    for arm in arming:
        arm()


def _read(engine: Engine, store: Store) -> list[Callable[[], None]]:
    """Read every record; returns what arms the timers and fills the task lists, in order."""
    registry = engine.registry
    for _, data in store.rows("SELECT name, data FROM domains"):
        domain = _domain(json.loads(data))
        registry.domains[domain.name] = domain
    histories: dict[int, list[Json]] = {}
    for row_id, data in store.rows("SELECT execution, data FROM events ORDER BY 1, event_id"):
        histories.setdefault(row_id, []).append(json.loads(data))
    by_id: dict[int, tuple[Execution, Json]] = {}
    for row_id, text in store.rows("SELECT id, data FROM executions ORDER BY id"):
        data = json.loads(text)
        domain = registry.domains[data["domain"]]
        execution = _execution(domain, data, histories.get(row_id, []), engine)
        by_id[row_id] = (execution, data)
        store.ids[execution] = row_id
        store.written[execution] = len(execution.events)
    # Runs in start order, as they were listed before the restart.
    for execution, _ in sorted(by_id.values(), key=lambda item: item[0].start_timestamp):
        execution.domain.runs[(execution.workflow_id, execution.run_id)] = execution
        if execution.is_open:
            execution.domain.open_executions[execution.workflow_id] = execution
    tasks: list[tuple[ActivityTask, Json]] = []
    for row_id, text in store.rows("SELECT execution, data FROM activities"):
        data = json.loads(text)
        execution = by_id[row_id][0]
        task = _task(execution, data)
        execution.activities[task.activity_id] = task
        tasks.append((task, data))
    return _arming(engine, by_id.values(), tasks)


def _arming(
    engine: Engine, executions: Any, tasks: list[tuple[ActivityTask, Json]]
) -> list[Callable[[], None]]:
    now_epoch, now_loop = time.time(), engine.loop.time()

    def at(epoch: float) -> float:
        return now_loop + (epoch - now_epoch)

    arming: list[Callable[[], None]] = []
    queued: list[tuple[float, Callable[[], None]]] = []
    for execution, data in executions:
        if not execution.is_open:
            continue
        if data["deadline"] is not None:
            execution.handle = engine.at(
                at(data["deadline"]), engine.executions.timed_out, execution
            )
        for timer_id, started_id, deadline in data["timers"]:
            handle = engine.at(at(deadline), engine.timers.fired, execution, timer_id, started_id)
            execution.timers[timer_id] = Timer(timer_id, started_id, handle)
        started = data["started_decision"]
        if started is not None:
            decision = DecisionTask(
                execution,
                started["scheduled_event_id"],
                started["started_event_id"],
                started["token"],
            )
            engine.decision_tokens[started["token"]] = decision
            execution.started_decision = decision
            if started["deadline"] is not None:
                decision.handle = engine.at(
                    at(started["deadline"]), engine.decisions.timed_out, decision
                )
        if data["scheduled_decision"] is not None:
            scheduled = DecisionTask(execution, data["scheduled_decision"])
            execution.scheduled_decision = scheduled
            when = execution.events[scheduled.scheduled_event_id - 1]["eventTimestamp"]
            decisions = engine.decision_queue(execution.domain.name, execution.task_list)
            queued.append((when, _putter(decisions, scheduled)))
    activities = engine.activities
    for task, data in tasks:
        for kind, deadline in data["deadlines"].items():
            task.handles[kind] = engine.at(at(deadline), activities.timed_out, task, kind)
        if task.started_event_id:
            assert task.token is not None
            engine.activity_tokens[task.token] = task
            if data["heartbeat_deadline"] is not None:
                task.heartbeat_deadline = at(data["heartbeat_deadline"])
                task.handles["HEARTBEAT"] = engine.at(
                    task.heartbeat_deadline, activities.heartbeat_due, task
                )
        else:
            execution = task.execution
            when = execution.events[task.scheduled_event_id - 1]["eventTimestamp"]
            queue = engine.activity_queue(execution.domain.name, task.task_list)
            queued.append((when, _putter(queue, task)))
    queued.sort(key=lambda item: item[0])
    arming.extend(put for _, put in queued)
    return arming


def _putter(queue: Any, item: Any) -> Callable[[], None]:
    return lambda: queue.put(item)
