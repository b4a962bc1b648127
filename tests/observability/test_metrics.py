"""Metrics and probes over HTTP against the dev server: every counter's value after a run
with completed, failed, canceled, timed-out and shutdown tasks; /healthz while an activity
blocks the loop; /readyz during shutdown; nothing imported when nothing is configured."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest
from prometheus_client.parser import text_string_to_metric_families

from heartbeat_worker import Worker, activity
from heartbeat_worker.metrics import Metrics
from swfkit import SWFKit

from ._scenario import closed, request_cancel, schedule

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

blocking_now = threading.Event()


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def double(value: int) -> int:
    return value * 2


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def boom(message: str) -> None:
    raise RuntimeError(message)


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def waits(seconds: float) -> str:
    await anyio.sleep(seconds)
    return "woke up"


@activity(heartbeat_timeout=60, start_to_close_timeout=300)
async def blocks(seconds: float) -> str:
    blocking_now.set()
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake the health check must show
    return "done"


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    """GET over a real socket, from a thread; the status and the body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def fetch(metrics: Metrics, path: str) -> tuple[int, str]:
    return await anyio.to_thread.run_sync(get, f"http://127.0.0.1:{metrics.port}{path}")


async def wait_status(metrics: Metrics, path: str, status: int, deadline: float = 10) -> str:
    with anyio.fail_after(deadline):
        while True:
            code, body = await fetch(metrics, path)
            if code == status:
                return body
            await anyio.sleep(0.05)


async def until(condition: Callable[[], bool], deadline: float = 10) -> None:
    """Wait for ``condition``, checked every 50 ms, failing after ``deadline`` seconds."""
    with anyio.fail_after(deadline):
        while not condition():  # noqa: ASYNC110 - state polled through a public read-out
            await anyio.sleep(0.05)


def metrics_value(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample from :meth:`Metrics.render`, the text ``/metrics`` serves."""
    return value(parse(metrics.render()[0].decode()), "heartbeat_worker_" + name, **labels)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        v for (n, sample_labels), v in samples.items() if n == name and wanted <= sample_labels
    )


P = "heartbeat_worker_"


async def test_metrics_count_every_outcome_call_poll_and_heartbeat(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    metrics = Metrics(port=0)
    worker = make_worker(
        [double, boom, waits],
        metrics=metrics,
        resolve_timeouts="history",
        max_heartbeats_per_second=100,
        graceful_shutdown_timeout=0.5,
        cancel_grace_period=0.5,
    )
    async with worker:
        assert metrics.port
        execution = await schedule(
            swfkit,
            [("c1", "double", 1), ("c2", "double", 2), ("f1", "boom", "no")],
            heartbeat_timeout="1.5",
        )
        cancel = await schedule(swfkit, [("x1", "waits", 60)], heartbeat_timeout="1.5")
        late = await schedule(
            swfkit, [("t1", "waits", 60)], heartbeat_timeout="1.5", start_to_close_timeout="1"
        )
        assert await closed(swfkit, execution, 3) == {
            "c1": "ActivityTaskCompleted",
            "c2": "ActivityTaskCompleted",
            "f1": "ActivityTaskFailed",
        }
        assert await closed(swfkit, late, 1) == {"t1": "ActivityTaskTimedOut"}
        await worker.wait_handled(4)  # the timed-out task is left once the worker sees it
        await request_cancel(swfkit, cancel, "x1")
        assert await closed(swfkit, cancel, 1) == {"x1": "ActivityTaskCanceled"}
        await worker.wait_handled(5)
        status, text = await fetch(metrics, "/metrics")
        assert status == 200
        samples = parse(text)

        # Tasks, by type and outcome; their durations; nothing running any more.
        expected = {
            ("double", "completed"): 2,
            ("boom", "failed"): 1,
            ("waits", "canceled"): 1,
            ("waits", "left"): 1,
        }
        assert total(samples, P + "tasks_total") == 5
        for (kind, outcome), count in expected.items():
            assert value(samples, P + "tasks_total", activity_type=kind, outcome=outcome) == count
            assert (
                value(
                    samples,
                    P + "task_duration_seconds_count",
                    activity_type=kind,
                    outcome=outcome,
                )
                == count
            )
        for kind in ("double", "boom", "waits"):
            assert value(samples, P + "activities_running", activity_type=kind) == 0

        # Polls: five brought a task, none failed; every poll is an SWF call.
        assert value(samples, P + "polls_total", result="task") == 5
        assert value(samples, P + "polls_total", result="error") == 0
        polls = total(samples, P + "polls_total")
        assert (
            value(samples, P + "swf_calls_total", operation="PollForActivityTask", result="ok")
            == polls
        )
        assert 0 <= value(samples, P + "polls_open") <= worker.pollers

        # Answers: one call each; the left task sent none.
        for operation, count in (
            ("RespondActivityTaskCompleted", 2),
            ("RespondActivityTaskFailed", 1),
            ("RespondActivityTaskCanceled", 1),
        ):
            assert total(samples, P + "swf_calls_total", operation=operation) == count
            assert value(samples, P + "swf_calls_total", operation=operation, result="ok") == count
        # Every attempt of every operation is timed.
        operations = {
            dict(labels)["operation"] for name, labels in samples if name == P + "swf_calls_total"
        }
        assert "RegisterActivityType" in operations
        for operation in operations:
            assert value(samples, P + "swf_call_seconds_count", operation=operation) == total(
                samples, P + "swf_calls_total", operation=operation
            )

        # Heartbeats: the canceled and the timed-out task beat (every 0.5 s); each attempt is
        # counted by result, and each first attempt's lateness is observed.
        beats_ok = value(samples, P + "heartbeats_total", result="ok")
        beats_failed = value(samples, P + "heartbeats_total", result="failed")
        assert beats_ok >= 2
        assert value(samples, P + "heartbeats_total", result="throttled") == 0
        assert beats_ok == value(
            samples, P + "swf_calls_total", operation="RecordActivityTaskHeartbeat", result="ok"
        )
        assert beats_ok + beats_failed == total(
            samples, P + "swf_calls_total", operation="RecordActivityTaskHeartbeat"
        )
        assert value(samples, P + "heartbeat_lateness_seconds_count") == beats_ok + beats_failed
        assert value(samples, P + "heartbeat_lateness_seconds_bucket", le="+Inf") == (
            beats_ok + beats_failed
        )

        # One cancellation, timed from the reply that carried it to the answer.
        assert value(samples, P + "cancel_latency_seconds_count") == 1
        assert 0 < value(samples, P + "cancel_latency_seconds_sum") < 5

        # The watchdog's ticks, and the budget in use.
        assert value(samples, P + "event_loop_lag_seconds_count") >= 1
        assert 0 <= value(samples, P + "heartbeat_budget_utilization") <= 1
        assert value(samples, P + "heartbeat_admission_open") == 1  # a few tasks: room
        assert 0 <= value(samples, P + "heartbeats_needed_per_second") <= 100  # the budget

        # A task running at shutdown is answered ``worker shutdown``.
        shut = await schedule(swfkit, [("s1", "waits", 60)], heartbeat_timeout="1.5")
        await until(
            lambda: metrics_value(metrics, "activities_running", activity_type="waits") == 1
        )
    assert await closed(swfkit, shut, 1) == {"s1": "ActivityTaskFailed"}
    after = parse(metrics.render()[0].decode())
    assert value(after, P + "tasks_total", activity_type="waits", outcome="shutdown") == 1
    assert total(after, P + "tasks_total") == 6


async def test_healthz_turns_503_while_an_activity_blocks_the_loop(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    blocking_now.clear()
    metrics = Metrics(port=0)
    async with make_worker([blocks], metrics=metrics, resolve_timeouts="history"):
        assert await fetch(metrics, "/healthz") == (200, "ok\n")

        def probe_during_block() -> tuple[int, str]:
            if not blocking_now.wait(10):
                raise TimeoutError("the activity did not start blocking")
            # Sent while the loop is blocked; served once it is free.
            return get(f"http://127.0.0.1:{metrics.port}/healthz")

        async with anyio.create_task_group() as group:
            results: list[tuple[int, str]] = []

            async def probe() -> None:
                results.append(await anyio.to_thread.run_sync(probe_during_block))

            group.start_soon(probe)
            # Heartbeat timeout 3 s: beats every second, which a 1.5 s block exceeds (the dev
            # server shares the loop: the task survives because 1.5 s is within the timeout).
            execution = await schedule(swfkit, [("b1", "blocks", 1.5)], heartbeat_timeout="3")
        ((status, body),) = results
        assert status == 503
        assert body.startswith("event loop blocked for ")
        assert await closed(swfkit, execution, 1) == {"b1": "ActivityTaskCompleted"}
        await wait_status(metrics, "/healthz", 200)


async def test_readyz_after_a_poll_reached_swf_and_503_during_shutdown(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    metrics = Metrics(port=0)
    worker = make_worker([waits], metrics=metrics, graceful_shutdown_timeout=30)
    async with worker:
        # The dev server answers an empty poll after 1 s: then SWF has been reached.
        assert await wait_status(metrics, "/readyz", 200) == "ready\n"
        execution = await schedule(swfkit, [("w1", "waits", 60)])
        await until(lambda: bool(worker.executions))
        worker.request_shutdown()
        # The activity runs on through the graceful period: the worker is still there.
        assert await fetch(metrics, "/readyz") == (503, "shutting down\n")
        assert await fetch(metrics, "/healthz") == (503, "stopping\n")
        assert worker.executions
        worker.request_shutdown(hurry=True)
    assert await closed(swfkit, execution, 1) == {"w1": "ActivityTaskFailed"}


async def test_other_paths_and_methods_are_refused(make_worker: MakeWorker) -> None:
    metrics = Metrics(port=0)
    async with make_worker([double], metrics=metrics):
        assert (await fetch(metrics, "/nothing"))[0] == 404

        def post() -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{metrics.port}/metrics", data=b"", method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        assert await anyio.to_thread.run_sync(post) == 405


def test_a_worker_without_metrics_or_tracing_imports_neither() -> None:
    code = (
        "import heartbeat_worker\n"
        "heartbeat_worker.Worker('d', 't', [], endpoint_url='http://127.0.0.1:9')\n"
    )
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "heartbeat_worker" in imported
    assert not {name for name in imported if name.startswith("prometheus_client")}
    assert not {name for name in imported if name.startswith("opentelemetry")}
