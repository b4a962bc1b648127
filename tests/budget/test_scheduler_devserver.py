"""HeartbeatScheduler against the dev server over HTTP: which beat a busy runner pool serves
next, and what a failed call does to the runner that made it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from heartbeat_worker._context import ActivityContext, ActivityInfo, StopReason
from heartbeat_worker._heartbeater import Heartbeater, HeartbeatScheduler
from heartbeat_worker._logging import get_logger
from heartbeat_worker.devserver import DevServer
from swfkit import ACTIVITY_TASK_LIST, SWFKit, schedule_activity_decision

pytestmark = pytest.mark.anyio

HEARTBEAT = "RecordActivityTaskHeartbeat"


class RecordingClient:
    """The real aiobotocore client, with the order of heartbeat calls noted."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []
        self.changed = anyio.Event()

    async def record_activity_task_heartbeat(self, **arguments: Any) -> Mapping[str, Any]:
        self.calls.append(arguments["taskToken"])
        self.changed.set()
        self.changed = anyio.Event()
        result: Mapping[str, Any] = await self.client.record_activity_task_heartbeat(**arguments)
        return result

    async def wait_until(self, condition: Any) -> None:
        while not condition():
            await self.changed.wait()

    def called(self, token: str) -> bool:
        return token in self.calls


async def started_tokens(swfkit: SWFKit, count: int) -> list[str]:
    """``count`` started activity tasks (no heartbeat timeout on the server's side)."""
    await swfkit.start()
    await swfkit.decide([schedule_activity_decision(f"a{index}") for index in range(count)])
    return [(await swfkit.poll_activity(ACTIVITY_TASK_LIST))["taskToken"] for _ in range(count)]


def heartbeater(client: RecordingClient, token: str, heartbeat_timeout: float) -> Heartbeater:
    info = ActivityInfo(
        domain="hw-test",
        task_list=ACTIVITY_TASK_LIST,
        activity_id=token[:8],
        activity_type="hw-activity",
        activity_version="1",
        workflow_id="w",
        run_id="r",
        started_event_id=1,
        heartbeat_timeout=heartbeat_timeout,
        start_to_close_timeout=None,
        started_at=datetime.now(UTC),
        token_hash=token[:8],
    )

    def on_stop(reason: StopReason, why: str) -> None:
        pass

    return Heartbeater(
        ActivityContext(info, in_thread=False),
        client,
        token,
        interval=heartbeat_timeout / 3,
        on_stop=on_stop,
        log=get_logger(),
    )


async def test_beats_waiting_for_a_runner_go_nearest_deadline_first(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    relaxed_count, urgent_count = 12, 3
    tokens = await started_tokens(swfkit, relaxed_count + urgent_count)
    client = RecordingClient(swfkit.client)
    # Each call takes 0.3 s, and there is one runner: due beats queue for it.
    dev_server.faults.add("latency", operation=HEARTBEAT, latency=0.3)
    scheduler = HeartbeatScheduler(max_in_flight=1)
    relaxed = [heartbeater(client, token, 60.0) for token in tokens[:relaxed_count]]
    urgent = [heartbeater(client, token, 3.0) for token in tokens[relaxed_count:]]
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        for beater in relaxed:
            scheduler.add(beater)
        with anyio.fail_after(5):
            await client.wait_until(lambda: len(client.calls) >= 1)
        # Every relaxed first beat is due by now or within 0.5 s; the urgent ones come
        # due after them, with deadlines 57 s nearer.
        for beater in urgent:
            scheduler.add(beater)
        urgent_tokens = set(tokens[relaxed_count:])
        with anyio.fail_after(10):
            await client.wait_until(lambda: urgent_tokens <= set(client.calls))
        group.cancel_scope.cancel()
    order = ["urgent" if token in urgent_tokens else "relaxed" for token in client.calls]
    last_urgent = max(index for index, kind in enumerate(order) if kind == "urgent")
    relaxed_before = order[:last_urgent].count("relaxed")
    # Served in arrival order, all twelve relaxed beats would go first (3.6 s of calls).
    assert relaxed_before <= 8, order


async def test_a_failed_call_frees_its_runner_for_other_beats(
    dev_server: DevServer, swfkit: SWFKit
) -> None:
    first, second = await started_tokens(swfkit, 2)
    client = RecordingClient(swfkit.client)
    # Every heartbeat is throttled: each call fails and is retried.
    dev_server.faults.add("throttle", operation=HEARTBEAT)
    scheduler = HeartbeatScheduler(max_in_flight=1)
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        for token in (first, second):
            scheduler.add(heartbeater(client, token, 3.0))
        # Both first beats are due within 1 s; a runner sleeping through the first one's
        # retries would reach the second only after the first task's 3 s timeout.
        with anyio.fail_after(2.5):
            await client.wait_until(lambda: client.called(first) and client.called(second))
        group.cancel_scope.cancel()
    assert dev_server.faults.total(kind="throttle") >= 2
