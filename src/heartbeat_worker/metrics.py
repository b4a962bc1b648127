"""Prometheus metrics for a worker: ``Worker(metrics=Metrics(port=9100))``.

Everything here is built on the public interceptor hooks, plus two read-outs the worker
hands over when it starts (the loop watchdog's lag, the heartbeat budget). prometheus-client
is an optional extra (``pip install 'heartbeat-worker[metrics]'``), not a core dependency:
a worker that does not export metrics must not import it (about 20 ms of start-up and a
module graph of its own), and the core stays aiobotocore, anyio and structlog. Importing
this module is what opts in.

The metrics live in a registry of their own (unless one is given), so that several workers
in one process, or in one test run, never collide on names. Each labelled child is looked
up once and kept: a ``labels()`` call costs more than the increment it precedes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from ._interceptor import AnswerInput, ExecuteActivityInput, Interceptor, SWFCallInput
from ._probes import ProbeServer
from ._swf import error_code

if TYPE_CHECKING:
    from ._interceptor import TaskDescription
    from ._watchdog import LoopWatchdog
    from ._worker import Worker

__all__ = ["Metrics", "MetricsInterceptor"]

PREFIX = "heartbeat_worker"

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 70)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

_THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "ThrottledException", "RequestLimitExceeded"}
)

UTILIZATION_WINDOW = 10.0
"""Seconds over which the heartbeat budget's utilisation is averaged: long enough to smooth
the beats' jitter, short enough to show a burst."""


class Metrics:
    """The worker's Prometheus metrics, and (with a ``port``) the endpoint serving them.

    ``port`` serves ``/metrics``, ``/healthz`` and ``/readyz`` on the worker's loop (0: any
    free port, see :attr:`port`); without one, add :attr:`registry` to your own exporter.
    ``host`` is loopback by default: bind ``0.0.0.0`` only where the network is trusted (a
    pod's own IP for the kubelet and Prometheus). One instance serves one worker.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.probes: ProbeServer | None = None
        self._interceptor: MetricsInterceptor | None = None
        self._budget_gauge: Gauge | None = None
        self._progress_gauge: Gauge | None = None
        r = self.registry
        self.tasks = Counter(
            f"{PREFIX}_tasks",
            "Tasks finished, by outcome.",
            ["activity_type", "outcome"],
            registry=r,
        )
        self.task_duration = Histogram(
            f"{PREFIX}_task_duration_seconds",
            "Seconds from the poll reply to the answer sent.",
            ["activity_type", "outcome"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.activities_running = Gauge(
            f"{PREFIX}_activities_running",
            "Activity functions running now.",
            ["activity_type"],
            registry=r,
        )
        self.heartbeats = Counter(
            f"{PREFIX}_heartbeats",
            "RecordActivityTaskHeartbeat attempts, by result (ok, failed, throttled).",
            ["result"],
            registry=r,
        )
        self.heartbeat_lateness = Histogram(
            f"{PREFIX}_heartbeat_lateness_seconds",
            "How late each heartbeat left against its plan.",
            buckets=_LATENESS_BUCKETS,
            registry=r,
        )
        self.cancel_latency = Histogram(
            f"{PREFIX}_cancel_latency_seconds",
            "Seconds from the heartbeat reply carrying cancelRequested to the answer sent.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.polls = Counter(
            f"{PREFIX}_polls",
            "Polls finished, by result (task, empty, error).",
            ["result"],
            registry=r,
        )
        self.polls_open = Gauge(f"{PREFIX}_polls_open", "Polls open now.", registry=r)
        self.swf_calls = Counter(
            f"{PREFIX}_swf_calls",
            "SWF call attempts (retries included), by operation and result (ok or error code).",
            ["operation", "result"],
            registry=r,
        )
        self.swf_call_seconds = Histogram(
            f"{PREFIX}_swf_call_seconds",
            "Seconds per SWF call attempt.",
            ["operation"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.event_loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late the loop watchdog's 0.1 s tick woke up.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )

    @property
    def port(self) -> int | None:
        """The port serving, once the worker has started (the one bound, with port 0)."""
        return None if self.probes is None else self.probes.port

    def interceptor(self) -> MetricsInterceptor:
        """The interceptor feeding these metrics (the worker adds it itself)."""
        if self._interceptor is None:
            self._interceptor = MetricsInterceptor(self)
        return self._interceptor

    def render(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def serve(
        self,
        worker: Worker,
        watchdog: LoopWatchdog,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Called by the worker once it runs: hook up the watchdog and the budget, and serve
        the endpoint if a port was given."""
        watchdog.lag_observer = self.event_loop_lag.observe
        interceptor = self.interceptor()
        if self._progress_gauge is None:
            self._progress_gauge = Gauge(
                f"{PREFIX}_seconds_since_progress_max",
                "Seconds since the last heartbeat() of the running activity that reported "
                "progress longest ago (0 when none runs): a stall shows as a rising line.",
                registry=self.registry,
            )
            self._progress_gauge.set_function(lambda: _longest_without_progress(worker))
        rate = worker.max_heartbeats_per_second
        if rate is not None and self._budget_gauge is None:
            interceptor.track_budget(rate)
            self._budget_gauge = Gauge(
                f"{PREFIX}_heartbeat_budget_utilization",
                f"Heartbeat calls over the last {UTILIZATION_WINDOW:g} s, as a fraction of "
                "the heartbeat budget.",
                registry=self.registry,
            )
            self._budget_gauge.set_function(interceptor.budget_utilization)
            admission = Gauge(
                f"{PREFIX}_heartbeat_admission_open",
                "1 while the heartbeat budget admits one more task (the worker polls), 0 while "
                "it is full.",
                registry=self.registry,
            )
            admission.set_function(lambda: _heartbeat_figure(worker, "admitting"))
            needed = Gauge(
                f"{PREFIX}_heartbeats_needed_per_second",
                "Heartbeat calls per second that keep every running activity alive at the "
                "budget's ceiling.",
                registry=self.registry,
            )
            needed.set_function(lambda: _heartbeat_figure(worker, "needed_per_second"))
        if self.requested_port is None:
            task_status.started()
            return
        self.probes = ProbeServer(
            worker,
            watchdog,
            host=self.host,
            port=self.requested_port,
            render_metrics=self.render,
            reached_swf=lambda: interceptor.reached_swf,
        )
        await self.probes.serve(task_status=task_status)


def _heartbeat_figure(worker: Worker, name: str) -> float:
    """One figure of ``worker.heartbeat_status``, read when Prometheus scrapes."""
    status = worker.heartbeat_status
    return 0.0 if status is None else float(getattr(status, name))


def _longest_without_progress(worker: Worker) -> float:
    running = worker.running_activities()
    return max((activity.seconds_since_progress for activity in running), default=0.0)


class MetricsInterceptor(Interceptor):
    """Counts what the hooks see into a :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.reached_swf = False
        """Whether a poll (or another call) has come back from SWF without an error."""
        self._children: dict[tuple[Any, ...], Any] = {}
        self._cancel_seen: dict[TaskDescription, float] = {}
        self._budget_rate: float | None = None
        self._beats: deque[float] = deque()
        m = metrics
        self._beat_ok = m.heartbeats.labels("ok")
        self._beat_failed = m.heartbeats.labels("failed")
        self._beat_throttled = m.heartbeats.labels("throttled")
        self._polls_task = m.polls.labels("task")
        self._polls_empty = m.polls.labels("empty")
        self._polls_error = m.polls.labels("error")

    def _child(self, key: tuple[Any, ...], metric: Any, *labels: str) -> Any:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- budget ----------------------------------------------------------------------------

    def track_budget(self, rate: float) -> None:
        self._budget_rate = rate

    def budget_utilization(self) -> float:
        if not self._budget_rate:
            return 0.0
        beats, horizon = self._beats, time.monotonic() - UTILIZATION_WINDOW
        while beats and beats[0] < horizon:
            beats.popleft()
        return len(beats) / (UTILIZATION_WINDOW * self._budget_rate)

    # -- hooks -----------------------------------------------------------------------------

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        gauge = self._child(
            ("running", input.task.activity_type),
            self.metrics.activities_running,
            input.task.activity_type,
        )
        gauge.inc()
        try:
            return await self.next.execute_activity(input)
        finally:
            gauge.dec()

    async def answer(self, input: AnswerInput) -> None:
        started = time.monotonic()
        try:
            await self.next.answer(input)
        finally:
            answered = time.monotonic()
            kind, outcome = input.task.activity_type, input.outcome
            self._child(("tasks", kind, outcome), self.metrics.tasks, kind, outcome).inc()
            self._child(
                ("duration", kind, outcome), self.metrics.task_duration, kind, outcome
            ).observe(input.duration + answered - started)
            cancel_seen = self._cancel_seen.pop(input.task, None)
            if cancel_seen is not None:
                self.metrics.cancel_latency.observe(answered - cancel_seen)

    async def swf_call(self, input: SWFCallInput) -> Mapping[str, Any]:
        operation = input.operation
        polling = operation == "PollForActivityTask"
        if polling:
            self.metrics.polls_open.inc()
        started = time.monotonic()
        try:
            reply = await self.next.swf_call(input)
        except Exception as error:
            self._finished(input, started, error_code(error) or type(error).__name__)
            if polling:
                self._polls_error.inc()
            raise
        finally:
            if polling:
                self.metrics.polls_open.dec()
        self._finished(input, started, "ok")
        self.reached_swf = True
        if polling:
            (self._polls_task if reply.get("taskToken") else self._polls_empty).inc()
        elif (
            operation == "RecordActivityTaskHeartbeat"
            and reply.get("cancelRequested")
            and input.task is not None
        ):
            self._cancel_seen.setdefault(input.task, time.monotonic())
        return reply

    def _finished(self, input: SWFCallInput, started: float, result: str) -> None:
        elapsed = time.monotonic() - started
        operation = input.operation
        metrics = self.metrics
        self._child(("call", operation, result), metrics.swf_calls, operation, result).inc()
        self._child(("seconds", operation), metrics.swf_call_seconds, operation).observe(elapsed)
        if operation != "RecordActivityTaskHeartbeat":
            return
        if result == "ok":
            self._beat_ok.inc()
        elif result in _THROTTLING:
            self._beat_throttled.inc()
        else:
            self._beat_failed.inc()
        if input.heartbeat_lateness is not None:
            metrics.heartbeat_lateness.observe(input.heartbeat_lateness)
        if self._budget_rate is not None:
            self._beats.append(time.monotonic())
