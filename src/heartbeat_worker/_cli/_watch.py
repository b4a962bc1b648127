"""What ``heartbeat-worker execute`` shows while it waits: a live line, and a warning.

SWF tells a decider nothing between scheduling an activity and its end (``ActivityTaskStarted``
schedules no decision task), so a silent ``execute`` cannot tell "running" from "nobody is
polling that task list". The watch reads the history's newest events (newest first, one
small page) to learn whether the task started and which worker identity took it; against
the dev server it also reads ``/status.json`` for the latest heartbeat details and the open
polls. SWF exposes neither, so against AWS the line says so, and the warning uses
``CountPendingActivityTasks`` instead.

The live line is redrawn in place, so it is drawn only on a terminal (or with
``--progress``); the warning is one ordinary line, written wherever stderr goes.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Any, Final, TextIO

import anyio

from .._decider import OneActivityWorkflow

__all__ = ["WARN_AFTER", "ExecutionWatch"]

WARN_AFTER: Final = 5.0
"""Seconds without ``ActivityTaskStarted`` before saying that nobody seems to take the task:
a polling worker takes a task within milliseconds."""

_REFRESH: Final = 0.5
"""Seconds between redraws of the live line; every read is one small call."""

_AWS_REFRESH: Final = 2.0
"""Seconds between reads against AWS, where ``GetWorkflowExecutionHistory`` is metered."""

_BAR: Final = 20


def bar(done: float, total: float) -> str:
    filled = round(_BAR * max(0.0, min(1.0, done / total)))
    return f"[{'#' * filled}{'.' * (_BAR - filled)}] {done:g}/{total:g}"


@dataclass
class _Seen:
    started_by: str | None = None
    started: bool = False
    details: str | None = None
    progress: dict[str, float] | None = None
    heartbeats: int | None = None


class ExecutionWatch:
    """Watch one execution of :class:`OneActivityWorkflow` until cancelled."""

    def __init__(
        self,
        client: Any,
        workflow: OneActivityWorkflow,
        *,
        endpoint_url: str | None,
        region: str | None,
        stream: TextIO,
        live: bool,
    ) -> None:
        self._client = client
        self._workflow = workflow
        self._endpoint_url = endpoint_url
        self._region = region
        self._stream = stream
        self._live = live
        self._started_at = time.monotonic()
        self._status_url: str | None = None
        self._drawn = False

    async def run(self) -> None:
        self._status_url = await self._find_status_page()
        refresh = _REFRESH if self._status_url is not None else _AWS_REFRESH
        warned = False
        try:
            while True:
                seen = await self._read()
                if self._live:
                    self._draw(self._line(seen))
                elapsed = time.monotonic() - self._started_at
                if not warned and not seen.started and elapsed >= WARN_AFTER:
                    warned = True
                    warning = await self._nobody_polling()
                    if warning is not None:
                        self.say(warning)
                if not self._live and (warned or seen.started):
                    return  # nothing more to show off a terminal
                await anyio.sleep(refresh)
        finally:
            self.clear()

    def say(self, line: str) -> None:
        """Print a line of its own (above the live line, which is redrawn after it)."""
        self.clear()
        print(line, file=self._stream, flush=True)

    def clear(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._drawn = False

    # -- reading ---------------------------------------------------------------------------

    async def _read(self) -> _Seen:
        seen = _Seen()
        try:
            page = await self._client.get_workflow_execution_history(
                domain=self._workflow.domain,
                execution=self._workflow.execution,
                reverseOrder=True,
                maximumPageSize=25,
            )
        except Exception:
            return seen  # a missed redraw; the decider reports real trouble
        for event in page.get("events", ()):
            kind = event["eventType"]
            if kind == "ActivityTaskStarted":
                attributes = event.get("activityTaskStartedEventAttributes", {})
                seen.started, seen.started_by = True, attributes.get("identity")
                break
            if kind == "ActivityTaskScheduled":
                break  # the newest attempt has not started
        if self._status_url is not None:
            task = await self._dev_server_task()
            if task is not None:
                seen.details = task.get("details")
                seen.progress = task.get("progress")
                seen.heartbeats = task.get("heartbeats")
        return seen

    async def _find_status_page(self) -> str | None:
        """The dev server's ``/status.json``, if the endpoint is a dev server."""
        if not self._endpoint_url:
            return None
        url = self._endpoint_url.rstrip("/") + "/status.json"
        return url if await self._get_json(url) is not None else None

    async def _get_json(self, url: str) -> dict[str, Any] | None:
        import aiohttp

        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                if response.status != 200:
                    return None
                data = await response.json()
        except Exception:
            return None
        return data if isinstance(data, dict) and "activity_tasks" in data else None

    async def _dev_server_task(self) -> dict[str, Any] | None:
        assert self._status_url is not None
        status = await self._get_json(self._status_url)
        if status is None:
            return None
        for task in status["activity_tasks"]:
            if task.get("run_id") == self._workflow.run_id:
                found: dict[str, Any] = task
                return found
        return None

    async def _nobody_polling(self) -> str | None:
        """The warning when the task has waited :data:`WARN_AFTER` seconds, if it is due."""
        request = self._workflow.request
        domain = self._workflow.domain
        start = (
            "start one: heartbeat-worker run MODULE "
            f"--domain {domain} --task-list {request.task_list}"
        )
        if self._endpoint_url:
            start += f" --endpoint-url {self._endpoint_url}"
        elif self._region:
            start += f" --region {self._region}"
        waited = f"warning: nothing has started the task after {WARN_AFTER:g} s"
        if self._status_url is not None:
            status = await self._get_json(self._status_url)
            polls = [
                poll
                for poll in (status or {}).get("polls", ())
                if poll.get("kind") == "activity"
                and poll.get("domain") == domain
                and poll.get("task_list") == request.task_list
            ]
            if status is None or "polls" not in status or polls:
                return None
            return f"{waited}: no worker is polling task list {request.task_list!r}; {start}"
        try:
            counted = await self._client.count_pending_activity_tasks(
                domain=domain, taskList={"name": request.task_list}
            )
        except Exception:
            return f"{waited}; is a worker polling task list {request.task_list!r}? {start}"
        return (
            f"{waited}: {counted['count']} task(s) wait in task list {request.task_list!r} "
            f"(SWF does not say whether a worker polls it); {start}"
        )

    # -- drawing ---------------------------------------------------------------------------

    def _line(self, seen: _Seen) -> str:
        elapsed = time.monotonic() - self._started_at
        parts = [f"attempt {max(1, self._workflow.attempts)}"]
        if seen.started:
            parts.append(f"started by {seen.started_by or 'a worker'}")
        else:
            parts.append("scheduled, waiting for a worker")
        parts.append(f"{elapsed:.1f} s")
        if seen.started:
            if self._status_url is None:
                parts.append("heartbeat details: SWF does not expose them while a task runs")
            elif seen.progress is not None:
                parts.append(bar(seen.progress["done"], seen.progress["total"]))
            elif seen.details is not None:
                parts.append(f"details {seen.details}")
            elif seen.heartbeats is not None:
                parts.append(f"{seen.heartbeats} heartbeats, no details yet")
        return " · ".join(parts)

    def _draw(self, line: str) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self._stream.write("\r\x1b[2K" + line[:width])
        self._stream.flush()
        self._drawn = True
