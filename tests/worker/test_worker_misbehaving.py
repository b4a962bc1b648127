"""Activities that misbehave, against the dev server over HTTP: whatever an activity raises,
leaves set or returns, its task gets exactly one answer that says what happened, and the
slot that ran it polls again."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from heartbeat_worker import Worker
from swfkit import SWFKit, attributes

from . import activities, fault_activities
from .activities import event
from .logs import log_lines
from .test_worker_devserver import closing_event, request_cancel, schedule, wait_threading_event

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]


# -- item 1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason_start"),
    [
        ("stray_cancel", "CancelledError"),
        ("argparse_exit", "SystemExit: 2"),
        ("blocking_exit", "SystemExit: 3"),
        ("keyboard_interrupt", "KeyboardInterrupt"),
    ],
)
async def test_a_base_exception_from_the_activity_fails_its_task_and_the_slot_polls_again(
    swfkit: SWFKit, make_worker: MakeWorker, json_logs: io.StringIO, name: str, reason_start: str
) -> None:
    misbehaving = getattr(fault_activities, name)
    # One slot: if it died, the second task would never run.
    async with make_worker([misbehaving, activities.add], max_concurrency=1) as worker:
        first = await schedule(swfkit, name, activity_id="bad")
        closed = await closing_event(swfkit, first)
        second = await schedule(swfkit, "add", {"a": 1, "b": 2}, activity_id="after")
        after = await closing_event(swfkit, second)
    assert closed["eventType"] == "ActivityTaskFailed"
    assert attributes(closed)["reason"].startswith(reason_start), attributes(closed)
    assert after["eventType"] == "ActivityTaskCompleted"
    assert worker.outcomes == {"failed": 1, "completed": 1}
    assert worker.tasks_left_at_deadline == 0
    events = [line["event"] for line in log_lines(json_logs)]
    assert not [e for e in events if "hard shutdown deadline" in e]


# -- item 3 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["leave_context", "leave_context_blocking"])
async def test_context_variables_set_by_one_activity_are_not_seen_by_the_next(
    swfkit: SWFKit, make_worker: MakeWorker, json_logs: io.StringIO, name: str
) -> None:
    chosen = getattr(fault_activities, name)
    async with make_worker([chosen], max_concurrency=1):
        first = await schedule(swfkit, name, "first", activity_id="first")
        first_closed = await closing_event(swfkit, first)
        second = await schedule(swfkit, name, "second", activity_id="second")
        second_closed = await closing_event(swfkit, second)
    assert json.loads(attributes(first_closed)["result"]) == {"var": "unset", "bound": {}}
    assert json.loads(attributes(second_closed)["result"]) == {"var": "unset", "bound": {}}
    # The worker's own lines about the second task carry none of the first one's fields.
    lines = [line for line in log_lines(json_logs) if line.get("activity_id") == "second"]
    assert lines
    assert not [line for line in lines if "leaked" in line]


# -- item 5 ----------------------------------------------------------------------------------


async def test_activity_cancelled_raised_by_a_child_task_answers_canceled_with_its_details(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    event("group_cancelled.started").clear()
    async with make_worker([fault_activities.group_cancelled], resolve_timeouts="history"):
        execution = await schedule(swfkit, "group_cancelled", heartbeat_timeout="2")
        await wait_threading_event("group_cancelled.started")
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled", attributes(closed)
    assert json.loads(attributes(closed)["details"]) == {"child": "rolled back"}


async def test_an_error_in_a_child_task_is_named_in_the_reason(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([fault_activities.group_key_error]):
        execution = await schedule(swfkit, "group_key_error")
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskFailed"
    assert attributes(closed)["reason"] == "KeyError: 'missing-key'"
    details = attributes(closed)["details"]
    assert "ExceptionGroup" in details
    assert "in child" in details


async def test_failure_details_keep_the_chained_cause(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([fault_activities.chained]):
        execution = await schedule(swfkit, "chained")
        closed = await closing_event(swfkit, execution)
    assert attributes(closed)["reason"] == "RuntimeError: could not load the row"
    details = attributes(closed)["details"]
    assert "KeyError: 'the-cause-key'" in details
    assert "in _lookup" in details
    assert "The above exception was the direct cause" in details


# -- item 7 ----------------------------------------------------------------------------------


async def test_oversized_cancel_details_reach_swf_as_valid_json_saying_what_was_dropped(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    event("huge_cancel_details.started").clear()
    async with make_worker([fault_activities.huge_cancel_details], resolve_timeouts="history"):
        execution = await schedule(swfkit, "huge_cancel_details", 50_000, heartbeat_timeout="2")
        await wait_threading_event("huge_cancel_details.started")
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled"
    details = attributes(closed)["details"]
    assert len(details) <= 32768
    marker = json.loads(details)
    assert marker["truncated"] is True
    assert marker["length"] > 32768
    assert marker["dropped"] == marker["length"] - len(marker["start"])


# -- item 10 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "payload", "result"),
    [
        ("wrapped_add", {"a": 2, "b": 3}, 5),
        ("partial_add", {"a": 2}, 42),
    ],
)
async def test_a_plain_function_returning_an_awaitable_runs_as_a_coroutine(
    swfkit: SWFKit, make_worker: MakeWorker, name: str, payload: Any, result: int
) -> None:
    chosen = getattr(fault_activities, name)
    async with make_worker([chosen]):
        execution = await schedule(swfkit, name, payload)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted", attributes(closed)
    assert json.loads(attributes(closed)["result"]) == result
