"""The lifespan: entered once before the first poll, shared by concurrent activities
through ``resources()``, exited once after the last answer; a failing entry stops the worker
before any poll."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

import heartbeat_worker
from heartbeat_worker import (
    ConfigurationError,
    Interceptor,
    LifespanError,
    SWFCallInput,
    Worker,
    activity,
)
from swfkit import SWFKit

from ._scenario import closed, schedule

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]
CONCURRENT = 20


@dataclass
class Shared:
    """The resource of these tests: one SQLite connection, and what happened to it."""

    connection: sqlite3.Connection
    everyone_running: anyio.Event = field(default_factory=anyio.Event)
    running: int = 0
    closed: int = 0
    handled_when_closed: int | None = None


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def record(number: int) -> int:
    shared = heartbeat_worker.resources(Shared)
    shared.running += 1
    if shared.running == CONCURRENT:
        shared.everyone_running.set()
    # All 20 hold the one connection at once before any of them finishes.
    with anyio.fail_after(10):
        await shared.everyone_running.wait()
    shared.connection.execute("INSERT INTO done VALUES (?)", (number,))
    return number


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
def record_in_thread(number: int) -> int:
    shared = heartbeat_worker.resources(Shared)
    shared.connection.execute("INSERT INTO done VALUES (?)", (number,))
    return number


async def test_a_lifespan_resource_is_shared_by_20_concurrent_activities_and_closed_once(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    seen: list[Shared] = []
    worker: Worker

    @asynccontextmanager
    async def open_shared() -> AsyncIterator[Shared]:
        connection = sqlite3.connect(":memory:", check_same_thread=False)
        connection.execute("CREATE TABLE done (number INTEGER)")
        shared = Shared(connection)
        seen.append(shared)
        try:
            yield shared
        finally:
            shared.handled_when_closed = worker.handled
            shared.closed += 1
            connection.close()

    worker = make_worker(
        [record, record_in_thread], lifespan=open_shared, max_concurrency=CONCURRENT + 1
    )
    async with worker:
        assert len(seen) == 1, "entered before the worker started serving"
        activities = [(f"a{n}", "record", n) for n in range(CONCURRENT)]
        activities.append(("thread", "record_in_thread", 100))
        execution = await schedule(swfkit, activities)
        outcomes = await closed(swfkit, execution, CONCURRENT + 1)
        assert set(outcomes.values()) == {"ActivityTaskCompleted"}
        (shared,) = seen
        rows = shared.connection.execute("SELECT number FROM done ORDER BY number").fetchall()
        assert [row[0] for row in rows] == [*range(CONCURRENT), 100]
        assert shared.closed == 0
    assert len(seen) == 1
    assert seen[0].closed == 1
    assert seen[0].handled_when_closed == CONCURRENT + 1


class PollCounter(Interceptor):
    def __init__(self) -> None:
        self.polls = 0

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        if input.operation == "PollForActivityTask":
            self.polls += 1
        return await self.next.swf_call(input)


async def test_a_lifespan_that_fails_to_start_stops_the_worker_before_any_poll(
    make_worker: MakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    @asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise OSError("database unreachable")
        yield

    counter = PollCounter()
    worker = make_worker([record], lifespan=broken, interceptors=[counter])
    with pytest.raises(LifespanError, match="database unreachable") as raised:
        await worker.run()
    assert isinstance(raised.value.__cause__, OSError)
    assert counter.polls == 0
    assert not worker.started
    assert "the lifespan failed to start" in capsys.readouterr().out


async def test_an_async_generator_function_is_accepted_as_a_lifespan(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    @heartbeat_worker.lifespan
    async def plain() -> AsyncIterator[Shared]:
        connection = sqlite3.connect(":memory:", check_same_thread=False)
        connection.execute("CREATE TABLE done (number INTEGER)")
        yield Shared(connection)
        connection.close()

    async with make_worker([record_in_thread], lifespan=plain) as worker:
        execution = await schedule(swfkit, [("a1", "record_in_thread", 7)])
        assert await closed(swfkit, execution, 1) == {"a1": "ActivityTaskCompleted"}
        await worker.wait_handled(1)


def test_resources_outside_a_worker_with_a_lifespan_says_how_to_get_one() -> None:
    with pytest.raises(ConfigurationError, match="give the Worker a lifespan"):
        heartbeat_worker.resources()


async def test_resources_checks_the_declared_type(swfkit: SWFKit, make_worker: MakeWorker) -> None:
    @asynccontextmanager
    async def wrong() -> AsyncIterator[str]:
        yield "not a Shared"

    async with make_worker([record_in_thread], lifespan=wrong) as worker:
        execution = await schedule(swfkit, [("a1", "record_in_thread", 7)])
        assert await closed(swfkit, execution, 1) == {"a1": "ActivityTaskFailed"}
        await worker.wait_handled(1)
    history = await swfkit.history(
        {"workflowId": execution["workflowId"], "runId": execution["runId"]}
    )
    failed = next(e for e in history if e["eventType"] == "ActivityTaskFailed")
    reason = failed["activityTaskFailedEventAttributes"]["reason"]
    assert reason == "ConfigurationError: the lifespan yielded a str, not a Shared"
