"""The measured worker of ``process_executor.py``: a Worker serving the activities of
``_process_activities.py`` (with ``--threads-only``, only the thread ones, so that no
process pool starts).

It writes one JSON line when ready and one for each ``sample`` line on stdin: the CPU time
and RSS of the worker process and, separately, of its activity processes (the CPU of those
that ended is counted too, from the kernel's tally of reaped children), the children's
PIDs, and the tasks handled. ``stop`` (or the end of stdin) shuts the worker down
gracefully and writes a last line once it has stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from aiobotocore.session import get_session

import _process_activities
from _common import CREDENTIALS, DOMAIN
from heartbeat_worker import Worker, configure_logging

TICKS = os.sysconf("SC_CLK_TCK")
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 (the log sink, for the life of the process)


def rss_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_of(pid: int) -> float:
    """User and system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(child) for child in (task / "children").read_text().split())
    return sorted(found)


def is_tracker(pid: int) -> bool:
    """Whether ``pid`` is multiprocessing's resource tracker (it ends after the worker)."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def sample(worker: Worker, **extra: Any) -> str:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = children_of(os.getpid())
    return json.dumps(
        {
            "cpu": own.ru_utime + own.ru_stime,
            "children_cpu": reaped.ru_utime
            + reaped.ru_stime
            + sum(cpu_of(pid) for pid in children),
            "rss": rss_kib(),
            "children_rss": sum(rss_kib(pid) for pid in children),
            "pool": worker.process_ids,
            "children": children,
            "activity_children": [pid for pid in children if not is_tracker(pid)],
            "running": len(worker.executions),
            "handled": worker.handled,
            "outcomes": worker.outcomes,
            "time": time.time(),
            **extra,
        }
    )


def write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    configure_logging("json", logging.WARNING, stream=DEVNULL)
    session = get_session()
    session.set_credentials(CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
    activities = _process_activities.ALL
    if args.threads_only:
        activities = [a for a in activities if a.executor == "thread"]
    worker = Worker(
        DOMAIN,
        args.task_list,
        activities,
        endpoint_url=args.endpoint_url,
        region="us-east-1",
        session=session,
        max_concurrency=args.concurrency,
        max_processes=args.processes,
        cancel_grace_period=args.cancel_grace_period,
        graceful_shutdown_timeout=1.0,
    )
    async with worker:
        write(sample(worker, ready=True))
        while (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() == "sample":
            write(sample(worker))
    # The worker has shut down, and its activity processes with it.
    write(sample(worker, stopped=True))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--task-list", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=None)
    parser.add_argument("--cancel-grace-period", type=float, default=1.0)
    parser.add_argument("--threads-only", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    anyio.run(main, parse())
