"""RecordActivityTaskHeartbeat fails for a while: half the heartbeat timeout is survived,
longer than the timeout stops the activity without an answer."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer

from . import activities
from .decide import Decider, attributes, report
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio

HEARTBEAT = "RecordActivityTaskHeartbeat"
HEARTBEAT_TIMEOUT = 2.0  # steady's registered default
ANSWERS = [
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
]


def outage(server: DevServer, duration: float) -> None:
    """Every heartbeat fails for ``duration`` s from now: throttled, 500 or dropped."""
    for kind in ("throttle", "error", "drop"):
        server.faults.add(kind, operation=HEARTBEAT, probability=1 / 3, duration=duration)  # type: ignore[arg-type]


async def wait_all_beating(server: DevServer, count: int, deadline: float = 10) -> None:
    """Until ``count`` activities are started and each has had a heartbeat acknowledged."""
    with anyio.fail_after(deadline):
        while True:
            tasks = server.snapshot().activity_tasks
            if sum(1 for task in tasks if task.heartbeats) >= count:
                return
            await anyio.sleep(0.05)


async def test_an_outage_of_half_the_heartbeat_timeout_times_nothing_out(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    # Many activities, so that some are in the worst phase: a beat due as the outage begins.
    count = 40
    execution = await decider.schedule("steady", [4.0] * count, task_list="half")
    async with make_worker([activities.steady], "half", max_concurrency=count) as worker:
        await wait_all_beating(server, count)
        before = server.faults.calls[HEARTBEAT]
        outage(server, HEARTBEAT_TIMEOUT / 2)
        found = await decider.wait_closed(execution, count, deadline=20)
    kinds = found.kinds()
    assert kinds == Counter({"ActivityTaskCompleted": count}), kinds
    assert worker.outcomes == {"completed": count}
    refused = server.faults.total(operation=HEARTBEAT)
    # The scenario needs beats due during the outage, many of them in the worst phase; on a
    # busy machine a few activities may beat just before it and just after, so not every
    # one is certain to meet it.
    assert refused >= count // 2
    report(
        f"heartbeat outage of {HEARTBEAT_TIMEOUT / 2} s (half the timeout), {count} activities",
        {
            "heartbeats sent since the outage began": server.faults.calls[HEARTBEAT] - before,
            "heartbeats refused": refused,
            "heartbeat retries logged": sum(
                1 for r in logs.events("swf call failed; retrying") if r["call"] == HEARTBEAT
            ),
            "ActivityTaskCompleted": kinds["ActivityTaskCompleted"],
            "ActivityTaskTimedOut": kinds["ActivityTaskTimedOut"],
        },
    )


async def test_an_outage_longer_than_the_timeout_stops_the_activity_without_an_answer(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    count = 5
    execution = await decider.schedule("steady", [6.0] * count, task_list="long")
    async with make_worker([activities.steady], "long", max_concurrency=count) as worker:
        await wait_all_beating(server, count)
        began = time.monotonic()
        outage(server, HEARTBEAT_TIMEOUT * 1.5)
        with anyio.fail_after(10):
            await worker.wait_handled(count)
        stopped_after = time.monotonic() - began
        found = await decider.wait_closed(execution, count)
    kinds = found.kinds()
    assert kinds == Counter({"ActivityTaskTimedOut": count}), kinds
    for events in found.closings.values():
        assert attributes(events[0])["timeoutType"] == "HEARTBEAT"
    assert worker.outcomes == {"left to SWF": count}
    assert sum(server.faults.calls[name] for name in ANSWERS) == 0  # nothing answered
    left = logs.events("task left to SWF's timeout")
    assert len(left) == count
    assert {r["why"] for r in left} == {"SWF closed the task"}
    stopping = logs.events("stopping activity")
    assert {r["reason"] for r in stopping} == {"task lost"}
    report(
        f"heartbeat outage of {HEARTBEAT_TIMEOUT * 1.5} s (1.5 x the timeout), {count} activities",
        {
            "ActivityTaskTimedOut (HEARTBEAT)": kinds["ActivityTaskTimedOut"],
            "answers sent": sum(server.faults.calls[name] for name in ANSWERS),
            "'task left to SWF's timeout' lines": len(left),
            "stop reasons": sorted({r["why"] for r in stopping}),
            "activities stopped within": f"{stopped_after:.2f} s of the outage's start",
        },
    )


async def test_heartbeats_keep_a_task_alive_while_its_answer_is_retried(
    server: DevServer, decider: Decider, make_worker: Callable[..., Worker], logs: LogCapture
) -> None:
    # Every RespondActivityTaskCompleted fails for twice the heartbeat timeout; heartbeats
    # go through. Without heartbeats during the answer's retries, SWF would time the tasks
    # out before the answer could land.
    count = 5
    outage_length = HEARTBEAT_TIMEOUT * 2
    for kind in ("throttle", "error"):
        server.faults.add(
            kind,  # type: ignore[arg-type]
            operation="RespondActivityTaskCompleted",
            probability=1 / 2,
            duration=outage_length,
        )
    began = time.monotonic()
    execution = await decider.schedule("steady", [0.3] * count, task_list="answers")
    async with make_worker([activities.steady], "answers", max_concurrency=count) as worker:
        found = await decider.wait_closed(execution, count, deadline=20)
    closed_after = time.monotonic() - began
    kinds = found.kinds()
    assert kinds == Counter({"ActivityTaskCompleted": count}), kinds
    assert worker.outcomes == {"completed": count}
    assert closed_after >= outage_length  # the answers did wait out the outage
    retried = [
        r for r in logs.events("swf call failed; retrying")
        if r["call"] == "RespondActivityTaskCompleted"
    ]  # fmt: skip
    assert len(retried) >= count
    report(
        f"RespondActivityTaskCompleted down for {outage_length} s (2 x the heartbeat "
        f"timeout), {count} activities",
        {
            "answer retries logged": len(retried),
            "ActivityTaskCompleted": kinds["ActivityTaskCompleted"],
            "ActivityTaskTimedOut": kinds["ActivityTaskTimedOut"],
            "closed after": f"{closed_after:.2f} s",
        },
    )
