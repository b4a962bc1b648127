"""The process executor against the thread executor, side by side in one run.

* Parallelism: 8 CPU-bound activities of about 2 s of CPU each (a pure-Python loop,
  calibrated on this machine first) as threads and as processes, in turns, twice; wall time
  from the first schedule to the last completion, read from the history, the best of the
  runs. Goal: process <= 0.6 x thread.
* Overhead: 200 no-op activities one at a time (concurrency 1), as threads and as
  processes: the latency of each from ActivityTaskStarted to ActivityTaskCompleted (p50,
  p99) and the CPU per task of the worker plus its children.
* Cancellation: 100 process activities that ignore their stop flag, cancelled four at a
  time with a cancel grace period of 1 s: from the cancel request to the PID being gone
  (polled in /proc) and to ActivityTaskCanceled; then the processes left behind.
* Memory: RSS of the worker and of its children with the pool idle, against a worker
  without process activities.

    python benchmarks/process_executor.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

import _process_activities as acts
from _common import (
    CHILD_ENV,
    HERE,
    Child,
    Decider,
    Json,
    Server,
    decider,
    dev_server,
    machine,
    percentile,
    run_script,
    table,
)

GRACE = 1.0
TYPES: list[Json] = [
    {"name": "spin_thread"},
    {"name": "spin_process"},
    {"name": "noop_thread"},
    {"name": "noop_process"},
    {"name": "ignore_process", "heartbeat": acts.CANCEL_HEARTBEAT_TIMEOUT},
]


@asynccontextmanager
async def measured(server: Server, task_list: str, *options: str) -> AsyncIterator[Child]:
    """The worker of ``_process_worker.py``; it shuts down gracefully at the end."""
    command = [
        sys.executable,
        str(HERE / "_process_worker.py"),
        "--endpoint-url",
        server.url,
        "--task-list",
        task_list,
        *options,
    ]
    process = await anyio.open_process(command, env={**os.environ, **CHILD_ENV}, stderr=None)
    worker = Child(process)
    try:
        await worker._line()  # ready
        yield worker
    finally:
        if process.returncode is None:
            assert process.stdin is not None
            await process.stdin.send(b"stop\n")
            with anyio.move_on_after(30):
                worker.stopped = await worker._line()  # type: ignore[attr-defined]
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def calibrate(seconds: float) -> int:
    """Rounds of ``spin`` that take about ``seconds`` of CPU here (CPU time, not wall time,
    so that other work on the machine does not shrink the job)."""
    rounds = 200_000
    while True:
        started = time.process_time()
        acts.spin(rounds)
        took = time.process_time() - started
        if took > 0.2:
            return int(rounds * seconds / took)
        rounds *= 2


def span(history: list[Json], first: str, last: str) -> float:
    stamps = [e["eventTimestamp"].timestamp() for e in history if e["eventType"] == first]
    ends = [e["eventTimestamp"].timestamp() for e in history if e["eventType"] == last]
    return max(ends) - min(stamps)


def task_latencies(history: list[Json]) -> list[float]:
    """ActivityTaskStarted -> ActivityTaskCompleted, per task."""
    started: dict[int, float] = {}
    found = []
    for event in history:
        stamp = event["eventTimestamp"].timestamp()
        if event["eventType"] == "ActivityTaskStarted":
            started[event["eventId"]] = stamp
        elif event["eventType"] == "ActivityTaskCompleted":
            attributes = event["activityTaskCompletedEventAttributes"]
            found.append(stamp - started[attributes["startedEventId"]])
    return found


async def wait_closed(swf: Decider, execution: Json, count: int, deadline: float) -> list[Json]:
    closing = {"ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskCanceled"}
    with anyio.fail_after(deadline):
        while True:
            history = await swf.history(execution)
            if sum(e["eventType"] in closing for e in history) >= count:
                return history
            await anyio.sleep(0.2)


async def parallelism(
    server: Server, swf: Decider, rounds: int, repeat: int
) -> dict[str, list[float]]:
    """Wall times of each executor, in turns (thread, process, thread...), so that the load
    other work puts on the machine weighs on both alike."""
    walls: dict[str, list[float]] = {"spin_thread": [], "spin_process": []}
    for _ in range(repeat):
        for name, found in walls.items():
            task_list = f"spin-{uuid.uuid4().hex[:8]}"
            async with measured(server, task_list, "--concurrency", "8"):
                [execution] = await swf.schedule(
                    8, activity_type={"name": name}, task_list=task_list, input=json.dumps(rounds)
                )
                history = await wait_closed(swf, execution, 8, 600)
            found.append(span(history, "ActivityTaskScheduled", "ActivityTaskCompleted"))
    return walls


async def overhead(server: Server, swf: Decider, count: int) -> dict[str, dict[str, float]]:
    found = {}
    for name in ("noop_thread", "noop_process"):
        task_list = f"noop-{uuid.uuid4().hex[:8]}"
        options = ["--concurrency", "1", "--processes", "1"]
        async with measured(server, task_list, *options) as worker:
            # A first task warms the caches (the type's timeouts, the child's imports).
            [warm] = await swf.schedule(1, activity_type={"name": name}, task_list=task_list)
            await wait_closed(swf, warm, 1, 60)
            before = await worker.sample()
            [execution] = await swf.schedule(
                count, activity_type={"name": name}, task_list=task_list
            )
            history = await wait_closed(swf, execution, count, 300)
            after = await worker.sample()
        latencies = task_latencies(history)
        cpu = after["cpu"] - before["cpu"]
        children_cpu = after["children_cpu"] - before["children_cpu"]
        found[name] = {
            "p50": percentile(latencies, 0.5),
            "p99": percentile(latencies, 0.99),
            "cpu": (cpu + children_cpu) / count,
            "worker_cpu": cpu / count,
        }
    return found


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


async def cancellation(server: Server, swf: Decider, total: int, batch: int) -> dict[str, Any]:
    task_list = f"cancel-{uuid.uuid4().hex[:8]}"
    options = ["--concurrency", str(batch), "--processes", str(batch)]
    options += ["--cancel-grace-period", str(GRACE)]
    to_gone: list[float] = []
    to_canceled: list[float] = []
    canceled = 0
    async with measured(server, task_list, *options) as worker:
        first = await worker.sample()
        for _ in range(total // batch):
            [execution] = await swf.schedule(
                batch,
                activity_type={"name": "ignore_process"},
                task_list=task_list,
                heartbeat_timeout=acts.CANCEL_HEARTBEAT_TIMEOUT,
            )
            running = await worker.wait_until(lambda s: s["running"] == batch, 120)
            pids = running["pool"]  # as many children as tasks: all of them busy
            await anyio.sleep(0.2)  # past the first heartbeat
            requested = time.time()
            await swf.request_cancel(execution, execution["activity_ids"])
            left = set(pids)
            try:
                with anyio.fail_after(60):
                    while left:
                        for pid in [pid for pid in left if gone(pid)]:
                            left.discard(pid)
                            to_gone.append(time.time() - requested)
                        await anyio.sleep(0.005)
            except TimeoutError:
                raise RuntimeError(f"still there: {left}; {await worker.sample()}") from None
            history = await wait_closed(swf, execution, batch, 60)
            for event in history:
                if event["eventType"] == "ActivityTaskCanceled":
                    canceled += 1
                    to_canceled.append(event["eventTimestamp"].timestamp() - requested)
        idle = await worker.wait_until(lambda s: len(s["pool"]) == batch, 60)
    stopped = worker.stopped  # type: ignore[attr-defined]
    return {
        "cancels": total // batch * batch,
        "canceled": canceled,
        "gone_p50": percentile(to_gone, 0.5),
        "gone_max": max(to_gone),
        "canceled_p50": percentile(to_canceled, 0.5),
        "canceled_max": max(to_canceled),
        "children_before": len(first["children"]),
        "children_after": len(idle["children"]),
        "children_stopped": len(stopped["activity_children"]),
        "survivors": [pid for pid in idle["children"] if pid not in idle["pool"]]
        if len(idle["children"]) > batch + 1
        else [],
    }


async def memory(server: Server) -> dict[str, int]:
    found = {}
    for label, options in (
        ("threads only", ["--threads-only"]),
        ("pool of 2", ["--processes", "2"]),
    ):
        async with measured(server, f"mem-{uuid.uuid4().hex[:8]}", *options) as worker:
            await anyio.sleep(1.0)
            sample = await worker.sample()
        found[f"{label}: worker"] = sample["rss"]
        found[f"{label}: children"] = sample["children_rss"]
        found[f"{label}: processes"] = 1 + len(sample["children"])
    return found


async def main(args: argparse.Namespace) -> int:
    print("process executor vs thread executor")
    print(f"machine: {machine()}")
    rounds = calibrate(args.seconds)
    print(f"spin: {rounds} rounds = about {args.seconds:g} s alone")
    async with dev_server() as server, decider(server, TYPES) as swf:
        walls = await parallelism(server, swf, rounds, args.repeat)
        costs = await overhead(server, swf, args.noops)
        cancels = await cancellation(server, swf, args.cancels, 4)
        rss = await memory(server)

    best = {name: min(found) for name, found in walls.items()}
    ratio = best["spin_process"] / best["spin_thread"]
    print(f"\nparallelism: 8 activities of about {args.seconds:g} s of CPU (pure Python)")
    print(
        table(
            ["executor", "wall (best)", "every run"],
            [
                [
                    name.removeprefix("spin_"),
                    f"{best[name]:.2f} s",
                    ", ".join(f"{wall:.2f}" for wall in walls[name]),
                ]
                for name in walls
            ],
        )
    )
    print(f"process / thread = {ratio:.2f}: goal <= 0.6 {'met' if ratio <= 0.6 else 'MISSED'}")
    print(f"load average now: {os.getloadavg()[0]:.2f}")

    print(f"\noverhead: {args.noops} no-op activities, one at a time (started -> completed)")
    rows = []
    for name in ("noop_thread", "noop_process"):
        found = costs[name]
        rows.append(
            [
                name.removeprefix("noop_"),
                f"{found['p50'] * 1000:.1f} ms",
                f"{found['p99'] * 1000:.1f} ms",
                f"{found['cpu'] * 1000:.2f} ms",
                f"{found['worker_cpu'] * 1000:.2f} ms",
            ]
        )
    print(table(["executor", "p50", "p99", "CPU/task (all)", "CPU/task (worker)"], rows))
    added50 = costs["noop_process"]["p50"] - costs["noop_thread"]["p50"]
    added99 = costs["noop_process"]["p99"] - costs["noop_thread"]["p99"]
    added_cpu = costs["noop_process"]["cpu"] - costs["noop_thread"]["cpu"]
    print(
        f"added by the process hop: p50 {added50 * 1000:.1f} ms, p99 {added99 * 1000:.1f} ms, "
        f"CPU {added_cpu * 1000:.2f} ms per task"
    )

    print(f"\ncancellation: {cancels['cancels']} ignoring process activities, grace {GRACE:g} s")
    print(
        table(
            ["from the cancel request to", "p50", "max"],
            [
                ["PID gone", f"{cancels['gone_p50']:.2f} s", f"{cancels['gone_max']:.2f} s"],
                [
                    "ActivityTaskCanceled",
                    f"{cancels['canceled_p50']:.2f} s",
                    f"{cancels['canceled_max']:.2f} s",
                ],
            ],
        )
    )
    bound = GRACE + 1.0
    print(
        f"answered canceled: {cancels['canceled']}/{cancels['cancels']}; PID gone within "
        f"grace + 1 s = {bound:g} s: {'met' if cancels['gone_max'] <= bound else 'MISSED'}"
    )
    print(
        f"children of the worker: {cancels['children_before']} before, "
        f"{cancels['children_after']} after the cancels (the pool and multiprocessing's "
        f"resource tracker); activity processes left once the worker stopped: "
        f"{cancels['children_stopped']}"
    )

    print("\nmemory with the pool idle (RSS)")
    print(
        table(
            ["worker", "processes", "worker RSS", "children RSS", "total"],
            [
                [
                    label,
                    rss[f"{label}: processes"],
                    f"{rss[f'{label}: worker'] / 1024:.1f} MiB",
                    f"{rss[f'{label}: children'] / 1024:.1f} MiB",
                    f"{(rss[f'{label}: worker'] + rss[f'{label}: children']) / 1024:.1f} MiB",
                ]
                for label in ("threads only", "pool of 2")
            ],
        )
    )
    ok = (
        cancels["canceled"] == cancels["cancels"]
        and cancels["children_stopped"] == 0
        and cancels["children_after"] == cancels["children_before"]
    )
    return 0 if ok else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="work per CPU-bound task")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each executor")
    parser.add_argument("--noops", type=int, default=200)
    parser.add_argument("--cancels", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat, args.noops, args.cancels = 0.3, 1, 20, 8
    return args


if __name__ == "__main__":
    run_script(main, parse())
