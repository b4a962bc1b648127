"""The measured worker process of the benchmarks.

Modes:

``worker``
    a :class:`heartbeat_worker.Worker` serving the activities of ``_activities.py``;
``raw-throughput``
    the minimal hand-written aiobotocore loop: ``concurrency`` coroutines that each poll and
    answer ``RespondActivityTaskCompleted``, nothing else;
``raw-heartbeat``
    the minimal hand-written heartbeater: pollers hand every task to one coroutine that
    sleeps a jittered interval, calls ``RecordActivityTaskHeartbeat``, and answers
    ``RespondActivityTaskCanceled`` once the reply says ``cancelRequested``.

The process writes one JSON line when ready, and one for each ``sample`` line it reads on
stdin: its CPU time, wall clock, RSS and counters. ``stop`` ends it at once. With
``--exit-after N`` it writes a last sample and ends once N tasks were handled.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

import _activities
from _common import CREDENTIALS, DOMAIN
from heartbeat_worker import Worker, configure_logging
from heartbeat_worker._budget import DEFAULT_CEILING
from heartbeat_worker._swf import USER_AGENT

STATUS = Path("/proc/self/status")
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 (the log sink, for the life of the process)


def rss_kib() -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Figures:
    def __init__(self) -> None:
        self.running = 0
        self.handled = 0
        self.beats = 0
        self.counters: Callable[[], dict[str, Any]] = self._own_counters
        # Counted from here: after the imports, before the clients are created.
        self.cpu0 = time.process_time()
        self.wall0 = time.perf_counter()

    def _own_counters(self) -> dict[str, Any]:
        return {"running": self.running, "handled": self.handled, "beats": self.beats}

    def sample(self, **extra: Any) -> str:
        return json.dumps(
            {
                "cpu": time.process_time() - self.cpu0,
                "wall": time.perf_counter() - self.wall0,
                "rss": rss_kib(),
                **self.counters(),
                **extra,
            }
        )


def write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def control(figures: Figures) -> None:
    """Answer the benchmark's commands on stdin."""
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        command = line.strip()
        if command == "sample":
            write(figures.sample())
        elif command in ("stop", ""):
            sys.stdout.flush()
            os._exit(0)


def observability(args: argparse.Namespace) -> dict[str, Any]:
    """``--metrics``: Prometheus metrics served on a free port; ``--tracing``: a span per
    task through the OpenTelemetry SDK, exported in batches to an exporter that drops them
    (the cost of making and handing over the spans, not of a collector's network)."""
    options: dict[str, Any] = {}
    if args.metrics:
        from heartbeat_worker.metrics import Metrics

        options["metrics"] = Metrics(port=0)
    if args.tracing:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from heartbeat_worker.tracing import TracingInterceptor

        class Dropping(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropping()))
        options["interceptors"] = [TracingInterceptor(tracer_provider=provider)]
    return options


async def run_worker(args: argparse.Namespace, figures: Figures) -> None:
    level = getattr(logging, args.log_level.upper())
    configure_logging(args.log_format, level, stream=DEVNULL)
    session = get_session()
    session.set_credentials(CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
    worker = Worker(
        DOMAIN,
        args.task_list,
        [
            _activities.noop,
            _activities.sleep3,
            _activities.sleep10,
            _activities.sleep30,
            _activities.sleep60,
        ],
        endpoint_url=args.endpoint_url,
        region="us-east-1",
        session=session,
        max_concurrency=args.concurrency,
        pollers=args.pollers or args.concurrency,
        max_heartbeats_per_second=args.budget,
        heartbeat_ceiling=args.ceiling,
        admission_control=not args.no_admission,
        graceful_shutdown_timeout=0,
        **observability(args),
        # A benchmark registers only the types it schedules; the worker serves them all.
        register_types=True,
    )

    def counters() -> dict[str, Any]:
        status = worker.heartbeat_status
        return {
            "running": len(worker.executions),
            "handled": worker.handled,
            "beats": sum(e.heartbeater.beats_sent for e in worker.executions if e.heartbeater),
            "admitting": status is None or status.admitting,
            "lateness": [] if status is None else list(status.lateness_counts),
        }

    figures.counters = counters
    async with worker:
        write(figures.sample(ready=True))
        if args.exit_after:
            await worker.wait_handled(args.exit_after)
            write(figures.sample())
            os._exit(0)
        await anyio.sleep_forever()


def _client(args: argparse.Namespace, connections: int, read_timeout: float) -> Any:
    config = AioConfig(
        read_timeout=read_timeout,
        connect_timeout=10,
        max_pool_connections=connections,
        retries={"total_max_attempts": 1},
        # botocore's default User-Agent unless asked for the worker's (a like-for-like row)
        user_agent=USER_AGENT if args.worker_user_agent else None,
    )
    return get_session().create_client(
        "swf",
        region_name="us-east-1",
        endpoint_url=args.endpoint_url,
        config=config,
        **CREDENTIALS,
    )


async def run_raw_throughput(args: argparse.Namespace, figures: Figures) -> None:
    async with _client(args, args.concurrency, 70) as client:
        write(figures.sample(ready=True))

        async def loop() -> None:
            while True:
                task = await client.poll_for_activity_task(
                    domain=DOMAIN, taskList={"name": args.task_list}, identity="raw"
                )
                token = task.get("taskToken")
                if not token:
                    continue
                figures.running += 1
                await client.respond_activity_task_completed(taskToken=token)
                figures.running -= 1
                figures.handled += 1
                if figures.handled == args.exit_after:
                    write(figures.sample())
                    os._exit(0)

        async with anyio.create_task_group() as group:
            for _ in range(args.concurrency):
                group.start_soon(loop)


async def run_raw_heartbeat(args: argparse.Namespace, figures: Figures) -> None:
    pollers = args.pollers or 10
    async with (
        _client(args, pollers, 70) as poll_client,
        _client(args, min(args.concurrency + 4, 200), 30) as client,
    ):
        write(figures.sample(ready=True))

        async def heartbeat(token: str, interval: float) -> None:
            figures.running += 1
            try:
                await anyio.sleep(random.uniform(0.5, 1.0) * min(1.0, interval))
                while True:
                    reply = await client.record_activity_task_heartbeat(taskToken=token)
                    figures.beats += 1
                    if reply["cancelRequested"]:
                        await client.respond_activity_task_canceled(taskToken=token)
                        figures.handled += 1
                        return
                    await anyio.sleep(interval * random.uniform(0.8, 1.0))
            except ClientError:
                return  # closed: timed out or terminated
            finally:
                figures.running -= 1

        async with anyio.create_task_group() as group:

            async def poll() -> None:
                while True:
                    task = await poll_client.poll_for_activity_task(
                        domain=DOMAIN, taskList={"name": args.task_list}, identity="raw"
                    )
                    if task.get("taskToken"):
                        timeout = HEARTBEAT_TIMEOUTS[task["activityType"]["name"]]
                        interval = args.interval or timeout / 3
                        group.start_soon(heartbeat, task["taskToken"], interval)

            for _ in range(pollers):
                group.start_soon(poll)


HEARTBEAT_TIMEOUTS: dict[str, float] = {}


async def main(args: argparse.Namespace) -> None:
    HEARTBEAT_TIMEOUTS.update(_activities.HEARTBEAT_TIMEOUTS)
    figures = Figures()
    runner = {
        "worker": run_worker,
        "raw-throughput": run_raw_throughput,
        "raw-heartbeat": run_raw_heartbeat,
    }[args.mode]
    async with anyio.create_task_group() as group:
        group.start_soon(control, figures)
        await runner(args, figures)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("worker", "raw-throughput", "raw-heartbeat"))
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--task-list", required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--pollers", type=int, default=0, help="default: the concurrency")
    parser.add_argument("--budget", type=float, default=None, help="heartbeats per second")
    parser.add_argument(
        "--ceiling", type=float, default=DEFAULT_CEILING, help="worker: heartbeat_ceiling"
    )
    parser.add_argument(
        "--no-admission", action="store_true", help="worker: admission_control=False"
    )
    parser.add_argument("--interval", type=float, default=0.0, help="raw heartbeat interval")
    parser.add_argument("--exit-after", type=int, default=0)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="auto", choices=("auto", "console", "json"))
    parser.add_argument("--metrics", action="store_true", help="worker: Prometheus metrics on")
    parser.add_argument("--tracing", action="store_true", help="worker: OpenTelemetry spans on")
    parser.add_argument(
        "--worker-user-agent",
        action="store_true",
        help="raw modes: send the worker's User-Agent instead of botocore's default",
    )
    return parser.parse_args()


if __name__ == "__main__":
    anyio.run(main, parse())
