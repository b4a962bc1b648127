"""What the benchmarks share: the dev server process, a fast decider, the measured child
process, and the printing of results.

Three processes take part in every measurement, so that nothing is counted where it does
not belong: the dev server (``_server.py``), the benchmark itself (it decides: schedules and
cancels activities, reads histories), and the measured worker (``_child.py``), which reports
its own CPU time and RSS when asked.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

Json = dict[str, Any]

HERE = Path(__file__).resolve().parent
DOMAIN = "bench"
WORKFLOW_TYPE: Json = {"name": "bench-workflow", "version": "1"}
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
CHILD_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}
MAX_OPEN_ACTIVITIES = 1000
"""SWF's limit of open activities per workflow execution."""


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}, "
        f"load average {load:.2f} at start"
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    lines = []
    for number, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


# -- the dev server ----------------------------------------------------------------------


class Server:
    """The dev server process, started by :func:`dev_server`."""

    def __init__(self, process: subprocess.Popen[str], url: str, stats_url: str) -> None:
        self.process = process
        self.url = url
        self.stats_url = stats_url

    def stats_now(self) -> Json:
        with urllib.request.urlopen(self.stats_url, timeout=30) as reply:
            result: Json = json.loads(reply.read())
            return result

    async def stats(self) -> Json:
        return await anyio.to_thread.run_sync(self.stats_now)


@asynccontextmanager
async def dev_server(poll_timeout: float = 5.0) -> AsyncIterator[Server]:
    process = subprocess.Popen(  # noqa: ASYNC220 (once, before anything is measured)
        [sys.executable, str(HERE / "_server.py"), "--poll-timeout", str(poll_timeout)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await anyio.to_thread.run_sync(process.stdout.readline)
        parts = line.split()
        if len(parts) != 2:
            raise RuntimeError(f"the dev server did not start: {line!r}")
        yield Server(process, parts[0], parts[1])
    finally:
        process.terminate()
        process.wait(30)


# -- the decider -------------------------------------------------------------------------


class Decider:
    """Schedules and cancels activities in bulk: each workflow execution gets a decision
    task list of its own and is driven by hand, up to 1000 activities per decision."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def setup(self, activity_types: Sequence[Json]) -> None:
        errors = self.client.exceptions
        with suppress(errors.DomainAlreadyExistsFault):
            await self.client.register_domain(
                name=DOMAIN, workflowExecutionRetentionPeriodInDays="1"
            )
        with suppress(errors.TypeAlreadyExistsFault):
            await self.client.register_workflow_type(
                domain=DOMAIN,
                name=WORKFLOW_TYPE["name"],
                version=WORKFLOW_TYPE["version"],
                defaultTaskList={"name": "bench-decisions"},
                defaultExecutionStartToCloseTimeout="86400",
                defaultTaskStartToCloseTimeout="3600",
                defaultChildPolicy="TERMINATE",
            )
        for activity_type in activity_types:
            with suppress(errors.TypeAlreadyExistsFault):
                await self.client.register_activity_type(
                    domain=DOMAIN,
                    name=activity_type["name"],
                    version=activity_type.get("version", "1"),
                    defaultTaskList={"name": "bench-unused"},
                    defaultTaskHeartbeatTimeout=str(activity_type.get("heartbeat", 60)),
                    defaultTaskScheduleToStartTimeout="NONE",
                    defaultTaskScheduleToCloseTimeout="NONE",
                    defaultTaskStartToCloseTimeout="NONE",
                )

    async def _decision_task(self, execution: Json) -> Json:
        while True:
            task: Json = await self.client.poll_for_decision_task(
                domain=DOMAIN, taskList={"name": execution["decisions"]}, identity="bench"
            )
            if task.get("taskToken"):
                return task

    async def schedule(
        self,
        count: int,
        *,
        activity_type: Json,
        task_list: str,
        heartbeat_timeout: float | None = None,
        input: str | None = None,
        per_execution: int = MAX_OPEN_ACTIVITIES,
    ) -> list[Json]:
        """Schedule ``count`` activities in executions of ``per_execution`` each."""
        executions = []
        scheduled = 0
        while scheduled < count:
            batch = min(per_execution, count - scheduled)
            decisions = f"decisions-{uuid.uuid4().hex[:10]}"
            workflow_id = f"bench-{uuid.uuid4().hex[:12]}"
            started = await self.client.start_workflow_execution(
                domain=DOMAIN,
                workflowId=workflow_id,
                workflowType=WORKFLOW_TYPE,
                taskList={"name": decisions},
            )
            execution = {
                "workflowId": workflow_id,
                "runId": started["runId"],
                "decisions": decisions,
                "activity_ids": [f"a{scheduled + index}" for index in range(batch)],
            }
            task = await self._decision_task(execution)
            attributes: Json = {
                "activityType": {"name": activity_type["name"], "version": "1"},
                "taskList": {"name": task_list},
                "scheduleToStartTimeout": "NONE",
                "scheduleToCloseTimeout": "NONE",
                "startToCloseTimeout": "NONE",
                "heartbeatTimeout": "NONE"
                if heartbeat_timeout is None
                else str(int(heartbeat_timeout)),
            }
            if input is not None:
                attributes["input"] = input
            await self.client.respond_decision_task_completed(
                taskToken=task["taskToken"],
                decisions=[
                    {
                        "decisionType": "ScheduleActivityTask",
                        "scheduleActivityTaskDecisionAttributes": {
                            **attributes,
                            "activityId": activity_id,
                        },
                    }
                    for activity_id in execution["activity_ids"]
                ],
            )
            executions.append(execution)
            scheduled += batch
        return executions

    async def request_cancel(self, execution: Json, activity_ids: Sequence[str]) -> None:
        """Decide RequestCancelActivityTask for ``activity_ids`` in one decision (a signal
        makes sure a decision task exists)."""
        await self.client.signal_workflow_execution(
            domain=DOMAIN,
            workflowId=execution["workflowId"],
            runId=execution["runId"],
            signalName="cancel",
        )
        task = await self._decision_task(execution)
        await self.client.respond_decision_task_completed(
            taskToken=task["taskToken"],
            decisions=[
                {
                    "decisionType": "RequestCancelActivityTask",
                    "requestCancelActivityTaskDecisionAttributes": {"activityId": activity_id},
                }
                for activity_id in activity_ids
            ],
        )

    async def history(self, execution: Json) -> list[Json]:
        events: list[Json] = []
        token = None
        while True:
            extra = {"nextPageToken": token} if token else {}
            page = await self.client.get_workflow_execution_history(
                domain=DOMAIN,
                execution={"workflowId": execution["workflowId"], "runId": execution["runId"]},
                maximumPageSize=1000,
                **extra,
            )
            events.extend(page["events"])
            token = page.get("nextPageToken")
            if not token:
                return events

    async def count_events(self, executions: Sequence[Json], event_type: str) -> int:
        total = 0
        for execution in executions:
            total += sum(1 for e in await self.history(execution) if e["eventType"] == event_type)
        return total

    async def terminate(self, executions: Sequence[Json]) -> None:
        for execution in executions:
            with suppress(self.client.exceptions.UnknownResourceFault):
                await self.client.terminate_workflow_execution(
                    domain=DOMAIN,
                    workflowId=execution["workflowId"],
                    runId=execution["runId"],
                    childPolicy="TERMINATE",
                )


@asynccontextmanager
async def decider(server: Server, activity_types: Sequence[Json]) -> AsyncIterator[Decider]:
    config = AioConfig(read_timeout=120, connect_timeout=10, retries={"total_max_attempts": 1})
    async with get_session().create_client(
        "swf", region_name="us-east-1", endpoint_url=server.url, config=config, **CREDENTIALS
    ) as client:
        result = Decider(client)
        await result.setup(activity_types)
        yield result


# -- the measured child ------------------------------------------------------------------


class Child:
    """A measured worker process (``_child.py``): it answers ``sample`` with its figures."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self._lines = b""

    async def _line(self) -> Json:
        stream = self.process.stdout
        assert stream is not None
        while b"\n" not in self._lines:
            chunk = await stream.receive()
            self._lines += chunk
        line, self._lines = self._lines.split(b"\n", 1)
        result: Json = json.loads(line)
        return result

    async def sample(self) -> Json:
        assert self.process.stdin is not None
        await self.process.stdin.send(b"sample\n")
        return await self._line()

    async def wait_for(self, key: str, at_least: int, timeout: float) -> Json:
        return await self.wait_until(lambda sample: sample[key] >= at_least, timeout)

    async def wait_until(self, test: Callable[[Json], bool], timeout: float) -> Json:
        """Sample every 0.25 s until ``test`` holds for a sample; return that sample."""
        with anyio.fail_after(timeout):
            found = await self.sample()
            while not test(found):
                await anyio.sleep(0.25)
                found = await self.sample()
            return found

    async def finish(self) -> Json:
        """Wait for the child's final line (it writes one when ``--exit-after`` is met)."""
        return await self._line()


@asynccontextmanager
async def child(
    server: Server, mode: str, task_list: str, *arguments: str, env: Json | None = None
) -> AsyncIterator[Child]:
    command = [
        sys.executable,
        str(HERE / "_child.py"),
        mode,
        "--endpoint-url",
        server.url,
        "--task-list",
        task_list,
        *arguments,
    ]
    environment = {**os.environ, **CHILD_ENV, **(env or {})}
    process = await anyio.open_process(command, env=environment, stderr=None)
    result = Child(process)
    try:
        await result._line()  # "ready"
        yield result
    finally:
        if process.returncode is None:
            try:
                assert process.stdin is not None
                await process.stdin.send(b"stop\n")
                with anyio.move_on_after(20):
                    await process.wait()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            if process.returncode is None:
                process.kill()
                await process.wait()


def now() -> float:
    return time.time()


def run_script(main: Callable[[Any], Awaitable[int]], args: Any) -> None:
    """Run a benchmark's ``main(args)``, say how long it took, exit with its status."""
    import anyio

    started = time.monotonic()
    code = anyio.run(main, args)
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(code)
