"""Admission control against the dev server over HTTP: with a heartbeat budget, the worker
takes only the tasks it can keep alive and leaves the rest scheduled in SWF."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiobotocore.session import get_session
from structlog.testing import capture_logs

from heartbeat_worker import Worker, activity
from heartbeat_worker.devserver import DevServer
from swfkit import TEST_POLL_TIMEOUT, SWFKit, schedule_activity_decision

pytestmark = pytest.mark.anyio

TASK_LIST = "admission"
RATE = 2.0
TIMEOUT = 10
# The documented figures (README, "The heartbeat budget"), written out: the limiter passes
# 2 calls per 1.05 s; admission keeps 95% of that for activities that each beat once per
# 0.95 x the heartbeat timeout.
FITS = math.floor(2 / 1.05 * 0.95 * 0.95 * TIMEOUT)  # 17
OFFERED = 25

gates: dict[int, anyio.Event] = {}


@activity(name="admission-hold", heartbeat_timeout=TIMEOUT, start_to_close_timeout=120)
async def hold(number: int) -> int:
    """Runs until the test opens its gate."""
    await gates[number].wait()
    return number


async def started(swfkit: SWFKit, execution: dict[str, Any]) -> int:
    return sum(
        1 for e in await swfkit.history(execution) if e["eventType"] == "ActivityTaskStarted"
    )


async def wait_until(condition: Any, deadline: float = 15) -> None:
    with anyio.fail_after(deadline):
        while not condition():  # noqa: ASYNC110 (the worker's read-outs have no event)
            await anyio.sleep(0.02)


@pytest.fixture
async def worker(dev_server: DevServer, swfkit: SWFKit) -> AsyncIterator[Worker]:
    """A worker with a budget of 2 calls/s; its domain is registered by ``swfkit``."""
    session = get_session()
    session.set_credentials("testing", "testing")
    async with Worker(
        "hw-test",
        TASK_LIST,
        [hold],
        endpoint_url=dev_server.endpoint_url,
        region="us-east-1",
        session=session,
        max_concurrency=OFFERED + 5,
        pollers=2,
        max_heartbeats_per_second=RATE,
        register_types=True,
        poll_read_timeout=TEST_POLL_TIMEOUT + 5,
        graceful_shutdown_timeout=5.0,
    ) as running:
        yield running


async def test_the_worker_takes_only_what_its_budget_keeps_alive_and_polls_again_as_tasks_end(
    worker: Worker, swfkit: SWFKit
) -> None:
    gates.clear()
    gates.update({number: anyio.Event() for number in range(OFFERED)})
    with capture_logs() as logs:
        execution = await swfkit.start()
        await swfkit.decide(
            [
                schedule_activity_decision(
                    f"a{number}",
                    activity_type={"name": "admission-hold", "version": "1"},
                    task_list=TASK_LIST,
                    input=str(number),
                    heartbeat_timeout=str(TIMEOUT),
                )
                for number in range(OFFERED)
            ]
        )
        await wait_until(lambda: len(worker.executions) == FITS)
        status = worker.heartbeat_status
        assert status is not None
        assert not status.admitting
        assert status.budget_per_second == RATE
        assert status.needed_per_second == pytest.approx(FITS / (0.95 * TIMEOUT))
        # The others stay scheduled in SWF, not started and left to time out.
        assert await started(swfkit, execution) == FITS
        closed = [entry for entry in logs if "budget full" in entry["event"]]
        assert len(closed) == 1, closed
        assert closed[0]["running_activities"] in (FITS - 1, FITS)
        assert closed[0]["needed_per_second"] <= closed[0]["admission_per_second"]

        # Five finish: five more are taken, and the reopening is logged once.
        running = [
            int(e.context.info.activity_id[1:]) for e in list(worker.executions) if e.context
        ]
        for number in running[:5]:
            gates[number].set()
        await wait_until(lambda: worker.handled == 5)
        await wait_until(lambda: len(worker.executions) == FITS)
        assert await started(swfkit, execution) == FITS + 5
        reopened = [entry for entry in logs if "room again" in entry["event"]]
        assert len(reopened) == 1, reopened
        assert reopened[0]["closed_for"] > 0

        for gate in gates.values():
            gate.set()
        await wait_until(lambda: worker.handled == OFFERED, deadline=30)
    assert worker.outcomes == {"completed": OFFERED}
    status = worker.heartbeat_status
    assert status is not None
    assert status.admission_closures >= 1
