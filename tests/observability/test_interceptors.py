"""Interceptors against the dev server: each hook sees its step, in chain order, and a
failing hook costs no answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

import heartbeat_worker
from heartbeat_worker import (
    AnswerInput,
    ConfigurationError,
    ExecuteActivityInput,
    HandleTaskInput,
    Interceptor,
    SWFCallInput,
    Worker,
    activity,
)
from swfkit import SWFKit

from ._scenario import closed, schedule

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def double(value: int) -> int:
    return value * 2


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def nap(seconds: float) -> str:
    import anyio

    await anyio.sleep(seconds)
    return heartbeat_worker.info().activity_id


class Recorder(Interceptor):
    """Records every hook it sees, as (name, stage, detail)."""

    def __init__(self, name: str, journal: list[tuple[str, str, Any]]) -> None:
        self.name = name
        self.journal = journal

    async def handle_task(self, input: HandleTaskInput) -> str:
        self.journal.append((self.name, "task", input.task.activity_id))
        outcome = await self.next.handle_task(input)
        self.journal.append((self.name, "task end", outcome))
        return outcome

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        self.journal.append((self.name, "execute", (input.info.activity_id, tuple(input.args))))
        value = await self.next.execute_activity(input)
        self.journal.append((self.name, "execute end", value))
        return value

    async def answer(self, input: AnswerInput) -> None:
        self.journal.append((self.name, "answer", (input.outcome, input.task.activity_type)))
        await self.next.answer(input)
        self.journal.append((self.name, "answer end", input.outcome))

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        reply = await self.next.swf_call(input)
        task = input.task.activity_id if input.task else None
        self.journal.append((self.name, input.operation, (task, input.heartbeat_lateness)))
        return reply


async def test_hooks_see_each_step_of_a_task_in_chain_order(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    journal: list[tuple[str, str, Any]] = []
    outer, inner = Recorder("outer", journal), Recorder("inner", journal)
    async with make_worker([double], interceptors=[outer, inner]) as worker:
        execution = await schedule(swfkit, [("a1", "double", 21)])
        assert await closed(swfkit, execution, 1) == {"a1": "ActivityTaskCompleted"}
        await worker.wait_handled(1)
    task_steps = [
        (name, stage, detail)
        for name, stage, detail in journal
        if stage in {"task", "task end", "execute", "execute end", "answer", "answer end"}
        or stage == "RespondActivityTaskCompleted"
    ]
    assert task_steps == [
        ("outer", "task", "a1"),
        ("inner", "task", "a1"),
        ("outer", "execute", ("a1", (21,))),
        ("inner", "execute", ("a1", (21,))),
        ("inner", "execute end", 42),
        ("outer", "execute end", 42),
        ("outer", "answer", ("completed", "double")),
        ("inner", "answer", ("completed", "double")),
        ("inner", "RespondActivityTaskCompleted", ("a1", None)),
        ("outer", "RespondActivityTaskCompleted", ("a1", None)),
        ("inner", "answer end", "completed"),
        ("outer", "answer end", "completed"),
        ("inner", "task end", "completed"),
        ("outer", "task end", "completed"),
    ]
    polls = [detail for name, stage, detail in journal if stage == "PollForActivityTask"]
    assert polls
    assert all(detail == (None, None) for detail in polls)
    assert ("inner", "RegisterActivityType", (None, None)) in journal


async def test_every_heartbeat_call_is_seen_with_its_lateness(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    journal: list[tuple[str, str, Any]] = []
    worker = make_worker(
        [nap], interceptors=[Recorder("only", journal)], resolve_timeouts="history"
    )
    async with worker:
        # A 1.5 s heartbeat timeout beats every 0.5 s: several beats within 2 s.
        execution = await schedule(swfkit, [("a1", "nap", 2.0)], heartbeat_timeout="1.5")
        assert await closed(swfkit, execution, 1) == {"a1": "ActivityTaskCompleted"}
        await worker.wait_handled(1)
    beats = [detail for _, stage, detail in journal if stage == "RecordActivityTaskHeartbeat"]
    assert len(beats) >= 3
    for task, lateness in beats:
        assert task == "a1"
        assert lateness is not None
        assert 0 <= lateness < 1.0


class Exploding(Interceptor):
    def __init__(self, where: str) -> None:
        self.where = where

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if self.where == "execute":
            raise RuntimeError("reporter down")
        return await self.next.execute_activity(input)

    async def answer(self, input: AnswerInput) -> None:
        if self.where == "answer":
            raise RuntimeError("reporter down")
        await self.next.answer(input)

    async def handle_task(self, input: HandleTaskInput) -> str:
        if self.where == "task":
            raise RuntimeError("reporter down")
        return await self.next.handle_task(input)


async def test_an_exception_around_the_activity_fails_the_task_like_the_activity_would(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([double], interceptors=[Exploding("execute")]) as worker:
        execution = await schedule(swfkit, [("a1", "double", 1)])
        assert await closed(swfkit, execution, 1) == {"a1": "ActivityTaskFailed"}
        await worker.wait_handled(1)
    assert worker.outcomes == {"failed": 1}


@pytest.mark.parametrize("where", ["answer", "task"])
async def test_a_hook_that_raises_before_going_on_still_leaves_the_task_answered_once(
    swfkit: SWFKit, make_worker: MakeWorker, where: str
) -> None:
    async with make_worker([double], interceptors=[Exploding(where)]) as worker:
        execution = await schedule(swfkit, [("a1", "double", 1)])
        assert await closed(swfkit, execution, 1) == {"a1": "ActivityTaskCompleted"}
        await worker.wait_handled(1)
    assert worker.outcomes == {"completed": 1}


async def test_an_interceptor_serves_one_worker_only(make_worker: MakeWorker) -> None:
    shared = Recorder("shared", [])
    make_worker([double], interceptors=[shared])
    with pytest.raises(ConfigurationError, match="already part of another worker"):
        make_worker([double], interceptors=[shared])
