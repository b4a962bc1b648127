"""A failed look-up of the timeouts in force falls back as documented (``_timeouts.py``):
history to the registered defaults, registered defaults to the decorator's, with a warning,
never leaving a task without a heartbeater. SWF is a fake here: the dev server cannot be
made to refuse these calls for good (its faults are the transient kind, which are retried)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from heartbeat_worker import ActivityType
from heartbeat_worker._timeouts import TaskTimeouts, TimeoutResolver

pytestmark = pytest.mark.anyio

DECLARED = ActivityType("resize", heartbeat_timeout=60.0, start_to_close_timeout=300.0)
TASK: dict[str, Any] = {
    "startedEventId": 6,
    "workflowExecution": {"workflowId": "w", "runId": "r"},
}


def refused(operation: str) -> ClientError:
    """A refusal that retrying cannot cure."""
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, operation)


class FakeSWF:
    def __init__(self, *, describe_fails: bool = False, history_fails: bool = False) -> None:
        self.describe_fails = describe_fails
        self.history_fails = history_fails
        self.calls: list[str] = []

    async def describe_activity_type(self, **_: Any) -> dict[str, Any]:
        self.calls.append("DescribeActivityType")
        if self.describe_fails:
            raise refused("DescribeActivityType")
        return {
            "configuration": {
                "defaultTaskHeartbeatTimeout": "45",
                "defaultTaskStartToCloseTimeout": "200",
            }
        }

    async def get_workflow_execution_history(self, **_: Any) -> dict[str, Any]:
        self.calls.append("GetWorkflowExecutionHistory")
        if self.history_fails:
            raise refused("GetWorkflowExecutionHistory")
        return {"events": []}


async def test_a_refused_registered_lookup_falls_back_to_the_decorator_once() -> None:
    swf = FakeSWF(describe_fails=True)
    resolver = TimeoutResolver(swf, "d", "registered")  # type: ignore[arg-type]
    with capture_logs() as logged:
        first = await resolver.resolve(TASK, DECLARED)
        second = await resolver.resolve(TASK, DECLARED)
    assert first == second == TaskTimeouts(heartbeat=60.0, start_to_close=300.0)
    # Not a look-up per task: the refusal is remembered (it is not transient).
    assert swf.calls == ["DescribeActivityType"]
    warnings = [e for e in logged if e["log_level"] == "warning"]
    assert [w["event"] for w in warnings] == [
        "cannot read the registered timeouts; using the decorator's"
    ]


async def test_a_refused_history_lookup_falls_back_to_the_registered_defaults() -> None:
    swf = FakeSWF(history_fails=True)
    resolver = TimeoutResolver(swf, "d", "history")  # type: ignore[arg-type]
    with capture_logs() as logged:
        found = await resolver.resolve(TASK, DECLARED)
    assert found == TaskTimeouts(heartbeat=45.0, start_to_close=200.0)
    assert swf.calls == ["GetWorkflowExecutionHistory", "DescribeActivityType"]
    assert "cannot read the task's timeouts from history; using the registered ones" in [
        e["event"] for e in logged
    ]
