"""The worker against moto_server, a second SWF implementation independent of ours, for the
paths moto implements: complete, fail, heartbeat. (moto has no cancellation, no long polls,
and checks heartbeat timeouts only when a call arrives, in whole seconds.)"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from heartbeat_worker import Worker
from swfkit import SWFKit, aio_session, attributes

from . import activities
from .test_worker_devserver import closing_event, schedule

pytestmark = pytest.mark.anyio


@pytest.fixture
async def moto_kit(moto_client: Any) -> SWFKit:
    kit = SWFKit(moto_client, domain=f"moto-{id(moto_client)}")
    await kit.register_domain()
    await kit.register_workflow_type()
    return kit


def moto_worker(moto_url: str, kit: SWFKit, chosen: list[Any], **options: Any) -> Worker:
    session = aio_session()
    return Worker(
        kit.domain,
        "hw-activities",
        chosen,
        endpoint_url=moto_url,
        region="us-east-1",
        session=session,
        register_types=True,
        graceful_shutdown_timeout=2,
        **options,
    )


async def test_complete_on_moto(moto_url: str, moto_kit: SWFKit) -> None:
    async with moto_worker(moto_url, moto_kit, [activities.add]) as worker:
        execution = await schedule(moto_kit, "add", {"a": 40, "b": 2})
        closed = await closing_event(moto_kit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted"
    assert json.loads(attributes(closed)["result"]) == 42
    assert worker.outcomes == {"completed": 1}


async def test_fail_on_moto(moto_url: str, moto_kit: SWFKit) -> None:
    async with moto_worker(moto_url, moto_kit, [activities.failing]):
        execution = await schedule(moto_kit, "failing", "broken on purpose")
        closed = await closing_event(moto_kit, execution)
    assert closed["eventType"] == "ActivityTaskFailed"
    assert attributes(closed)["reason"] == "ValueError: broken on purpose"
    assert "Traceback" in attributes(closed)["details"]


async def test_heartbeats_keep_a_task_alive_on_moto(moto_url: str, moto_kit: SWFKit) -> None:
    """A 5 s activity under a 2 s heartbeat timeout completes only if heartbeats flow (a
    shorter timeout cannot hold beside busy processes: a stalled second would end it)."""
    async with moto_worker(
        moto_url, moto_kit, [activities.progress], resolve_timeouts="history"
    ) as worker:
        execution = await schedule(moto_kit, "progress", [10, 0.5], heartbeat_timeout="2")
        with anyio.fail_after(20):
            await worker.wait_handled(1)
        closed = await closing_event(moto_kit, execution)
    assert closed["eventType"] == "ActivityTaskCompleted"
    assert json.loads(attributes(closed)["result"]) == 10
