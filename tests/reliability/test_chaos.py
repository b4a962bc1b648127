"""300 activities of four kinds under fault injection, random cancel requests and a SIGTERM.

Two ``heartbeat-worker run`` processes serve the task list one after the other: the first is
sent SIGTERM while it works, the second finishes what is left. Meanwhile 5% of heartbeat
calls stall for 5 s, a few percent of every call the workers make are throttled or fail,
and the workflow cancels a random tenth of the activities at random moments. Every activity
must be closed exactly once, none by a heartbeat timeout, and no task may send more
heartbeats than its interval allows.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from heartbeat_worker import Activity
from heartbeat_worker._logging import get_logger
from heartbeat_worker._registration import register
from heartbeat_worker.devserver import Call, DevServer

from . import chaos_activities
from .decide import DOMAIN, Decider, Outcomes, attributes, report
from .processes import worker_process
from .secrecy import LogCapture

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

TASK_LIST = "chaos"
KINDS = ["chaos_async", "chaos_blocking", "chaos_group", "chaos_deaf"]
PER_KIND = 75
CANCELLED_PER_KIND = 8
INTERVAL = chaos_activities.HEARTBEAT_TIMEOUT / 3
JITTER = 0.2
CALLS_PER_BEAT = 3
"""A beat and at most two retries (a call abandoned after half the interval is retried)."""

WORKER_CALLS = [
    "PollForActivityTask",
    "RecordActivityTaskHeartbeat",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
    "DescribeActivityType",
]


def inject(server: DevServer) -> None:
    faults = server.faults
    faults.add("latency", operation="RecordActivityTaskHeartbeat", probability=0.05, latency=5)
    faults.add("throttle", operation=WORKER_CALLS, probability=0.03)
    faults.add("error", operation=WORKER_CALLS, probability=0.03)
    answers = [name for name in WORKER_CALLS if name.startswith("Respond")]
    faults.add("drop-reply", operation=answers, probability=0.01)


class HeartbeatLog:
    """When each task's heartbeat calls reached the server, by activity id."""

    def __init__(self, server: DevServer) -> None:
        self.activity_of: dict[str, tuple[str, str]] = {}
        self.calls: dict[tuple[str, str], list[float]] = defaultdict(list)
        server.observe(self._see)

    def _see(self, call: Call) -> None:
        if call.operation == "PollForActivityTask" and call.reply and call.reply.get("taskToken"):
            run_id = call.reply["workflowExecution"]["runId"]
            self.activity_of[call.reply["taskToken"]] = (run_id, call.reply["activityId"])
        elif call.operation == "RecordActivityTaskHeartbeat":
            task = self.activity_of.get(call.request.get("taskToken", ""))
            if task is not None:
                self.calls[task].append(call.at)

    def most_in_a_minute(self, task: tuple[str, str]) -> int:
        times = self.calls.get(task, [])
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] > 60:
                start += 1
            most = max(most, end - start + 1)
        return most


async def wait_closed(
    decider: Decider, executions: list[dict[str, Any]], count: int, deadline: float
) -> None:
    """Until ``count`` activities of ``executions`` have a closing event."""
    with anyio.fail_after(deadline):
        while True:
            found = [await decider.outcomes(execution) for execution in executions]
            if sum(len(outcome.closings) for outcome in found) >= count:
                return
            await anyio.sleep(0.2)


async def cancel_some(
    decider: Decider, executions: list[dict[str, Any]], chosen: Callable[[int], list[str]]
) -> dict[str, set[str]]:
    """At random moments, the workflows cancel some of their activities."""
    cancelled: dict[str, set[str]] = {e["runId"]: set() for e in executions}
    for round_ in range(2):
        await anyio.sleep(random.uniform(1.0, 4.0))
        for execution in executions:
            ids = chosen(round_)
            await decider.client.signal_workflow_execution(
                domain=DOMAIN,
                signalName="cancel",
                workflowId=execution["workflowId"],
                runId=execution["runId"],
            )
            task = await decider.kit.poll_decision(task_list=execution["decisions"])
            await decider.kit.decide(
                [
                    {
                        "decisionType": "RequestCancelActivityTask",
                        "requestCancelActivityTaskDecisionAttributes": {"activityId": id_},
                    }
                    for id_ in ids
                ],
                task,
            )
            cancelled[execution["runId"]].update(ids)
    return cancelled


async def test_chaos_every_task_answered_once_without_heartbeat_timeouts_or_floods(
    server: DevServer, decider: Decider, logs: LogCapture
) -> None:
    served = [v for v in vars(chaos_activities).values() if isinstance(v, Activity)]
    await register(decider.client, DOMAIN, served, get_logger())
    beats = HeartbeatLog(server)
    rng = random.Random(10)
    durations = {kind: [rng.uniform(0.3, 3.0) for _ in range(PER_KIND)] for kind in KINDS}
    durations["chaos_deaf"] = [rng.uniform(0.2, 1.5) for _ in range(PER_KIND)]
    executions = [
        await decider.schedule(kind, [round(d, 2) for d in durations[kind]], task_list=TASK_LIST)
        for kind in KINDS
    ]
    cancel_ids = rng.sample([f"a{i}" for i in range(PER_KIND)], CANCELLED_PER_KIND * 2)

    def chosen(round_: int) -> list[str]:
        return cancel_ids[round_ * CANCELLED_PER_KIND : (round_ + 1) * CANCELLED_PER_KIND]

    inject(server)
    options = [
        "--max-concurrency",
        "40",
        "--pollers",
        "4",
        "--graceful-shutdown-timeout",
        "1.5",
        "--cancel-grace-period",
        "1",
    ]
    started = time.monotonic()
    cancelled: dict[str, set[str]] = {}
    async with anyio.create_task_group() as group:

        async def cancelling() -> None:
            cancelled.update(await cancel_some(decider, executions, chosen))

        group.start_soon(cancelling)
        async with worker_process(
            server, "tests.reliability.chaos_activities", TASK_LIST, *options, logs=logs
        ) as first:
            # SIGTERM once about a third of the activities are closed.
            await wait_closed(decider, executions, 100, deadline=60)
            first.signal(signal.SIGTERM)
            first_code = await first.wait(15)
        async with worker_process(
            server, "tests.reliability.chaos_activities", TASK_LIST, *options, logs=logs
        ) as second:
            await wait_closed(decider, executions, len(KINDS) * PER_KIND, deadline=90)
            second.signal(signal.SIGTERM)
            second_code = await second.wait(15)
    elapsed = time.monotonic() - started
    server.faults.clear()

    found: list[Outcomes] = [await decider.outcomes(e) for e in executions]
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for execution, outcome in zip(executions, found, strict=True):
        assert outcome.duplicates() == 0
        assert len(outcome.closings) == PER_KIND
        kinds.update(outcome.kinds())
        for activity_id in outcome.closings:
            event = outcome.closing(activity_id)
            if event["eventType"] == "ActivityTaskFailed":
                reasons[attributes(event)["reason"]] += 1
            if event["eventType"] == "ActivityTaskCanceled":
                assert activity_id in cancelled[execution["runId"]]
    left = logs.events("task left to SWF's timeout")
    # Timed out only if left by a worker, with a log line; none should be.
    assert kinds["ActivityTaskTimedOut"] == len(left) == 0, (kinds, left)
    assert set(reasons) <= {"worker shutdown"}, reasons
    assert first_code == second_code == 0

    allowance: dict[tuple[str, str], float] = {}
    worst = 0.0
    for task, times in beats.calls.items():
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        # The regular beats, the first one early, and one more when the timeout look-up
        # replaced a provisional heartbeater.
        regular = math.ceil(min(span, 60) / (INTERVAL * (1 - JITTER))) + 2
        allowance[task] = CALLS_PER_BEAT * regular
        most = beats.most_in_a_minute(task)
        worst = max(worst, most / allowance[task])
        assert most <= allowance[task], (task, most, allowance[task], times)

    faults = server.faults
    report(
        "chaos: 300 activities, 5 s stalls on 5% of heartbeats, cancels, SIGTERM",
        {
            "ActivityTaskCompleted": kinds["ActivityTaskCompleted"],
            "ActivityTaskCanceled": kinds["ActivityTaskCanceled"],
            "ActivityTaskFailed 'worker shutdown'": reasons["worker shutdown"],
            "ActivityTaskTimedOut": kinds["ActivityTaskTimedOut"],
            "duplicated answers": sum(o.duplicates() for o in found),
            "left to SWF's timeout (logged)": len(left),
            "cancel requests": sum(len(ids) for ids in cancelled.values()),
            "heartbeat calls stalled 5 s": faults.total("latency"),
            "calls throttled / failed / reply lost": (
                f"{faults.total('throttle')} / {faults.total('error')} / "
                f"{faults.total('drop-reply')}"
            ),
            "heartbeat calls (reached the server)": sum(len(t) for t in beats.calls.values()),
            "most heartbeat calls of a task vs allowance": f"{worst:.2f}x",
            "exit status (first, second)": f"{first_code}, {second_code}",
            "wall time": f"{elapsed:.1f} s",
        },
    )
