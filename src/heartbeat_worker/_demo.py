"""``heartbeat-worker demo``: the whole mission in one command, on this machine only.

A dev server (in a thread of this process, on a loopback port), a worker serving the ETL
example, and the built-in decider run two jobs:

1. an ETL run to completion, its progress drawn live from the heartbeats the worker sends;
2. a second run, whose cancellation is requested once it is halfway: the activity rolls
   back its open batch and the run ends ``ActivityTaskCanceled``.

Then it summarises each run from its SWF history. Everything the progress line shows went
through SWF: the worker's heartbeats are observed on its SDK session, after the dev server
has acknowledged them (see :class:`HeartbeatTap`), never taken from the activity directly.
Worker and server logs go to a file, so that they do not drown the progress line.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Final, TextIO

import anyio
from aiobotocore.session import AioSession, get_session

from ._decider import ActivityRequest, OneActivityWorkflow, RunOutcome, RunStatus
from ._definition import Activity
from ._logging import token_hash
from ._swf import SWFClient, open_connection
from ._worker import Worker

__all__ = ["DemoError", "DemoSettings", "HeartbeatTap", "load_etl", "run_demo"]

DOMAIN: Final = "heartbeat-worker-demo"
TASK_LIST: Final = "demo-etl"
ETL_MODULE: Final = "examples.etl"

HEARTBEAT_TIMEOUT: Final = 3.0
"""Overrides the example's 30 s for these runs, so that the worker (resolving timeouts from
the history) beats every :data:`HEARTBEAT_FRACTION` of it, 0.15 s: a live line, and a
cancellation heard well before the second half of a run is done, even on a fast machine
(a heartbeat reply is the only way a worker hears of one)."""
HEARTBEAT_FRACTION: Final = 0.05

DEADLINE: Final = 120.0
"""The demo gives up after this long rather than hang; it normally takes a few seconds."""

_REFRESH: Final = 0.1
_BAR_WIDTH: Final = 20
_TAP_KEY: Final = "heartbeat_worker.demo.heartbeat"


class DemoError(Exception):
    """The demo cannot run, or a run did not end as it should; the message says why."""


@dataclass(frozen=True, slots=True)
class DemoSettings:
    rows: int = 200_000
    batch_size: int = 5_000
    cancel_at_percent: float = 50.0
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "heartbeat-worker-demo.log"
    )


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat SWF acknowledged: when, what it carried, and SWF's answer."""

    at: float
    details: Any
    cancel_requested: bool


class HeartbeatTap:
    """Records the heartbeats a worker sends, as SWF acknowledges them, per workflow.

    It hooks the worker's botocore session (``session.register``): the task a poll hands
    over maps a digest of its token to its workflow id, and each successful
    ``RecordActivityTaskHeartbeat`` adds the details it carried and the ``cancelRequested``
    SWF answered. Tokens themselves are never kept. Register before the worker creates its
    clients: botocore copies a session's handlers into each client at creation.
    """

    def __init__(self, session: AioSession) -> None:
        self.beats: dict[str, list[Beat]] = {}
        self._workflows: dict[str, str] = {}
        session.register("after-call.swf.PollForActivityTask", self._on_task)
        session.register("before-parameter-build.swf.RecordActivityTaskHeartbeat", self._on_send)
        session.register("after-call.swf.RecordActivityTaskHeartbeat", self._on_answer)

    def of(self, workflow_id: str) -> list[Beat]:
        return self.beats.get(workflow_id, [])

    def _on_task(self, parsed: dict[str, Any], **_: Any) -> None:
        token = parsed.get("taskToken")
        if token:
            workflow_id = parsed["workflowExecution"]["workflowId"]
            self._workflows[token_hash(token)] = workflow_id

    def _on_send(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_TAP_KEY] = (token_hash(params["taskToken"]), params.get("details"))

    def _on_answer(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        sent = context.get(_TAP_KEY)
        if sent is None or http_response.status_code != 200:
            return
        digest, details = sent
        workflow_id = self._workflows.get(digest)
        if workflow_id is None:
            return
        decoded = None if details is None else json.loads(details)
        beat = Beat(time.time(), decoded, bool(parsed.get("cancelRequested")))
        self.beats.setdefault(workflow_id, []).append(beat)


class ProgressLine:
    """A compact live line on a terminal; on anything else, a line per quarter done.

    :meth:`mark` leaves the current state on a line of its own, followed by a note saying
    what happened at that point; the live line goes on below.
    """

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.live = stream.isatty()
        self._printed_quarter = -1
        self._width = 0
        self._last_printed = ""

    def _text(self, beats: list[Beat]) -> str:
        details = next((b.details for b in reversed(beats) if b.details is not None), None)
        count = "1 beat" if len(beats) == 1 else f"{len(beats)} beats"
        return f"  {self.label}  {_describe_progress(details)}  {count}"

    def update(self, beats: list[Beat]) -> None:
        if self.live:
            self._draw(self._text(beats))
            return
        quarter = self._quarter(beats)
        if quarter > self._printed_quarter:
            self._printed_quarter = quarter
            self._print(self._text(beats))

    @staticmethod
    def _quarter(beats: list[Beat]) -> int:
        details = next((b.details for b in reversed(beats) if b.details is not None), None)
        return -1 if details is None else int(_percent(details) // 25)

    def mark(self, beats: list[Beat], note: str) -> None:
        text = self._text(beats)
        if self.live:
            self._draw(text)
            self.stream.write("\n")
            self._width = 0
        else:
            self._printed_quarter = self._quarter(beats)
            self._print(text)
        self._print(f"  {self.label}  {note}")

    def _print(self, text: str) -> None:
        if text != self._last_printed:
            print(text, file=self.stream, flush=True)
            self._last_printed = text

    def _draw(self, text: str) -> None:
        # A line that wraps cannot be redrawn with a carriage return.
        text = text[: shutil.get_terminal_size().columns - 1]
        padding = " " * max(0, self._width - len(text))
        self.stream.write(f"\r{text}{padding}")
        self.stream.flush()
        self._width = len(text)


def _percent(details: Any) -> float:
    try:
        return float(details.get("percent", 0.0))
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _describe_progress(details: Any) -> str:
    if not isinstance(details, dict):
        return "[" + "." * _BAR_WIDTH + "]  no progress reported yet"
    percent = _percent(details)
    filled = min(_BAR_WIDTH, round(_BAR_WIDTH * percent / 100))
    bar = "[" + "#" * filled + "-" * (_BAR_WIDTH - filled) + "]"
    text = f"{bar} {percent:5.1f}%"
    if isinstance(details.get("rows_done"), int):
        text += f"  {details['rows_done']:,} rows"
    if "batch" in details and "batches" in details:
        text += f"  batch {details['batch']}/{details['batches']}"
    return text


def load_etl() -> Activity[..., Any]:
    """The ETL example's activity, imported from the current directory (a checkout)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(ETL_MODULE)
    except ImportError as error:
        raise DemoError(
            f"cannot import {ETL_MODULE} ({error}); run the demo from the root of a "
            "heartbeat-worker checkout, as `make demo` does"
        ) from None
    activity = getattr(module, "etl", None)
    if not isinstance(activity, Activity):
        raise DemoError(f"{ETL_MODULE} has no `etl` activity")
    return activity


@dataclass(slots=True)
class RunReport:
    label: str
    outcome: RunOutcome
    beats: list[Beat]
    target: Path


async def run_demo(settings: DemoSettings, out: TextIO) -> int:
    """Run both jobs and print their summaries; 0 when each ended as it should."""
    from .devserver import DevServer

    etl = load_etl()
    started = time.monotonic()
    with (
        anyio.fail_after(DEADLINE),
        tempfile.TemporaryDirectory(prefix="heartbeat-worker-demo-") as workdir,
    ):
        async with DevServer(poll_timeout=5.0).in_thread() as server:
            print(f"dev server   {server.endpoint_url} (in this process, loopback only)", file=out)
            print(f"logs         {settings.log_path}", file=out)
            print(f"databases    {workdir} (removed at the end)", file=out)
            # The dev server takes any credentials. Setting some here keeps the SDK from
            # looking for real ones, which may mean asking an instance metadata endpoint.
            session, decider_session = _local_session(), _local_session()
            tap = HeartbeatTap(session)
            worker = Worker(
                DOMAIN,
                TASK_LIST,
                [etl],
                endpoint_url=server.endpoint_url,
                region="us-east-1",
                session=session,
                register_types=True,
                resolve_timeouts="history",
                heartbeat_fraction=HEARTBEAT_FRACTION,
                graceful_shutdown_timeout=5.0,
                poll_read_timeout=15.0,
            )
            async with (
                worker,
                open_connection(
                    endpoint_url=server.endpoint_url, region="us-east-1", session=decider_session
                ) as swf,
            ):
                name, version = etl.activity_type.key
                print(
                    f"worker       serving {name} v{version} on task list {TASK_LIST!r}, "
                    f"domain {DOMAIN!r}\n",
                    file=out,
                )
                source = Path(workdir) / "orders.db"
                reports = []
                for label, cancel_at in (("run 1", None), ("run 2", settings.cancel_at_percent)):
                    job = {
                        "source": str(source),
                        "target": str(Path(workdir) / f"{label.replace(' ', '')}.db"),
                        "rows": settings.rows,
                        "batch_size": settings.batch_size,
                    }
                    if cancel_at is None:
                        print(f"{label}: ETL of {settings.rows:,} orders, to completion", file=out)
                    else:
                        print(
                            f"{label}: the same ETL, cancelled once {cancel_at:g}% done",
                            file=out,
                        )
                    report = await _run(
                        swf.call_client,
                        etl=etl,
                        label=label,
                        job=job,
                        tap=tap,
                        out=out,
                        cancel_at_percent=cancel_at,
                    )
                    reports.append(report)
                    print(file=out)
            for report in reports:
                print_summary(report, out)
    expected = (RunStatus.COMPLETED, RunStatus.CANCELED)
    statuses = tuple(report.outcome.status for report in reports)
    print(f"demo finished in {time.monotonic() - started:.1f} s", file=out)
    if statuses != expected:
        got = ", ".join(status.value for status in statuses)
        hint = ""
        if statuses[1:] == (RunStatus.COMPLETED,):
            hint = " (the second run finished before it heard of its cancellation: try --rows)"
        raise DemoError(f"the runs ended {got}; expected completed, then canceled{hint}")
    return 0


def _local_session() -> AioSession:
    session = get_session()
    session.set_credentials("heartbeat-worker-demo", "heartbeat-worker-demo")
    return session


async def _run(
    client: SWFClient,
    *,
    etl: Activity[..., Any],
    label: str,
    job: dict[str, Any],
    tap: HeartbeatTap,
    out: TextIO,
    cancel_at_percent: float | None,
) -> RunReport:
    name, version = etl.activity_type.key
    request = ActivityRequest(
        name,
        TASK_LIST,
        version=version,
        input=json.dumps(job),
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        start_to_close_timeout=300,
    )
    workflow = OneActivityWorkflow(
        client,
        DOMAIN,
        request,
        workflow_id=f"demo-{label.replace(' ', '')}-{uuid.uuid4().hex[:8]}",
        execution_timeout=600,
    )
    await workflow.start()
    line = ProgressLine(out, label)
    cancel_sent = False

    async def watch() -> None:
        nonlocal cancel_sent
        while True:
            beats = tap.of(workflow.workflow_id)
            if cancel_at_percent is not None and not cancel_sent:
                latest = next((b.details for b in reversed(beats) if b.details), None)
                if latest is not None and _percent(latest) >= cancel_at_percent:
                    cancel_sent = True
                    line.mark(beats, "cancellation requested")
                    group.start_soon(workflow.request_cancel)
            line.update(beats)
            await anyio.sleep(_REFRESH)

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        outcome = await workflow.run()
        group.cancel_scope.cancel()
    beats = tap.of(workflow.workflow_id)
    line.mark(beats, outcome.status.value)
    return RunReport(label, outcome, list(beats), Path(job["target"]))


def print_summary(report: RunReport, out: TextIO) -> None:
    outcome = report.outcome
    events = outcome.events
    origin = events[0].timestamp if events else None
    duration = "" if outcome.duration is None else f" in {outcome.duration:.2f} s"
    attempts = "1 attempt" if outcome.attempts == 1 else f"{outcome.attempts} attempts"
    print(f"{report.label}: {outcome.status.value}{duration} ({attempts})", file=out)
    print(f"  workflow     {outcome.workflow_id}", file=out)
    if outcome.result is not None:
        print(f"  result       {outcome.result}", file=out)
    if outcome.status is RunStatus.CANCELED:
        print(f"  details      {outcome.details}", file=out)
    elif outcome.status is not RunStatus.COMPLETED:
        print(f"  reason       {outcome.reason}", file=out)
        print(f"  details      {outcome.details}", file=out)
    beats = report.beats
    text = f"{len(beats)} sent"
    if len(beats) > 1:
        text += f", every {(beats[-1].at - beats[0].at) / (len(beats) - 1):.2f} s on average"
    print(f"  heartbeats   {text}", file=out)
    if outcome.status is RunStatus.CANCELED:
        _print_cancellation(report, out)
    if origin is not None:
        clock = origin.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]
        print(f"  events       (seconds after {clock} UTC)", file=out)
        for event in events:
            offset = (event.timestamp - origin).total_seconds()
            print(f"    {offset:7.3f}  {event.event_type}", file=out)
    print(file=out)


def _print_cancellation(report: RunReport, out: TextIO) -> None:
    outcome = report.outcome
    requested = outcome.last("ActivityTaskCancelRequested")
    told = next((b for b in report.beats if b.cancel_requested), None)
    if requested is not None and told is not None:
        heard = told.at - requested.timestamp.timestamp()
        print(
            f"  cancel       the worker heard of it {heard:.2f} s after SWF recorded the "
            "request (a heartbeat reply)",
            file=out,
        )
    if outcome.cancel_latency is not None:
        print(
            f"  latency      {outcome.cancel_latency:.2f} s from ActivityTaskCancelRequested "
            "to ActivityTaskCanceled",
            file=out,
        )
    rows = _rows_in(report.target)
    try:
        reported = json.loads(outcome.details or "null")["rows_done"]
    except (TypeError, KeyError, ValueError):
        reported = None
    if rows is not None and reported is not None:
        verdict = (
            "its last commit: the open batch was rolled back"
            if rows == reported
            else (f"but the cancel details say {reported:,}")
        )
        print(f"  target       holds {rows:,} rows, {verdict}", file=out)


def _rows_in(target: Path) -> int | None:
    """Rows the target holds (the example's ``facts`` table), if it can be read."""
    try:
        connection = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return int(connection.execute("SELECT COUNT(*) FROM facts").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        connection.close()
