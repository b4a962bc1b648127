"""Stall detection: how long a stuck activity keeps its task before it is failed ``stalled``.

Activities that stop calling ``heartbeat()`` (one stuck in ``time.sleep`` in its thread, one
awaiting an event that never fires) run under a worker with a 2 s progress timeout, a 3 s
heartbeat timeout (so a 1 s heartbeat interval) and a 0.5 s cancel grace period, against
the dev server process. For each task, the time from ``ActivityTaskStarted`` to
``ActivityTaskFailed`` is read from the history (the server's clock). The goal is the bound
of the issue: progress timeout + heartbeat interval + 1 s = 4 s, for every task, with the
reason starting ``stalled:``. Without stall detection, these tasks would never end: the
automatic heartbeats keep them alive (the baseline row shows one, still open after the
measurement).

    python benchmarks/stall_detection.py [--activities 20] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import threading
import time
from typing import Any

import anyio

from _common import DOMAIN, decider, dev_server, machine, run_script, table
from heartbeat_worker import Worker, activity, configure_logging, heartbeat

PROGRESS_TIMEOUT = 2.0
HEARTBEAT_TIMEOUT = 3
INTERVAL = HEARTBEAT_TIMEOUT / 3
GRACE = 0.5
BOUND = PROGRESS_TIMEOUT + INTERVAL + 1.0
TASK_LIST = "bench-stalls"

_release = threading.Event()


@activity(name="stuck_thread", heartbeat_timeout=HEARTBEAT_TIMEOUT)
def stuck_thread() -> None:
    heartbeat({"step": 1})
    while not _release.is_set():
        time.sleep(0.05)


@activity(name="stuck_event", heartbeat_timeout=HEARTBEAT_TIMEOUT)
async def stuck_event() -> None:
    heartbeat({"step": 1})
    await anyio.Event().wait()


@activity(name="stuck_unwatched", heartbeat_timeout=HEARTBEAT_TIMEOUT, progress_timeout=1e9)
async def stuck_unwatched() -> None:
    await anyio.Event().wait()


def _times(events: list[dict[str, Any]]) -> dict[int, tuple[Any, Any, str]]:
    """scheduled event id -> (started, failed, reason)."""
    started: dict[int, Any] = {}
    result: dict[int, tuple[Any, Any, str]] = {}
    for event in events:
        kind = event["eventType"]
        if kind == "ActivityTaskStarted":
            attributes = event["activityTaskStartedEventAttributes"]
            started[attributes["scheduledEventId"]] = event["eventTimestamp"]
        elif kind == "ActivityTaskFailed":
            attributes = event["activityTaskFailedEventAttributes"]
            scheduled = attributes["scheduledEventId"]
            result[scheduled] = (started[scheduled], event["eventTimestamp"], attributes["reason"])
    return result


async def main(args: argparse.Namespace) -> int:
    count = args.activities
    print(
        f"stall detection: {count} activities of each kind, progress timeout "
        f"{PROGRESS_TIMEOUT:g} s, heartbeat interval {INTERVAL:g} s, grace {GRACE:g} s; "
        f"goal: failed 'stalled' within {BOUND:g} s of the start"
    )
    print(f"machine: {machine()}")
    types = [
        {"name": name, "heartbeat": HEARTBEAT_TIMEOUT}
        for name in ("stuck_thread", "stuck_event", "stuck_unwatched")
    ]
    rows = []
    ok = True
    async with dev_server() as server, decider(server, types) as bench:
        worker = Worker(
            DOMAIN,
            TASK_LIST,
            [stuck_thread, stuck_event, stuck_unwatched],
            endpoint_url=server.url,
            region="us-east-1",
            max_concurrency=2 * count + 1,
            progress_timeout=PROGRESS_TIMEOUT,
            cancel_grace_period=GRACE,
            graceful_shutdown_timeout=1.0,
        )
        try:
            async with worker:
                runs = {}
                for name in ("stuck_thread", "stuck_event"):
                    runs[name] = await bench.schedule(
                        count,
                        activity_type={"name": name},
                        task_list=TASK_LIST,
                        heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    )
                baseline = await bench.schedule(
                    1,
                    activity_type={"name": "stuck_unwatched"},
                    task_list=TASK_LIST,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                )
                with anyio.fail_after(60):
                    await worker.wait_handled(2 * count)
                for name, executions in runs.items():
                    measured = _times(await bench.history(executions[0]))
                    took = [
                        (failed - began).total_seconds() for began, failed, _ in measured.values()
                    ]
                    stalled = all(reason.startswith("stalled:") for *_, reason in measured.values())
                    met = len(took) == count and stalled and max(took) <= BOUND
                    ok = ok and met
                    rows.append(
                        (
                            name,
                            len(took),
                            f"{statistics.median(took):.2f}",
                            f"{max(took):.2f}",
                            "met" if met else "MISSED",
                        )
                    )
                open_left = len(worker.running_activities())
                rows.append(
                    (
                        "stuck_unwatched (no progress timeout)",
                        1,
                        "never",
                        "never",
                        f"{open_left} still running",
                    )
                )
                await bench.terminate([*baseline])
        finally:
            _release.set()
    print(table(["activity", "tasks", "median s", "max s", f"goal <= {BOUND:g} s"], rows))
    print(f"goal: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a smoke-size run")
    args = parser.parse_args()
    if args.quick:
        args.activities = 2
    return args


if __name__ == "__main__":
    # The worker's log (one stall WARNING with a stack per task) would bury the table.
    with open(os.devnull, "w") as devnull:
        configure_logging("json", logging.ERROR, stream=devnull)
        run_script(main, parse())
