"""The built-in one-activity decider against the dev server, with a worker in the test."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from heartbeat_worker import Worker
from heartbeat_worker._checkpoint import CHECKPOINT_KEY, INPUT_KEY
from heartbeat_worker._decider import (
    WORKFLOW_TYPE,
    ActivityRequest,
    OneActivityWorkflow,
    RunOutcome,
    RunStatus,
    run_activity,
)

from . import activities
from .conftest import DOMAIN, TASK_LIST

pytestmark = pytest.mark.anyio

DEADLINE = 20.0


def request(name: str, payload: Any = None, **timeouts: float) -> ActivityRequest:
    return ActivityRequest(
        name,
        TASK_LIST,
        input=None if payload is None else json.dumps(payload),
        **timeouts,
    )


async def run(client: Any, name: str, payload: Any = None, **options: Any) -> RunOutcome:
    timeouts = {key: options.pop(key) for key in list(options) if key.endswith("_timeout")}
    with anyio.fail_after(DEADLINE):
        return await run_activity(client, DOMAIN, request(name, payload, **timeouts), **options)


def types(outcome: RunOutcome) -> list[str]:
    return [event.event_type for event in outcome.events]


async def test_completed_run_returns_the_result_and_the_history(
    swf_client: Any, worker: Worker
) -> None:
    outcome = await run(swf_client, "double", 21)

    assert outcome.status is RunStatus.COMPLETED
    assert outcome.completed
    assert json.loads(outcome.result or "") == 42
    assert outcome.attempts == 1
    assert types(outcome)[0] == "WorkflowExecutionStarted"
    assert types(outcome)[-1] == "WorkflowExecutionCompleted"
    assert "ActivityTaskCompleted" in types(outcome)
    stamps = [event.timestamp for event in outcome.events]
    assert stamps == sorted(stamps)
    assert outcome.duration is not None
    assert outcome.duration >= 0
    started = outcome.first("WorkflowExecutionStarted")
    assert started is not None
    assert started.attributes["workflowType"] == dict(WORKFLOW_TYPE)
    # Decisions went to a task list of the execution's own.
    assert started.attributes["taskList"]["name"].startswith("heartbeat-worker-decider-")


async def test_failed_run_reports_reason_and_details(swf_client: Any, worker: Worker) -> None:
    outcome = await run(swf_client, "broken", "no disk left")

    assert outcome.status is RunStatus.FAILED
    assert outcome.reason == "RuntimeError: no disk left"
    assert "Traceback" in (outcome.details or "")
    assert outcome.attempts == 1
    closed = outcome.last("WorkflowExecutionFailed")
    assert closed is not None
    assert closed.attributes["reason"] == "RuntimeError: no disk left"


async def test_failure_is_retried_when_retries_are_left(swf_client: Any, worker: Worker) -> None:
    outcome = await run(swf_client, "flaky", "first attempt fails", retries=2)

    assert outcome.status is RunStatus.COMPLETED
    assert json.loads(outcome.result or "") == "attempt 2 succeeded"
    assert outcome.attempts == 2
    assert types(outcome).count("ActivityTaskFailed") == 1
    # A traceback is no checkpoint: the second attempt starts without one.
    assert activities.attempts_seen[outcome.workflow_id] == [None, None]


async def test_retries_run_out(swf_client: Any, worker: Worker) -> None:
    outcome = await run(swf_client, "broken", "always", retries=1)

    assert outcome.status is RunStatus.FAILED
    assert outcome.attempts == 2
    assert types(outcome).count("ActivityTaskScheduled") == 2


async def test_cancel_after_cancels_the_activity(swf_client: Any, worker: Worker) -> None:
    outcome = await run(swf_client, "patient", heartbeat_timeout=1.5, cancel_after=1.0, retries=3)

    assert outcome.status is RunStatus.CANCELED
    assert json.loads(outcome.details or "") == {"phase": "rolled back"}
    assert outcome.attempts == 1
    assert outcome.cancel_latency is not None
    assert 0 <= outcome.cancel_latency < 5
    event_types = types(outcome)
    assert event_types.index("WorkflowExecutionSignaled") < event_types.index(
        "ActivityTaskCancelRequested"
    )
    assert event_types[-1] == "WorkflowExecutionCanceled"


async def test_request_cancel_from_outside_the_decider(swf_client: Any, worker: Worker) -> None:
    workflow = OneActivityWorkflow(swf_client, DOMAIN, request("patient", heartbeat_timeout=1.5))
    execution = await workflow.start()
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            outcomes: list[RunOutcome] = []

            async def decide() -> None:
                outcomes.append(await workflow.run())

            group.start_soon(decide)
            await _wait_for_event(swf_client, execution, "ActivityTaskStarted")
            # As the console or the CLI would: a cancel request for the whole workflow.
            await swf_client.request_cancel_workflow_execution(domain=DOMAIN, **execution)
    assert outcomes[0].status is RunStatus.CANCELED
    assert "WorkflowExecutionCancelRequested" in types(outcomes[0])


async def test_timed_out_attempt_is_retried_with_its_checkpoint(
    swf_client: Any, worker: Worker
) -> None:
    job = {"steps": 5, "stall_at": 2}
    outcome = await run(
        swf_client,
        "stalling",
        job,
        heartbeat_timeout=1.5,
        start_to_close_timeout=2.5,
        retries=1,
    )

    assert outcome.status is RunStatus.COMPLETED, outcome
    assert outcome.attempts == 2
    timed_out = outcome.first("ActivityTaskTimedOut")
    assert timed_out is not None
    assert timed_out.attributes["timeoutType"] == "START_TO_CLOSE"
    assert json.loads(timed_out.attributes["details"]) == {"done": 2}
    # The second attempt was scheduled with the checkpoint wrapped around the input...
    second = [e for e in outcome.events if e.event_type == "ActivityTaskScheduled"][1]
    assert json.loads(second.attributes["input"]) == {CHECKPOINT_KEY: {"done": 2}, INPUT_KEY: job}
    # ...and the activity received it through info().checkpoint, with its input unchanged.
    assert activities.attempts_seen[outcome.workflow_id] == [None, {"done": 2}]
    assert json.loads(outcome.result or "") == {"resumed_from": {"done": 2}, "done": 5}


async def test_timeout_without_retries_reports_the_last_details(
    swf_client: Any, worker: Worker
) -> None:
    outcome = await run(
        swf_client,
        "stalling",
        {"steps": 5, "stall_at": 3},
        heartbeat_timeout=1.5,
        start_to_close_timeout=2.5,
    )

    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.timeout_type == "START_TO_CLOSE"
    assert json.loads(outcome.details or "") == {"done": 3}
    assert outcome.attempts == 1
    assert types(outcome)[-1] == "WorkflowExecutionFailed"


async def test_unknown_activity_type_fails_the_run(swf_client: Any, worker: Worker) -> None:
    outcome = await run(swf_client, "no-such-activity")

    assert outcome.status is RunStatus.FAILED
    assert outcome.reason == "cannot schedule the activity: ACTIVITY_TYPE_DOES_NOT_EXIST"
    assert outcome.attempts == 1


async def test_small_history_pages_are_all_read(swf_client: Any, worker: Worker) -> None:
    """Three events a page: every decision task and the final history span several pages."""
    workflow = OneActivityWorkflow(
        swf_client, DOMAIN, request("flaky", "once"), retries=1, page_size=3
    )
    with anyio.fail_after(DEADLINE):
        await workflow.start()
        outcome = await workflow.run()

    assert outcome.status is RunStatus.COMPLETED
    assert outcome.attempts == 2
    assert [event.event_id for event in outcome.events] == list(range(1, len(outcome.events) + 1))


async def test_workflow_timeout_ends_the_run(swf_client: Any, worker: Worker) -> None:
    with anyio.fail_after(DEADLINE):
        outcome = await run_activity(swf_client, DOMAIN, request("patient"), execution_timeout=1.0)

    assert outcome.status is RunStatus.TIMED_OUT
    assert outcome.timeout_type == "EXECUTION_START_TO_CLOSE"
    assert types(outcome)[-1] == "WorkflowExecutionTimedOut"


async def test_terminated_run(swf_client: Any, worker: Worker) -> None:
    workflow = OneActivityWorkflow(swf_client, DOMAIN, request("patient"))
    execution = await workflow.start()
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as group:
            outcomes: list[RunOutcome] = []

            async def decide() -> None:
                outcomes.append(await workflow.run())

            group.start_soon(decide)
            await _wait_for_event(swf_client, execution, "ActivityTaskStarted")
            await swf_client.terminate_workflow_execution(
                domain=DOMAIN, reason="operator said so", **execution
            )
    assert outcomes[0].status is RunStatus.TERMINATED
    assert outcomes[0].reason == "operator said so"


def test_request_rejects_negative_retries() -> None:
    with pytest.raises(ValueError, match="retries"):
        OneActivityWorkflow(object(), DOMAIN, request("double"), retries=-1)  # type: ignore[arg-type]


async def _wait_for_event(client: Any, execution: dict[str, str], event_type: str) -> None:
    """Until ``execution`` records ``event_type``; the caller's deadline bounds it."""
    while True:
        page = await client.get_workflow_execution_history(
            domain=DOMAIN, execution=execution, reverseOrder=True
        )
        if any(event["eventType"] == event_type for event in page["events"]):
            return
        await anyio.sleep(0.02)


class SlowFirstAnswer:
    """A client whose first decision answer comes after the decision task timed out."""

    def __init__(self, client: Any, delay: float) -> None:
        self._client = client
        self._delay = delay
        self.late_answers = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def respond_decision_task_completed(self, **arguments: Any) -> Any:
        if not self.late_answers:
            self.late_answers += 1
            await anyio.sleep(self._delay)
        return await self._client.respond_decision_task_completed(**arguments)


async def test_decisions_lost_to_a_decision_timeout_are_made_again(
    swf_client: Any, worker: Worker
) -> None:
    client = SlowFirstAnswer(swf_client, delay=1.0)
    workflow = OneActivityWorkflow(
        client,  # type: ignore[arg-type]
        DOMAIN,
        request("double", 4),
        decision_timeout=0.5,
    )
    with anyio.fail_after(DEADLINE):
        await workflow.start()
        outcome = await workflow.run()

    assert client.late_answers == 1
    assert outcome.status is RunStatus.COMPLETED
    assert json.loads(outcome.result or "") == 8
    assert types(outcome).count("DecisionTaskTimedOut") == 1
    assert types(outcome).count("ActivityTaskScheduled") == 1
