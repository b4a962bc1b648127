"""SIGTERM and SIGINT to ``heartbeat-worker run``: every polled task is answered, in time."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest

from heartbeat_worker.devserver import DevServer

from .decide import Decider, attributes, report
from .processes import worker_process
from .secrecy import LogCapture, record_tokens

pytestmark = pytest.mark.anyio

LONG_POLL = 30.0
"""Polls are held this long here (SWF holds them 60 s): a poll open when the signal comes
stays open through the shutdown unless the worker abandons it."""

GRACE = 3.0
CANCEL_GRACE = 1.0
HARD_DEADLINE = GRACE + CANCEL_GRACE + 1.5


@pytest.fixture
async def server(logs: LogCapture) -> AsyncIterator[DevServer]:
    """The reliability dev server, with polls held as SWF holds them: so a task scheduled
    after the signal is certain to reach a poll that was open when it came."""
    async with DevServer(poll_timeout=LONG_POLL) as dev_server:
        record_tokens(dev_server, logs.tokens)
        yield dev_server


def shutdown_options(grace: float = GRACE, cancel_grace: float = CANCEL_GRACE) -> list[str]:
    return [
        "--max-concurrency",
        "24",
        "--pollers",
        "2",
        "--graceful-shutdown-timeout",
        str(grace),
        "--cancel-grace-period",
        str(cancel_grace),
    ]


async def test_sigterm_answers_every_polled_task_and_exits_within_the_grace_period(
    server: DevServer, decider: Decider, logs: LogCapture
) -> None:
    target = "tests.reliability.activities"
    async with worker_process(server, target, "sigterm", *shutdown_options(), logs=logs) as worker:
        # Ten finish within the grace period, ten would take a minute.
        running = await decider.schedule(
            "long_sleeper", [1.5] * 10 + [60] * 10, task_list="sigterm"
        )
        await decider.wait_started(running, 20)
        # Pollers wait for more: two polls open after the 20th task (not at once), and
        # nothing answers them before the worker abandons them.
        with anyio.fail_after(10):
            while sum(p.kind == "activity" for p in server.snapshot().polls) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        signalled, signalled_wall = time.monotonic(), time.time()
        worker.signal(signal.SIGTERM)
        await worker.wait_for_log('"shutdown requested"')
        # The two open polls receive two of these while the worker shuts down.
        late = await decider.schedule("long_sleeper", [60] * 3, task_list="sigterm", prefix="late")
        code = await worker.wait(GRACE + 5)
        exit_after = time.monotonic() - signalled
    assert code == 0
    assert exit_after <= GRACE + 5

    found = await decider.wait_closed(running, 20)
    assert found.duplicates() == 0
    completed = [a for a in found.closings if a in {f"a{i}" for i in range(10)}]
    for activity_id in [f"a{i}" for i in range(10)]:
        assert found.closing(activity_id)["eventType"] == "ActivityTaskCompleted"
    for activity_id in [f"a{i}" for i in range(10, 20)]:
        event = found.closing(activity_id)
        assert event["eventType"] == "ActivityTaskFailed"
        assert attributes(event)["reason"] == "worker shutdown"
    late_found = await decider.outcomes(late)
    assert len(late_found.started) == 2
    for activity_id in late_found.started:  # handed to a poll that was open: answered at once
        event = late_found.closing(activity_id)
        assert attributes(event)["reason"] == "worker shutdown"
        assert event["eventTimestamp"].timestamp() - signalled_wall < GRACE / 2
    assert not found.kinds()["ActivityTaskTimedOut"]
    left = logs.events("task left to SWF's timeout") + logs.events("hard shutdown deadline")
    assert not left
    await decider.terminate(late)
    report(
        f"SIGTERM with 20 activities running (grace {GRACE} s, cancel grace {CANCEL_GRACE} s)",
        {
            "exit status": code,
            "exit after SIGTERM": f"{exit_after:.2f} s (limit {GRACE + 5} s)",
            "completed within the grace period": len(completed),
            "failed 'worker shutdown'": found.kinds()["ActivityTaskFailed"],
            "polled during shutdown, answered 'worker shutdown'": len(late_found.started),
            "left to SWF's timeout": len(left),
        },
    )


async def test_a_second_signal_exits_sooner(
    server: DevServer, decider: Decider, logs: LogCapture
) -> None:
    long_grace = 30.0
    async with worker_process(
        server,
        "tests.reliability.activities",
        "second",
        *shutdown_options(grace=long_grace),
        logs=logs,
    ) as worker:
        running = await decider.schedule("long_sleeper", [60] * 5, task_list="second")
        await decider.wait_started(running, 5)
        signalled = time.monotonic()
        worker.signal(signal.SIGTERM)
        await worker.wait_for_log('"shutdown requested"')
        worker.signal(signal.SIGINT)
        code = await worker.wait(long_grace)
        exit_after = time.monotonic() - signalled
    assert code == 0
    assert exit_after < CANCEL_GRACE + 3
    found = await decider.wait_closed(running, 5)
    assert Counter(attributes(e)["reason"] for e in map(found.closing, found.closings)) == {
        "worker shutdown": 5
    }
    report(
        f"SIGTERM then SIGINT (grace {long_grace} s)",
        {
            "exit status": code,
            "exit after the first signal": f"{exit_after:.2f} s",
            "failed 'worker shutdown'": len(found.closings),
        },
    )


async def test_an_activity_ignoring_cancellation_cannot_outlive_the_hard_deadline(
    server: DevServer, decider: Decider, logs: LogCapture
) -> None:
    async with worker_process(
        server, "tests.reliability.activities", "stubborn", *shutdown_options(), logs=logs
    ) as worker:
        running = await decider.schedule("ignores_cancellation", [60] * 3, task_list="stubborn")
        await decider.wait_started(running, 3)
        signalled = time.monotonic()
        worker.signal(signal.SIGTERM)
        code = await worker.wait(HARD_DEADLINE + 10)
        exit_after = time.monotonic() - signalled
    assert exit_after <= HARD_DEADLINE + 2
    found = await decider.wait_closed(running, 3)
    reasons = [attributes(found.closing(a)).get("reason") for a in sorted(found.closings)]
    assert reasons == ["worker shutdown"] * 3
    assert code == 0
    report(
        "SIGTERM with 3 blocking activities that never check for cancellation",
        {
            "exit status": code,
            "exit after SIGTERM": f"{exit_after:.2f} s (hard deadline {HARD_DEADLINE} s)",
            "failed 'worker shutdown'": len(reasons),
            "abandoned-thread warnings": len(logs.events("exiting without waiting")),
        },
    )
