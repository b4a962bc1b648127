"""Cancellation latency: from ActivityTaskCancelRequested to ActivityTaskCanceled.

SWF tells a worker of a cancel request only in a heartbeat reply, so the latency is bounded
by the heartbeat interval: a worker can at best answer within one interval plus a round
trip. 200 sleeping activities with a 3 s heartbeat timeout (interval 1 s) run in 4
executions; once all run, each execution's decider requests the cancellation of its 50
activities, a fraction of a second apart. The latency of each is read from the history
(the two events' timestamps). The raw baseline is the hand-written heartbeater of
``_child.py``, which answers RespondActivityTaskCanceled as soon as a reply says so.

    python benchmarks/cancellation_latency.py [--activities 200] [--quick]
"""

from __future__ import annotations

import argparse
import random
import uuid
from typing import Any

import anyio

from _common import (
    Decider,
    Json,
    Server,
    child,
    decider,
    dev_server,
    machine,
    percentile,
    run_script,
    table,
)

HEARTBEAT_TIMEOUT = 3
INTERVAL = HEARTBEAT_TIMEOUT / 3
SLEEPER: Json = {"name": f"sleep{HEARTBEAT_TIMEOUT}", "heartbeat": HEARTBEAT_TIMEOUT}


def latencies(history: list[Json]) -> list[float]:
    requested: dict[str, float] = {}
    scheduled: dict[int, str] = {}
    found = []
    for event in history:
        kind = event["eventType"]
        stamp = event["eventTimestamp"].timestamp()
        if kind == "ActivityTaskScheduled":
            attributes = event["activityTaskScheduledEventAttributes"]
            scheduled[event["eventId"]] = attributes["activityId"]
        elif kind == "ActivityTaskCancelRequested":
            attributes = event["activityTaskCancelRequestedEventAttributes"]
            requested[attributes["activityId"]] = stamp
        elif kind == "ActivityTaskCanceled":
            attributes = event["activityTaskCanceledEventAttributes"]
            activity_id = scheduled[attributes["scheduledEventId"]]
            found.append(stamp - requested[activity_id])
    return found


async def measure(
    server: Server, swf: Decider, mode: str, activities: int, per_execution: int
) -> dict[str, Any]:
    task_list = f"cancel-{mode}-{uuid.uuid4().hex[:8]}"
    arguments = ["--concurrency", str(activities + 10), "--pollers", "10"]
    async with child(server, mode, task_list, *arguments) as measured:
        executions = await swf.schedule(
            activities,
            activity_type=SLEEPER,
            task_list=task_list,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            per_execution=per_execution,
        )
        await measured.wait_for("running", activities, timeout=120)
        await anyio.sleep(1.5 * INTERVAL)  # past the first beats, into the regular rhythm
        for execution in executions:
            await swf.request_cancel(execution, execution["activity_ids"])
            await anyio.sleep(random.uniform(0.1, 0.4))
        await measured.wait_until(lambda sample: sample["running"] == 0, timeout=60)
        await anyio.sleep(0.5)
        found: list[float] = []
        for execution in executions:
            found.extend(latencies(await swf.history(execution)))
    return {
        "canceled": len(found),
        "p50": percentile(found, 0.5),
        "p99": percentile(found, 0.99),
        "max": max(found, default=float("nan")),
    }


async def main(args: argparse.Namespace) -> int:
    print(
        f"cancellation latency: {args.activities} cancellations, heartbeat timeout "
        f"{HEARTBEAT_TIMEOUT} s (interval {INTERVAL:g} s)"
    )
    print(f"machine: {machine()}")
    per_execution = max(1, args.activities // 4)
    async with dev_server() as server, decider(server, [SLEEPER]) as swf:
        ours = await measure(server, swf, "worker", args.activities, per_execution)
        raw = await measure(server, swf, "raw-heartbeat", args.activities, per_execution)
    rows = []
    for name, found in (("heartbeat-worker", ours), ("raw heartbeater", raw)):
        rows.append(
            [
                name,
                found["canceled"],
                f"{found['p50']:.3f} s = {found['p50'] / INTERVAL:.2f}",
                f"{found['p99']:.3f} s = {found['p99'] / INTERVAL:.2f}",
                f"{found['max']:.3f} s",
            ]
        )
    print(table(["", "canceled", "p50 (intervals)", "p99 (intervals)", "max"], rows))
    met = ours["p99"] <= INTERVAL + 0.2
    print(f"goal: p99 <= interval + 0.2 s = {INTERVAL + 0.2:g} s: {'met' if met else 'MISSED'}")
    return 0 if ours["canceled"] == args.activities else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.activities = min(args.activities, 20)
    return args


if __name__ == "__main__":
    run_script(main, parse())
