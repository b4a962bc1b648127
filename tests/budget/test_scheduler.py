"""HeartbeatScheduler with a fake client: beats, jitter, stopping, and the budget."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
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
tokens: dict[int, str] = {}
"""The task token of each heartbeater made, by id()."""


async def wait_until(condition: Callable[[], bool], deadline: float = 10) -> None:
    """Until ``condition()`` holds; a test fails after ``deadline`` seconds, not hangs."""
    with anyio.fail_after(deadline):
        while not condition():  # noqa: ASYNC110 - the fake client has no event to wait on
            await anyio.sleep(0.01)


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

    beater = Heartbeater(
        ActivityContext(info, in_thread=False),
        client,
        token,
        interval=interval,
        on_stop=on_stop,
        log=get_logger(),
    )
    tokens[id(beater)] = token
    return beater


async def test_first_beats_are_spread_not_in_lockstep() -> None:
    client = FakeClient()
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        for _ in range(20):
            scheduler.add(make(client, interval=2.0, timeout=6.0))
        # Each first beat is planned at random within [0.5 s, 1 s]: a busy machine may
        # bunch calls by a few ticks, not squeeze half a second into a tenth.
        await wait_until(lambda: len(client.calls) >= 20)
        group.cancel_scope.cancel()
    times = sorted(at for at, _ in client.calls[:20])
    assert times[-1] - times[0] > 0.1


async def test_beats_every_activity_and_stops_when_removed() -> None:
    client = FakeClient()
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        beaters = [make(client, interval=0.2, timeout=0.6) for _ in range(20)]
        witness = make(client, interval=0.1, timeout=0.3)
        for beater in [*beaters, witness]:
            scheduler.add(beater)
        await wait_until(lambda: all(beater.beats_sent >= 3 for beater in beaters))
        for beater in beaters:
            scheduler.remove(beater)
        calls_at_removal = len(client.calls)
        removed = {tokens[id(beater)] for beater in beaters}
        # The witness beats on: the scheduler ran through several intervals since.
        witnessed = witness.beats_sent
        await wait_until(lambda: witness.beats_sent >= witnessed + 3)
        group.cancel_scope.cancel()
    assert not [token for _, token in client.calls[calls_at_removal:] if token in removed], (
        "a beat after remove()"
    )
    assert scheduler.running == 1


async def test_reports_a_cancel_request_and_keeps_beating() -> None:
    client = FakeClient(reply={"cancelRequested": True})
    stops: list[tuple[str, StopReason]] = []
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        beater = make(client, interval=0.1, timeout=0.3, stops=stops)
        scheduler.add(beater)
        # The task stays alive while the activity cleans up.
        await wait_until(lambda: beater.beats_sent >= 2)
        group.cancel_scope.cancel()
    assert stops
    assert stops[0][1] is StopReason.CANCEL_REQUESTED


async def test_a_task_swf_no_longer_knows_is_reported_lost_and_dropped() -> None:
    client = FakeClient(error="UnknownResourceFault")
    stops: list[tuple[str, StopReason]] = []
    scheduler = HeartbeatScheduler()
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        scheduler.add(make(client, interval=0.1, timeout=0.3, stops=stops))
        await wait_until(lambda: bool(stops))
        group.cancel_scope.cancel()
    assert [reason for _, reason in stops] == [StopReason.TASK_LOST]
    assert len(client.calls) == 1
    assert scheduler.running == 0  # dropped: it is beaten no more


async def test_the_budget_holds_the_rate_and_serves_the_nearest_deadline_first() -> None:
    client = FakeClient()
    budget = HeartbeatBudget(20)
    scheduler = HeartbeatScheduler(budget=budget)
    # Use up the first window, so that all the first beats below queue for the next one.
    started = anyio.current_time()
    for _ in range(20):
        budget.count_call(started)
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        urgent = [make(client, interval=0.5, timeout=1.5) for _ in range(10)]
        relaxed = [make(client, interval=0.5, timeout=30.0) for _ in range(30)]
        for beater in relaxed + urgent:
            scheduler.add(beater)
        await wait_until(lambda: len(client.calls) >= 30)
        group.cancel_scope.cancel()
    times = [at for at, _ in client.calls]
    for index, start in enumerate(times):
        assert sum(1 for at in times[index:] if at < start + 1.0) <= 20
    # The 40 first beats all waited for the second window: the urgent ones, added last,
    # went first.
    assert times[0] - started >= 1.0
    urgent_tokens = {tokens[id(beater)] for beater in urgent}
    assert {token for _, token in client.calls[:10]} == urgent_tokens
