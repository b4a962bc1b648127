"""Heartbeat budget: 2,000 activities with a 30 s heartbeat timeout under 100 calls/s.

At the nominal interval (a third of the timeout) the activities would need 200 calls per
second; with ``max_heartbeats_per_second=100`` the worker must stretch their intervals (up
to 75% of the timeout) and queue calls nearest-deadline-first, so that no activity times
out and no second ever sees more than 100 calls. The dev server counts the calls it
receives in each wall-clock second, from the worker's start (so the burst of first beats
counts) to the end of the watch, three heartbeat timeouts after every activity runs.

The raw baseline is the hand-written heartbeater of ``_child.py`` at the nominal interval,
which knows no budget: it shows the rate the budget has to absorb.

    python benchmarks/budget.py [--activities 2000] [--budget 100] [--quick]
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import anyio

from _common import Decider, Json, Server, child, decider, dev_server, machine, run_script, table


async def measure(
    server: Server,
    swf: Decider,
    mode: str,
    *,
    activities: int,
    timeout: int,
    budget: float,
    window: float,
) -> dict[str, Any]:
    task_list = f"budget-{mode}-{uuid.uuid4().hex[:8]}"
    arguments = ["--concurrency", str(activities + 10), "--pollers", "10"]
    if mode == "worker":
        arguments += ["--budget", str(budget)]
    started = time.time()
    async with child(server, mode, task_list, *arguments) as measured:
        executions = await swf.schedule(
            activities,
            activity_type={"name": f"sleep{timeout}"},
            task_list=task_list,
            heartbeat_timeout=timeout,
        )
        await measured.wait_for("running", activities, timeout=600)
        before = await server.stats()
        await anyio.sleep(window)
        after = await server.stats()
        finished = time.time()
        timeouts = await swf.count_events(executions, "ActivityTaskTimedOut")
        still_running = (await measured.sample())["running"]
        await swf.terminate(executions)
    per_second = {
        int(second): count
        for second, count in after["heartbeats_per_second"].items()
        if started <= int(second) <= finished
    }
    calls = after["calls"]["RecordActivityTaskHeartbeat"] - before["calls"].get(
        "RecordActivityTaskHeartbeat", 0
    )
    return {
        "timeouts": timeouts,
        "still_running": still_running,
        "busiest": max(per_second.values(), default=0),
        "seconds_over": sum(1 for count in per_second.values() if count > budget),
        "seconds": len(per_second),
        "steady_rate": calls / window,
    }


async def main(args: argparse.Namespace) -> int:
    timeout = args.heartbeat_timeout
    window = timeout * args.window_timeouts
    print(
        f"heartbeat budget: {args.activities} activities, {timeout} s heartbeat timeout, "
        f"budget {args.budget:g} calls/s (nominal need {args.activities * 3 / timeout:g}/s)"
    )
    print(f"machine: {machine()}")
    sleeper: Json = {"name": f"sleep{timeout}", "heartbeat": timeout}
    async with dev_server() as server, decider(server, [sleeper]) as swf:
        common = {"activities": args.activities, "timeout": timeout, "budget": args.budget}
        ours = await measure(server, swf, "worker", window=window, **common)
        raw = await measure(server, swf, "raw-heartbeat", window=timeout, **common)
    rows = []
    for name, found, watched in (
        (f"heartbeat-worker, budget {args.budget:g}/s", ours, window),
        ("raw heartbeater, no budget", raw, timeout),
    ):
        rows.append(
            [
                name,
                f"{watched:g}",
                found["timeouts"],
                f"{found['steady_rate']:.1f}",
                found["busiest"],
                f"{found['seconds_over']} of {found['seconds']}",
            ]
        )
    print(
        table(
            ["", "watched s", "timeouts", "calls/s watched", "busiest s", "s over budget"],
            rows,
        )
    )
    met = (
        ours["timeouts"] == 0
        and ours["still_running"] == args.activities
        and ours["busiest"] <= args.budget
    )
    print(
        f"goal: zero timeouts and no second above {args.budget:g} calls: "
        f"{'met' if met else 'MISSED'}"
    )
    # At smoke size, beside a busy test suite, the figures mean nothing: the run only
    # proves the script works. The goal decides the status of a full-size run.
    return 0 if met or args.quick else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=2000)
    parser.add_argument("--budget", type=float, default=100.0)
    parser.add_argument("--heartbeat-timeout", type=int, default=30, choices=(3, 10, 30, 60))
    parser.add_argument("--window-timeouts", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.activities, args.budget, args.heartbeat_timeout = 60, 40.0, 3
        args.window_timeouts = min(args.window_timeouts, 2.0)
    return args


if __name__ == "__main__":
    run_script(main, parse())
