"""Soak: 200 activities heartbeating for 10 minutes while the dev server injects faults.

The dev server runs in a thread of this process with fault rules on the worker's calls
(heartbeats and answers: 5% throttled, 5% internal failures, 4% dropped connections, 1%
lost replies; polls: the same without lost replies; a tenth of all calls 100 ms late). The
measured worker is a process of its own (``_child.py worker``) serving ``sleep10``: a
sleeping activity with a 10 s heartbeat timeout. Once every activity runs, the worker is
watched for the soak's duration. Reported:

- heartbeats the server received, and those it refused (each one a retry for the worker);
- heartbeat timeouts (ActivityTaskTimedOut events; the goal is none);
- the worker's RSS once every activity runs and at the end (the goal: under 10% growth),
  sampled every minute along the way.

At the end every activity is cancelled, and the cancellations counted.

    python benchmarks/soak.py [--minutes 10] [--activities 200] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import Counter
from typing import Any

import anyio

from _common import child, decider, machine, table
from heartbeat_worker.devserver import DevServer, ThreadedDevServer

ACTIVITY = {"name": "sleep10", "heartbeat": 10}
WORKER_CALLS = [
    "RecordActivityTaskHeartbeat",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
]
HEARTBEAT = "RecordActivityTaskHeartbeat"


class _Endpoint:
    """What ``_common.child`` and ``_common.decider`` need of a server: its URL."""

    def __init__(self, url: str) -> None:
        self.url = url


def inject(server: ThreadedDevServer) -> None:
    faults = server.faults
    everything = [*WORKER_CALLS, "PollForActivityTask", "DescribeActivityType"]
    faults.add("throttle", operation=everything, probability=0.05)
    faults.add("error", operation=everything, probability=0.05)
    faults.add("drop", operation=everything, probability=0.04)
    faults.add("drop-reply", operation=WORKER_CALLS, probability=0.01)
    faults.add("latency", operation=everything, probability=0.1, latency=0.1)


async def main(args: argparse.Namespace) -> int:
    seconds = args.minutes * 60
    print(f"soak: {args.activities} activities, {args.minutes:g} min; {machine()}", flush=True)
    task_list = f"soak-{uuid.uuid4().hex[:8]}"
    async with DevServer(poll_timeout=5).in_thread() as server:
        endpoint = _Endpoint(server.endpoint_url)
        async with (
            decider(endpoint, [ACTIVITY]) as bulk,  # type: ignore[arg-type]
            child(
                endpoint,  # type: ignore[arg-type]
                "worker",
                task_list,
                "--concurrency",
                str(args.activities),
                "--pollers",
                "4",
                "--log-level",
                "warning",
            ) as worker,
        ):
            idle = await worker.sample()
            inject(server)
            executions = await bulk.schedule(
                args.activities, activity_type=ACTIVITY, task_list=task_list
            )
            first = await worker.wait_for("running", args.activities, timeout=120)
            faults = server.faults
            beats0 = faults.calls[HEARTBEAT]
            refused0 = _refused(faults.injected, HEARTBEAT)
            started = time.monotonic()
            samples = [(0.0, first["rss"], first["running"])]
            step = min(60.0, seconds / 5)
            while (elapsed := time.monotonic() - started) < seconds:
                await anyio.sleep(min(step, seconds - elapsed))
                found = await worker.sample()
                samples.append((time.monotonic() - started, found["rss"], found["running"]))
                print(
                    f"  {samples[-1][0]:6.0f} s  rss {found['rss'] / 1024:6.1f} MiB  "
                    f"running {found['running']}  heartbeats {faults.calls[HEARTBEAT] - beats0}",
                    flush=True,
                )
            last = samples[-1]
            beats = faults.calls[HEARTBEAT] - beats0
            refused = _refused(faults.injected, HEARTBEAT) - refused0
            injected = Counter(
                {
                    kind: faults.total(kind)
                    for kind in ("throttle", "error", "drop", "drop-reply", "latency")
                }
            )
            faults.clear()
            timed_out = await bulk.count_events(executions, "ActivityTaskTimedOut")
            for execution in executions:
                await bulk.request_cancel(execution, execution["activity_ids"])
            canceled = await _wait_canceled(bulk, executions, args.activities)
            await bulk.terminate(executions)
    growth = 100 * (last[1] - first["rss"]) / first["rss"]
    rows: list[tuple[str, Any]] = [
        ("activities running throughout", f"{min(s[2] for s in samples)} of {args.activities}"),
        ("duration", f"{last[0]:.0f} s"),
        ("heartbeats received by the server", beats),
        ("heartbeats refused (retried)", f"{refused} ({100 * refused / max(beats, 1):.1f}%)"),
        ("faults injected, all calls", dict(injected)),
        ("heartbeat timeouts (goal 0)", timed_out),
        ("worker RSS idle", f"{idle['rss'] / 1024:.1f} MiB"),
        ("worker RSS, all running", f"{first['rss'] / 1024:.1f} MiB"),
        ("worker RSS at the end", f"{last[1] / 1024:.1f} MiB ({growth:+.1f}%, goal < +10%)"),
        ("cancelled at the end", f"{canceled} of {args.activities}"),
    ]
    print(table(["figure", "value"], rows), flush=True)
    ok = timed_out == 0 and growth < 10 and canceled == args.activities
    print("soak:", "PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


def _refused(injected: Counter[tuple[str, str]], operation: str) -> int:
    return sum(n for (op, kind), n in injected.items() if op == operation and kind != "latency")


async def _wait_canceled(bulk: Any, executions: list[Any], expected: int) -> int:
    with anyio.move_on_after(120):
        # The history is the only place to learn of cancellations: read it every second.
        while (found := await bulk.count_events(executions, "ActivityTaskCanceled")) < expected:  # noqa: ASYNC110
            await anyio.sleep(1)
    return int(found)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--activities", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="1 minute, 50 activities")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.activities = 1.0, 50
    return args


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse()))
