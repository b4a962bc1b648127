"""HeartbeatScheduler with a fake client: beats, jitter, stopping, and the budget."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from botocore.exceptions import ClientError

from heartbeat_worker._budget import HeartbeatBudget
from heartbeat_worker._context import ActivityContext, ActivityInfo, StopReason
from heartbeat_worker._heartbeater import Heartbeater, HeartbeatScheduler
from heartbeat_worker._logging import get_logger

pytestmark = pytest.mark.anyio


class FakeClient:
    def __init__(self, reply: Mapping[str, Any] | None = None, error: str | None = None) -> None:
        self.calls: list[tuple[float, str]] = []
        self.reply = reply or {"cancelRequested": False}
        self.error = error

    async def record_activity_task_heartbeat(
        self, *, taskToken: str, details: str = ""
    ) -> Mapping[str, Any]:
        self.calls.append((anyio.current_time(), taskToken))
        await anyio.lowlevel.checkpoint()
        if self.error:
            raise ClientError({"Error": {"Code": self.error}}, "RecordActivityTaskHeartbeat")
        return self.reply

    async def respond_activity_task_completed(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    async def respond_activity_task_failed(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    async def respond_activity_task_canceled(self, **kwargs: Any) -> Mapping[str, Any]:
        return {}


_ids = itertools.count()


def make(
    client: FakeClient,
    *,
    interval: float,
    timeout: float | None,
    stops: list[tuple[str, StopReason]] | None = None,
) -> Heartbeater:
    token = f"token-{next(_ids)}"
    info = ActivityInfo(
        domain="d",
        task_list="t",
        activity_id=token,
        activity_type="a",
        activity_version="1",
        workflow_id="w",
        run_id="r",
        started_event_id=1,
        heartbeat_timeout=timeout,
        start_to_close_timeout=None,
        started_at=datetime.now(UTC),
        token_hash=token,
    )

    def on_stop(reason: StopReason, why: str) -> None:
        if stops is not None:
            stops.append((token, reason))

    return Heartbeater(
        ActivityContext(info, in_thread=False),
        client,
        token,
        interval=interval,
        on_stop=on_stop,
        log=get_logger(),
    )


async def test_beats_every_activity_with_jitter_and_stops_when_removed() -> None:
    client = FakeClient()
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        beaters = [make(client, interval=0.2, timeout=0.6) for _ in range(20)]
        for beater in beaters:
            scheduler.add(beater)
        # Not in lockstep: the first beats are planned over a fraction of the interval. (The
        # plan, not the calls' times: on a busy machine the calls of one tick bunch up.)
        planned = sorted(at for at, _, _ in scheduler._due)
        assert planned[-1] - planned[0] > 0.03
        await anyio.sleep(1.0)
        for beater in beaters:
            scheduler.remove(beater)
        calls_at_removal = len(client.calls)
        await anyio.sleep(0.4)
        group.cancel_scope.cancel()
    assert len(client.calls) == calls_at_removal, "a beat after remove()"
    assert scheduler.running == 0
    for beater in beaters:
        assert beater.beats_sent >= 3


async def test_reports_a_cancel_request_and_keeps_beating() -> None:
    client = FakeClient(reply={"cancelRequested": True})
    stops: list[tuple[str, StopReason]] = []
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        beater = make(client, interval=0.1, timeout=0.3, stops=stops)
        scheduler.add(beater)
        await anyio.sleep(0.4)
        group.cancel_scope.cancel()
    assert stops
    assert stops[0][1] is StopReason.CANCEL_REQUESTED
    assert beater.beats_sent >= 2  # the task stays alive while the activity cleans up


async def test_a_task_swf_no_longer_knows_is_reported_lost_and_dropped() -> None:
    client = FakeClient(error="UnknownResourceFault")
    stops: list[tuple[str, StopReason]] = []
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        scheduler.add(make(client, interval=0.1, timeout=0.3, stops=stops))
        await anyio.sleep(0.5)
        group.cancel_scope.cancel()
    assert [reason for _, reason in stops] == [StopReason.TASK_LOST]
    assert len(client.calls) == 1
    assert scheduler.running == 0


async def test_the_budget_holds_the_rate_and_serves_the_nearest_deadline_first() -> None:
    client = FakeClient()
    budget = HeartbeatBudget(20)
    scheduler = HeartbeatScheduler(budget=budget)
    # Use up the first window, so that all the first beats below queue for the next one.
    started = anyio.current_time()
    for _ in range(20):
        budget.offer(0.0, "elsewhere")
        assert budget.take(started) == "elsewhere"
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        urgent = [make(client, interval=0.5, timeout=1.5) for _ in range(10)]
        relaxed = [make(client, interval=0.5, timeout=30.0) for _ in range(30)]
        for beater in relaxed + urgent:
            scheduler.add(beater)
        await anyio.sleep(1.6)
        group.cancel_scope.cancel()
    times = [at for at, _ in client.calls]
    for index, start in enumerate(times):
        assert sum(1 for at in times[index:] if at < start + 1.0) <= 20
    # The 40 first beats all waited for the second window: the urgent ones, added last,
    # went first.
    assert times[0] - started >= 1.0
    urgent_tokens = {beater._task_token for beater in urgent}
    assert {token for _, token in client.calls[:10]} == urgent_tokens
