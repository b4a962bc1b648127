"""Heartbeat scale: thousands of sleeping activities kept alive by one worker process.

Four cases, each measured in the same run and on the same dev server process:

1. 1,000 activities with a 10 s heartbeat timeout, no budget;
2. 5,000 activities with a 60 s heartbeat timeout under a budget of 160 calls/s (SWF's
   account-wide refill rate);
3. 8,000 activities with a 60 s heartbeat timeout under 160 calls/s: past what today's
   planning keeps alive (intervals at most three quarters of the timeout), within what
   the ceiling (0.95 of the timeout, unjittered, nearest deadline first) does;
4. 12,000 activities offered at once under 160 calls/s: more than any worker can keep
   alive on that budget; admission control starts only what fits and leaves the rest
   scheduled in SWF.

Cases 1 and 2 compare the worker with a raw baseline: the hand-written heartbeater of
``_child.py`` (one coroutine per task: sleep, ``RecordActivityTaskHeartbeat``, repeat) with
the same kind of aiobotocore client, beating at the same rate as the worker (the nominal
interval or, under a budget, the stretched one), watched for one timeout or 30 s if that is
longer. Cases 3 and 4 compare the worker with today's behaviour, the same worker with
``heartbeat_ceiling=0.75`` and ``admission_control=False`` (intervals stop stretching at
three quarters of the timeout, and every task offered is started).

Once every activity the worker takes runs, it is watched for three heartbeat timeouts.
Reported: heartbeat timeouts (ActivityTaskTimedOut events in the histories; the goal is
none), activities started and left scheduled, the heartbeat calls the dev server received
per second (mean and busiest second), how late the worker's calls left against their plan
(p50, p99, max over the watch, from the worker's ``heartbeat_status`` histogram, to within
10%), the worker's CPU per heartbeat, and its RSS per running activity: RSS with every
activity running, less the RSS of the same process started with a single slot and idle,
divided by the activities (so that the worker's slots, which exist from the start, count
as the activities' memory).

    python benchmarks/heartbeat_scale.py [--quick] [--case N] [--window-timeouts 3]
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio

from _common import Decider, Json, Server, child, decider, dev_server, machine, run_script, table
from heartbeat_worker._heartbeat_status import summarize

TODAY = ("--ceiling", "0.75", "--no-admission")
"""The worker's options that reproduce the budget as it was before the ceiling and
admission control."""


@dataclass
class Case:
    activities: int
    heartbeat_timeout: int
    budget: float | None
    baseline: str = "raw"
    """``raw``: the raw heartbeater; ``today``: the worker without ceiling and admission."""
    admission: bool = False
    """Whether the worker is expected to take fewer than ``activities`` (admission)."""

    @property
    def activity_type(self) -> Json:
        return {"name": f"sleep{self.heartbeat_timeout}", "heartbeat": self.heartbeat_timeout}

    @property
    def label(self) -> str:
        budget = f", budget {self.budget:g}/s" if self.budget else ""
        offered = " offered" if self.admission else ""
        return f"{self.activities}{offered} x {self.heartbeat_timeout} s timeout{budget}"

    def raw_interval(self) -> float:
        nominal = self.heartbeat_timeout / 3
        if self.budget is None:
            return nominal
        return max(nominal, self.activities / self.budget)


async def run_case(
    server: Server, swf: Decider, case: Case, mode: str, window: float, *extra: str, quick: bool
) -> dict[str, Any]:
    bare_rss = None
    if not quick:  # (at smoke size the memory per activity means nothing)
        # A task list of its own: the poll this process leaves open would take a task.
        bare_list = f"hb-bare-{uuid.uuid4().hex[:8]}"
        arguments = ("--concurrency", "1", "--pollers", "1")
        async with child(server, mode, bare_list, *arguments) as bare:
            await anyio.sleep(1.0)  # one poll open, nothing running
            bare_rss = (await bare.sample())["rss"]
    task_list = f"hb-{mode}-{uuid.uuid4().hex[:8]}"
    arguments = ["--concurrency", str(case.activities + 10), "--pollers", "10", *extra]
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
        if case.admission and "--no-admission" not in extra:
            # Until admission closes and the tasks that polls still open bring have come.
            started = await measured.wait_until(lambda sample: not sample["admitting"], 600)
            while True:
                await anyio.sleep(2.0)
                latest = await measured.sample()
                if latest["running"] == started["running"]:
                    break
                started = latest
        else:
            started = await measured.wait_for("running", case.activities, timeout=600)
        ramp = started["wall"] - idle["wall"]
        first, before = await measured.sample(), await server.stats()
        await anyio.sleep(window)
        last, after = await measured.sample(), await server.stats()
        timeouts = await swf.count_events(executions, "ActivityTaskTimedOut")
        started_count = await swf.count_events(executions, "ActivityTaskStarted")
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
    lateness = None
    if "lateness" in first:
        lateness = summarize(
            [now - then for now, then in zip(last["lateness"], first["lateness"], strict=True)]
        )
    return {
        "timeouts": timeouts,
        "started": started_count,
        "still_running": last["running"],
        "ramp": ramp,
        "calls": calls,
        "rate": calls / seconds,
        "busiest_second": max(per_second, default=0),
        "lateness": lateness,
        "cpu_per_beat_ms": (last["cpu"] - first["cpu"]) * 1000 / max(calls, 1),
        "cpu_share": (last["cpu"] - first["cpu"]) / seconds,
        "rss_per_activity_kib": (last["rss"] - (idle["rss"] if bare_rss is None else bare_rss))
        / max(first["running"], 1),
        "idle_rss_mib": idle["rss"] / 1024,
    }


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


async def main(args: argparse.Namespace) -> int:
    if args.quick:
        # Case 3's path is case 4's without admission: at smoke size, case 4 covers both.
        numbered = {
            1: Case(50, 3, None),
            2: Case(50, 3, 30.0),
            4: Case(40, 10, 3.0, baseline="today", admission=True),
        }
    else:
        numbered = {
            1: Case(1000, 10, None),
            2: Case(5000, 60, 160.0),
            3: Case(8000, 60, 160.0, baseline="today"),
            4: Case(12000, 60, 160.0, baseline="today", admission=True),
        }
    cases = [case for number, case in numbered.items() if not args.case or number in args.case]
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
                if args.quick and case.baseline == "today":
                    window /= 2  # a smoke run: half a timeout is enough to see it work
                quick = args.quick
                ours = await run_case(server, swf, case, "worker", window, quick=quick)
                if case.baseline == "raw":
                    base_window = min(window, max(case.heartbeat_timeout, 30))
                    base = await run_case(
                        server, swf, case, "raw-heartbeat", base_window, quick=quick
                    )
                    base_name = "raw heartbeater"
                else:
                    base_window = window
                    base = await run_case(server, swf, case, "worker", window, *TODAY, quick=quick)
                    base_name = "today's worker"
                for name, found, watched in (
                    ("heartbeat-worker", ours, window),
                    (base_name, base, base_window),
                ):
                    late = found["lateness"]
                    rows.append(
                        [
                            f"{case.label}: {name}",
                            f"{watched:g}",
                            found["started"],
                            found["timeouts"],
                            f"{found['rate']:.0f}",
                            found["busiest_second"],
                            "-" if late is None else _seconds(late.p50),
                            "-" if late is None else _seconds(late.p99),
                            "-" if late is None else _seconds(late.max),
                            f"{found['cpu_per_beat_ms']:.2f}",
                            f"{found['rss_per_activity_kib']:.1f}",
                            f"{found['ramp']:.1f}",
                        ]
                    )
                taken = ours["started"]
                failed |= ours["timeouts"] > 0 or ours["still_running"] != taken
                if not case.admission:
                    failed |= taken != case.activities
                elif not args.quick:
                    failed |= taken >= case.activities  # the rest must stay scheduled
                if case.budget is not None:
                    failed |= ours["busiest_second"] > case.budget
                line = (
                    f"{case.label}: started {taken} of {case.activities}, timeouts "
                    f"{ours['timeouts']} (goal 0); busiest second {ours['busiest_second']}"
                )
                if case.budget is not None:
                    line += f" (goal <= {case.budget:g})"
                line += f"; {ours['rss_per_activity_kib']:.1f} KiB/activity"
                if case.baseline == "raw":
                    ratio = ours["cpu_per_beat_ms"] / base["cpu_per_beat_ms"]
                    line += f" (goal <= 20); CPU/beat {ratio:.2f}x raw (goal <= 1.2x)"
                else:
                    line += (
                        f" (goal <= 12); today's worker: started {base['started']}, "
                        f"timeouts {base['timeouts']}"
                    )
                goals.append(line)
    print(
        table(
            [
                "",
                "watched s",
                "started",
                "timeouts",
                "calls/s",
                "busiest s",
                "late p50",
                "late p99",
                "late max",
                "CPU ms/beat",
                "KiB/activity",
                "ramp s",
            ],
            rows,
        )
    )
    print(
        "late: how late the worker's calls left against their plan over the watch, seconds "
        "(to within 10%); CPU ms/beat: worker CPU over the watched window / heartbeats the "
        "server received; KiB/activity: (RSS running - RSS idle with one slot) / activities "
        "running; ramp: idle to all running"
    )
    for line in goals:
        print(line)
    # At smoke size, beside a busy test suite, the figures mean nothing: the run only
    # proves the script works. The goals decide the status of a full-size run.
    return 1 if failed and not args.quick else 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--window-timeouts",
        type=float,
        default=3.0,
        help="how many heartbeat timeouts to watch the worker for (default 3)",
    )
    parser.add_argument(
        "--case",
        type=int,
        action="append",
        choices=(1, 2, 3, 4),
        help="run only this case (repeatable; --quick has no case 3)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.window_timeouts = min(args.window_timeouts, 1.0)
    return args


if __name__ == "__main__":
    run_script(main, parse())
