"""A table of bad inputs and bad activities, all through ONE worker, which keeps serving.

Single cases are tested on their own in ``tests/worker/test_worker_devserver.py``
(``test_failures_are_answered_with_a_clear_reason``, ``test_exception_details_keep_the_
traceback``, ``test_malformed_input_and_unknown_type_are_failed``, ``test_activity_blocking_
the_event_loop_is_named_in_a_warning``); this test runs them all, and a few more, at once
through a single worker, and checks that it still serves a normal task afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from heartbeat_worker import Worker
from worker import activities as worker_activities

from . import activities
from .decide import DOMAIN, Decider, attributes, report
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio

TASK_LIST = "bad-inputs"


@dataclass(frozen=True)
class Case:
    title: str
    activity: str
    input: str | None
    event: str
    pattern: str
    """Matched against the reason of a failure, the result of a completion."""
    version: str = "1"
    heartbeat_timeout: str | None = None


CASES = [
    Case("malformed JSON input", "add", "{not json", "Failed", r"^bad input: input is not valid"),
    Case(
        "input not matching the signature",
        "add",
        '{"a": 1, "c": 2}',
        "Failed",
        r"^bad input: input does not fit the activity's signature",
    ),
    Case(
        "unknown activity type",
        "nobody-runs-this",
        None,
        "Failed",
        r"^unknown activity type 'nobody-runs-this' version '1': this worker does not",
    ),
    Case(
        "unknown activity version",
        "add",
        '{"a": 1, "b": 2}',
        "Failed",
        r"^unknown activity type 'add' version '2'",
        version="2",
    ),
    Case(
        "unserializable result",
        "unserializable",
        None,
        "Failed",
        r"^result is not JSON-serializable: ",
    ),
    Case(
        "result over 32768 characters",
        "huge_result",
        "40000",
        "Failed",
        r"^result too large: result is 40002 characters long; .*32768",
    ),
    Case(
        "heartbeat details over 2048, caught by the activity",
        "oversize_progress",
        "true",
        "Completed",
        r"2048",
    ),
    Case(
        "heartbeat details over 2048, not caught",
        "oversize_progress",
        "false",
        "Failed",
        r"^SWFLimitError: .*2048",
    ),
    Case(
        "exception with a 1 MB message",
        "shouting",
        "1000000",
        "Failed",
        r"^RuntimeError: m{200}",
    ),
    Case(
        "blocks the event loop for 1.2 s (heartbeat interval 0.5 s)",
        "loop_blocker",
        "1.2",
        "Completed",
        r'^"done"$',
        heartbeat_timeout="1.5",
    ),
]


async def test_bad_inputs_are_answered_with_a_clear_reason_and_the_worker_keeps_serving(
    decider: Decider, client: Any, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    for name, version in (("nobody-runs-this", "1"), ("add", "2")):
        await client.register_activity_type(
            domain=DOMAIN,
            name=name,
            version=version,
            defaultTaskHeartbeatTimeout="60",
            defaultTaskScheduleToStartTimeout="NONE",
            defaultTaskScheduleToCloseTimeout="NONE",
            defaultTaskStartToCloseTimeout="300",
            defaultTaskList={"name": TASK_LIST},
        )
    served = [
        worker_activities.add,
        worker_activities.unserializable,
        worker_activities.huge_result,
        worker_activities.shouting,
        worker_activities.loop_blocker,
        activities.oversize_progress,
    ]
    worker = make_worker(served, TASK_LIST, max_concurrency=16, resolve_timeouts="history")
    async with worker:
        executions = [
            await decider.schedule(
                case.activity,
                [case.input],
                task_list=TASK_LIST,
                version=case.version,
                heartbeat_timeout=case.heartbeat_timeout,
                raw_inputs=True,
            )
            for case in CASES
        ]
        closed = [(await decider.wait_closed(e, 1)).closing("a0") for e in executions]
        # After all of that, a plain task is still served.
        normal = await decider.schedule(
            "add", ['{"a": 2, "b": 3}'], task_list=TASK_LIST, raw_inputs=True
        )
        after = (await decider.wait_closed(normal, 1)).closing("a0")
    assert after["eventType"] == "ActivityTaskCompleted"
    assert attributes(after)["result"] == "5"

    rows = {}
    for case, event in zip(CASES, closed, strict=True):
        assert event["eventType"] == f"ActivityTask{case.event}", (case.title, event)
        found = attributes(event)
        text = found["reason"] if case.event == "Failed" else found["result"]
        assert re.search(case.pattern, text), (case.title, text[:300])
        if case.event == "Failed":
            assert len(found["reason"]) <= 256
            assert len(found.get("details", "")) <= 32768
        rows[case.title] = f"{case.event.lower()}: {text[:90]}"
    shouted = attributes(closed[CASES.index(next(c for c in CASES if c.activity == "shouting"))])
    assert "Traceback (most recent call last)" in shouted["details"]
    assert "in shouting" in shouted["details"]
    caught = json.loads(attributes(closed[6])["result"])["caught"]
    assert "2048" in caught
    stalls = logs.events("the event loop is blocked")
    assert [r["activity"] for r in stalls] == ["loop_blocker:1"]
    assert worker.outcomes == {"failed": 8, "completed": 3}
    rows["event-loop warning names"] = stalls[0]["activity"]
    rows["a normal task afterwards"] = f"completed: {attributes(after)['result']}"
    report("bad inputs through one worker", rows)
