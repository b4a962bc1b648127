"""Heartbeat scale: thousands of sleeping activities kept alive by one worker process.

Two cases, each against a raw baseline in the same run and on the same dev server process:

- 1,000 activities with a 10 s heartbeat timeout, no budget;
- 5,000 activities with a 60 s heartbeat timeout under a budget of 160 calls/s (SWF's
  account-wide refill rate).

Once every activity runs, the worker is watched for three heartbeat timeouts. Reported:
heartbeat timeouts (ActivityTaskTimedOut events in the histories; the goal is none), the
heartbeat calls the dev server received per second (mean and busiest second), the worker's
CPU per heartbeat (its CPU time over the window divided by the calls the server received),
and its RSS per running activity: RSS with every activity running, less the RSS of the
same process started with a single slot and idle, divided by the activities (so that the
worker's slots, which exist from the start, count as the activities' memory).

The raw baseline is the hand-written heartbeater of ``_child.py`` (one coroutine per task:
sleep, ``RecordActivityTaskHeartbeat``, repeat) with the same kind of aiobotocore client,
beating at the same rate as the worker: the nominal interval, or, under a budget, the
stretched one. It is watched for one timeout, or 30 s if that is longer.

    python benchmarks/heartbeat_scale.py [--quick] [--window-timeouts 3]
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio

from _common import Decider, Json, Server, child, decider, dev_server, machine, run_script, table


@dataclass
class Case:
    activities: int
    heartbeat_timeout: int
    budget: float | None

    @property
    def activity_type(self) -> Json:
        return {"name": f"sleep{self.heartbeat_timeout}", "heartbeat": self.heartbeat_timeout}

    @property
    def label(self) -> str:
        budget = f", budget {self.budget:g}/s" if self.budget else ""
        return f"{self.activities} x {self.heartbeat_timeout} s timeout{budget}"

    def raw_interval(self) -> float:
        nominal = self.heartbeat_timeout / 3
        if self.budget is None:
            return nominal
        return max(nominal, self.activities / self.budget)


async def run_case(
    server: Server, swf: Decider, case: Case, mode: str, window: float
) -> dict[str, Any]:
    # A task list of its own: the poll this process leaves open would take a task.
    bare_list = f"hb-bare-{uuid.uuid4().hex[:8]}"
    async with child(server, mode, bare_list, "--concurrency", "1", "--pollers", "1") as bare:
        await anyio.sleep(1.0)  # one poll open, nothing running
        bare_rss = (await bare.sample())["rss"]
    task_list = f"hb-{mode}-{uuid.uuid4().hex[:8]}"
    arguments = ["--concurrency", str(case.activities + 10), "--pollers", "10"]
    if mode == "worker" and case.budget is not None:
        arguments += ["--budget", str(case.budget)]
    if mode == "raw-heartbeat":
        arguments += ["--interval", str(case.raw_interval())]
    async with child(server, mode, task_list, *arguments) as measured:
        await anyio.sleep(1.0)  # polls open, nothing running: the idle footprint
        idle = await measured.sample()
        executions = await swf.schedule(
            case.activities,
            activity_type=case.activity_type,
            task_list=task_list,
            heartbeat_timeout=case.heartbeat_timeout,
        )
        started = await measured.wait_for("running", case.activities, timeout=600)
        ramp = started["wall"] - idle["wall"]
        first, before = await measured.sample(), await server.stats()
        await anyio.sleep(window)
        last, after = await measured.sample(), await server.stats()
        timeouts = await swf.count_events(executions, "ActivityTaskTimedOut")
        await swf.terminate(executions)
    calls = after["calls"].get("RecordActivityTaskHeartbeat", 0) - before["calls"].get(
        "RecordActivityTaskHeartbeat", 0
    )
    seconds = last["wall"] - first["wall"]
    window_start, window_end = int(time.time() - seconds) + 1, int(time.time()) - 1
    per_second = [
        count
        for second, count in after["heartbeats_per_second"].items()
        if window_start <= int(second) <= window_end
    ]
    return {
        "timeouts": timeouts,
        "still_running": last["running"],
        "ramp": ramp,
        "calls": calls,
        "rate": calls / seconds,
        "busiest_second": max(per_second, default=0),
        "cpu_per_beat_ms": (last["cpu"] - first["cpu"]) * 1000 / max(calls, 1),
        "cpu_share": (last["cpu"] - first["cpu"]) / seconds,
        "rss_per_activity_kib": (last["rss"] - bare_rss) / case.activities,
        "idle_rss_mib": idle["rss"] / 1024,
    }


async def main(args: argparse.Namespace) -> int:
    if args.quick:
        cases = [Case(50, 3, None), Case(50, 3, 30.0)]
    else:
        cases = [Case(1000, 10, None), Case(5000, 60, 160.0)]
    if args.case:
        cases = [cases[number - 1] for number in args.case]
    print("heartbeat scale: sleeping activities kept alive by one worker process")
    print(f"machine: {machine()}")
    rows = []
    goals: list[str] = []
    failed = False
    async with dev_server() as server:
        activity_types = [case.activity_type for case in cases]
        async with decider(server, activity_types) as swf:
            for case in cases:
                window = case.heartbeat_timeout * args.window_timeouts
                ours = await run_case(server, swf, case, "worker", window)
                raw_window = min(window, max(case.heartbeat_timeout, 30))
                raw = await run_case(server, swf, case, "raw-heartbeat", raw_window)
                for name, found, watched in (
                    ("heartbeat-worker", ours, window),
                    ("raw heartbeater", raw, raw_window),
                ):
                    rows.append(
                        [
                            f"{case.label}: {name}",
                            f"{watched:g}",
                            found["timeouts"],
                            f"{found['rate']:.0f}",
                            found["busiest_second"],
                            f"{found['cpu_per_beat_ms']:.2f}",
                            f"{found['cpu_per_beat_ms'] / raw['cpu_per_beat_ms']:.2f}x",
                            f"{found['rss_per_activity_kib']:.1f}",
                            f"{found['ramp']:.1f}",
                        ]
                    )
                failed |= ours["timeouts"] > 0 or ours["still_running"] != case.activities
                if case.budget is not None:
                    failed |= ours["busiest_second"] > case.budget
                goals.append(
                    f"{case.label}: timeouts {ours['timeouts']} (goal 0); CPU/beat "
                    f"{ours['cpu_per_beat_ms'] / raw['cpu_per_beat_ms']:.2f}x raw (goal <= 1.2x); "
                    f"{ours['rss_per_activity_kib']:.1f} KiB/activity (goal <= 20)"
                )
    print(
        table(
            [
                "",
                "watched s",
                "timeouts",
                "calls/s",
                "busiest s",
                "CPU ms/beat",
                "vs raw",
                "KiB/activity",
                "ramp s",
            ],
            rows,
        )
    )
    print(
        "CPU ms/beat: worker CPU over the watched window / heartbeats the server received; "
        "KiB/activity: (RSS running - RSS idle with one slot) / activities; "
        "ramp: idle to all running"
    )
    for line in goals:
        print(line)
    return 1 if failed else 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--window-timeouts",
        type=float,
        default=3.0,
        help="how many heartbeat timeouts to watch the worker for (default 3)",
    )
    parser.add_argument(
        "--case", type=int, action="append", choices=(1, 2), help="run only this case"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.window_timeouts = min(args.window_timeouts, 1.0)
    return args


if __name__ == "__main__":
    run_script(main, parse())
