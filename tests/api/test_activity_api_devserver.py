"""The activity API against the dev server, over HTTP: stall detection, heartbeats from a
thread pool, async completion from another process, and typed payloads and non-retryable
failures through ``heartbeat-worker execute`` in a subprocess."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import structlog.testing
from aiobotocore.session import get_session

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer
from swfkit import TEST_POLL_TIMEOUT, SWFKit, attributes

from . import activities

pytestmark = pytest.mark.anyio

DOMAIN = "hw-test"
TASK_LIST = "hw-activities"
DEADLINE = 30.0
CLOSING = {
    "ActivityTaskCompleted",
    "ActivityTaskFailed",
    "ActivityTaskCanceled",
    "ActivityTaskTimedOut",
}


def _worker(server: DevServer, activity_list: list[Any], **options: Any) -> Worker:
    session = get_session()
    session.set_credentials("testing", "testing")
    return Worker(
        DOMAIN,
        TASK_LIST,
        activity_list,
        endpoint_url=server.endpoint_url,
        region="us-east-1",
        session=session,
        register_types=True,
        resolve_timeouts="history",
        poll_read_timeout=TEST_POLL_TIMEOUT + 5,
        graceful_shutdown_timeout=2.0,
        **options,
    )


@pytest.fixture
def make_worker(dev_server: DevServer) -> Callable[..., Worker]:
    def build(activity_list: list[Any], **options: Any) -> Worker:
        return _worker(dev_server, activity_list, **options)

    return build


@pytest.fixture(autouse=True)
def _release_stuck_activities() -> Any:
    activities.release.clear()
    yield
    activities.release.set()


async def schedule(kit: SWFKit, name: str, payload: Any = None) -> dict[str, Any]:
    """Start an execution whose decisions go to a task list of its own, and schedule one
    activity (``a1``) in it with the type's registered timeouts."""
    decisions = f"decisions-{uuid.uuid4().hex[:8]}"
    execution = await kit.start(taskList={"name": decisions})
    task = await kit.poll_decision(task_list=decisions)
    await kit.schedule_activity(
        "a1",
        task=task,
        activity_type={"name": name, "version": "1"},
        input=None if payload is None else json.dumps(payload),
        schedule_to_close_timeout="NONE",
        schedule_to_start_timeout="NONE",
    )
    return execution


async def closing_event(kit: SWFKit, execution: dict[str, Any]) -> Any:
    ids = {"workflowId": execution["workflowId"], "runId": execution["runId"]}
    with anyio.fail_after(DEADLINE):
        while True:
            for event in await kit.history(ids):
                if event["eventType"] in CLOSING:
                    return event
            await anyio.sleep(0.05)


async def started_event(kit: SWFKit, execution: dict[str, Any]) -> Any:
    ids = {"workflowId": execution["workflowId"], "runId": execution["runId"]}
    for event in await kit.history(ids):
        if event["eventType"] == "ActivityTaskStarted":
            return event
    raise AssertionError("no ActivityTaskStarted in the history")


# -- stall detection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stuck_line", "row"),
    [
        ("stuck_in_thread", "time.sleep(0.05)  # stuck: no heartbeat() ever again", 7),
        ("stuck_on_event", "await never.wait()  # stuck: the event never fires", 8),
    ],
)
async def test_stalled_activity_is_failed_with_its_stack_logged(
    swfkit: SWFKit, make_worker: Callable[..., Worker], name: str, stuck_line: str, row: int
) -> None:
    activity = getattr(activities, name)
    with structlog.testing.capture_logs() as logs:
        async with make_worker([activity], cancel_grace_period=0.5) as worker:
            execution = await schedule(swfkit, name)
            closed = await closing_event(swfkit, execution)
            stalled_for = [a.seconds_since_progress for a in worker.running_activities()]

    assert closed["eventType"] == "ActivityTaskFailed"
    reason = attributes(closed)["reason"]
    assert reason.startswith("stalled: no progress reported for ")
    assert reason.endswith("(progress timeout 2 s)")
    assert json.loads(attributes(closed)["details"]) == {"row": row}
    warnings = [line for line in logs if line["event"] == "activity stalled; stopping it"]
    assert len(warnings) == 1
    assert stuck_line in warnings[0]["stack"]
    assert worker.outcomes == {"failed": 1}
    assert stalled_for == []  # answered: nothing runs any more
    took = closed["eventTimestamp"] - (await started_event(swfkit, execution))["eventTimestamp"]
    print(f"{name}: started -> failed in {took.total_seconds():.2f} s")


async def test_running_activities_reports_time_since_progress(
    swfkit: SWFKit, make_worker: Callable[..., Worker]
) -> None:
    activities.stuck_on_event_started.clear()
    async with make_worker([activities.stuck_on_event], cancel_grace_period=0.5) as worker:
        execution = await schedule(swfkit, "stuck_on_event")
        started = activities.stuck_on_event_started
        assert await anyio.to_thread.run_sync(started.wait, DEADLINE)
        [running] = worker.running_activities()
        await closing_event(swfkit, execution)

    assert running.info.activity_type == "stuck_on_event"
    assert running.progress_timeout == 2
    assert 0 <= running.seconds_since_progress < 2
    assert running.stop_reason is None


# -- the handle from a thread pool ------------------------------------------------------------


async def test_heartbeats_from_a_thread_pool_thread_reach_swf(
    swfkit: SWFKit, dev_server: DevServer, make_worker: Callable[..., Worker]
) -> None:
    activities.pool_beats_sent.clear()
    activities.pool_beats_seen.clear()
    async with make_worker([activities.pool_heartbeats]):
        execution = await schedule(swfkit, "pool_heartbeats")
        with anyio.fail_after(DEADLINE):
            while True:
                task = dev_server.snapshot().task("a1", execution["workflowId"])
                if task is not None and task.details is not None:
                    break
                await anyio.sleep(0.05)
        activities.pool_beats_seen.set()
        closed = await closing_event(swfkit, execution)

    assert json.loads(task.details) == {"from": "pool", "thread": "pool_0"}
    assert closed["eventType"] == "ActivityTaskCompleted"


# -- async completion ---------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.pop("AWS_PROFILE", None)
    return env


COMPLETE_FROM_ELSEWHERE = """
import sys, anyio
from heartbeat_worker import complete_task, heartbeat_task

async def main(url, token):
    cancel = await heartbeat_task(token, {"approved_by": "ops"}, endpoint_url=url)
    assert cancel is False
    await complete_task(token, {"approved": True}, endpoint_url=url)

anyio.run(main, sys.argv[1], open(sys.argv[2]).read())
"""


async def test_task_left_with_complete_later_is_answered_from_another_process(
    swfkit: SWFKit, dev_server: DevServer, make_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    activities.token_file = tmp_path / "token"
    with structlog.testing.capture_logs() as logs:
        async with make_worker([activities.later]) as worker:
            execution = await schedule(swfkit, "later")
            await worker.wait_handled(1)
    token = activities.token_file.read_text()
    assert worker.outcomes == {"completes later": 1}
    assert dev_server.snapshot().task("a1", execution["workflowId"]) is not None  # still open
    assert all(token not in repr(line) for line in logs)

    command = [sys.executable, "-c", COMPLETE_FROM_ELSEWHERE, dev_server.endpoint_url]
    with anyio.fail_after(DEADLINE):
        done = await anyio.run_process(
            [*command, str(activities.token_file)], env=_env(), check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    closed = await closing_event(swfkit, execution)

    assert closed["eventType"] == "ActivityTaskCompleted"
    assert json.loads(attributes(closed)["result"]) == {"approved": True}


# -- through `heartbeat-worker execute` ---------------------------------------------------


@pytest.fixture
async def serving(dev_server: DevServer) -> AsyncIterator[Worker]:
    worker = _worker(
        dev_server,
        [activities.quote, activities.pay, activities.refuse, activities.flaky_once],
        cancel_grace_period=1.0,
    )
    async with worker:
        yield worker


async def execute(server: DevServer, name: str, *arguments: str) -> tuple[int, str, str]:
    command = [
        str(Path(sys.executable).parent / "heartbeat-worker"),
        "execute",
        name,
        "--domain",
        DOMAIN,
        "--task-list",
        TASK_LIST,
        "--endpoint-url",
        server.endpoint_url,
        *arguments,
    ]
    with anyio.fail_after(DEADLINE):
        done = await anyio.run_process(command, env=_env(), check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_dataclass_round_trip_through_execute(dev_server: DevServer, serving: Worker) -> None:
    shipment = {
        "id": "s-1",
        "ship_on": "2026-12-24",
        "parcels": [{"weight": "2", "unit": "kg"}, {"weight": "10", "unit": "lb"}],
    }
    code, out, err = await execute(dev_server, "quote", "--input", json.dumps(shipment), "--json")

    assert code == 0, out + err
    result = json.loads(json.loads(out)["result"])
    assert result == {"shipment": shipment, "total_kg": "6.536"}


async def test_dataclass_mismatch_through_execute_names_the_field(
    dev_server: DevServer, serving: Worker
) -> None:
    shipment = {"id": "s-1", "ship_on": "24/12/2026", "parcels": []}
    code, out, _ = await execute(dev_server, "quote", "--input", json.dumps(shipment))

    assert code == 1, out
    assert "reason: bad input: ship_on: expected an ISO 8601 date, got str '24/12/2026'" in out


async def test_pydantic_round_trip_through_execute(dev_server: DevServer, serving: Worker) -> None:
    invoice = {"customer": "ada", "amounts": ["1.50", "2.25"], "due": "2026-12-31"}
    code, out, err = await execute(dev_server, "pay", "--input", json.dumps(invoice), "--json")

    assert code == 0, out + err
    assert json.loads(json.loads(out)["result"]) == {"customer": "ada", "total": "3.75"}


async def test_pydantic_mismatch_names_the_field(dev_server: DevServer, serving: Worker) -> None:
    invoice = {"customer": "ada", "amounts": ["x"], "due": "2026-12-31"}
    code, out, _ = await execute(dev_server, "pay", "--input", json.dumps(invoice))

    assert code == 1, out
    assert "reason: bad input: amounts[0]: Input should be a valid decimal\n" in out


async def test_non_retryable_failure_is_not_retried_by_execute_retries(
    dev_server: DevServer, serving: Worker
) -> None:
    code, out, _ = await execute(dev_server, "refuse", "--input", '"bob"', "--retries", "3")

    assert code == 1, out
    assert out.startswith("outcome: failed after 1 attempt")
    assert "reason: non-retryable: unknown customer bob\n" in out
    assert 'details: {"customer":"bob"}\n' in out


async def test_retryable_chosen_failure_is_retried(dev_server: DevServer, serving: Worker) -> None:
    code, out, _ = await execute(dev_server, "flaky_once", "--input", '"bob"', "--retries", "2")

    assert code == 1, out
    assert out.startswith("outcome: failed after 3 attempts")
    assert "reason: customer bob is busy\n" in out


async def test_metrics_show_the_time_since_the_last_progress(
    swfkit: SWFKit, make_worker: Callable[..., Worker]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from heartbeat_worker.metrics import Metrics

    def longest(metrics: Metrics) -> float:
        text = metrics.render()[0].decode()
        [family] = [
            family
            for family in text_string_to_metric_families(text)
            if family.name == "heartbeat_worker_seconds_since_progress_max"
        ]
        return float(family.samples[0].value)

    activities.stuck_on_event_started.clear()
    metrics = Metrics()
    async with make_worker([activities.stuck_on_event], metrics=metrics, cancel_grace_period=0.5):
        assert longest(metrics) == 0.0
        execution = await schedule(swfkit, "stuck_on_event")
        started = activities.stuck_on_event_started
        assert await anyio.to_thread.run_sync(started.wait, DEADLINE)
        first = longest(metrics)
        await anyio.sleep(0.3)
        second = longest(metrics)
        await closing_event(swfkit, execution)
        after = longest(metrics)

    assert 0 <= first < second < 2
    assert after == 0.0
