"""Process activities (``executor="process"``) against the dev server over HTTP: heartbeat
details from the child reach SWF, cancellation reaches a cooperative child and ends an
ignoring one, a crashing child fails its task and is replaced, failures keep their
traceback, and the pool's children end with the worker."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer
from swfkit import SWFKit, attributes

from . import activities, process_activities
from .test_worker_devserver import closing_event, request_cancel, schedule

pytestmark = pytest.mark.anyio

MakeWorker = Callable[..., Worker]


def alive(pid: int) -> bool:
    """Whether ``pid`` names a process (a zombie counts: its PID is not free yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_gone(pid: int, deadline: float = 10) -> None:
    with anyio.fail_after(deadline):
        while alive(pid):  # noqa: ASYNC110 (nothing signals another process's end)
            await anyio.sleep(0.02)


async def reported(
    server: DevServer, key: str = "pid", value: Any = None, deadline: float = 20
) -> dict[str, Any]:
    """The heartbeat details task ``a1`` last sent to SWF, once they contain ``key`` (with
    ``value``, if given); the children boot first, which takes a while on a busy machine."""
    with anyio.fail_after(deadline):
        while True:
            task = server.snapshot().task("a1")
            if task is not None and task.details is not None:
                details: dict[str, Any] = json.loads(task.details)
                if key in details and value in (None, details[key]):
                    return details
            await anyio.sleep(0.02)


async def result_of(kit: SWFKit, execution: dict[str, Any]) -> Any:
    closed = await closing_event(kit, execution, deadline=30)
    assert closed["eventType"] == "ActivityTaskCompleted", attributes(closed)
    return json.loads(attributes(closed)["result"])


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
async def test_heartbeat_details_from_the_child_reach_swf(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker, start_method: str
) -> None:
    worker = make_worker(
        [process_activities.beating],
        resolve_timeouts="history",
        max_processes=1,
        process_start_method=start_method,
    )
    async with worker:
        children = worker.process_ids
        execution = await schedule(swfkit, "beating", [60, 0.05], heartbeat_timeout="2")
        details = await reported(dev_server, key="step")
        result = await result_of(swfkit, execution)
    assert children == [details["pid"]]
    assert details["pid"] != os.getpid()
    assert result["pid"] == details["pid"]
    assert result["activity_id"] == "a1"
    assert result["heartbeat_timeout"] == 2.0
    assert worker.outcomes == {"completed": 1}
    assert not alive(details["pid"])  # the pool's children ended with the worker


async def test_cancel_reaches_a_cooperative_child_which_then_serves_on(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker
) -> None:
    worker = make_worker(
        [process_activities.cooperative, process_activities.where],
        resolve_timeouts="history",
        max_processes=1,
    )
    async with worker:
        execution = await schedule(swfkit, "cooperative", heartbeat_timeout="2")
        pid = (await reported(dev_server))["pid"]
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
        assert closed["eventType"] == "ActivityTaskCanceled"
        assert json.loads(attributes(closed)["details"]) == {
            "pid": pid,
            "cleaned_up": True,
            "asked": True,
        }
        assert worker.process_ids == [pid]  # not terminated: it stopped by itself
        following = await schedule(swfkit, "where", activity_id="a1")
        assert await result_of(swfkit, following) == pid


async def test_the_latest_of_many_rapid_heartbeats_reaches_swf(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker
) -> None:
    """A child sends its details at most every 50 ms; the last ones still arrive, even
    though the activity makes no call after them."""
    worker = make_worker([process_activities.rapid], resolve_timeouts="history", max_processes=1)
    async with worker:
        execution = await schedule(swfkit, "rapid", 100_000, heartbeat_timeout="2")
        await reported(dev_server, key="call", value=99_999, deadline=30)
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskCanceled"
    assert json.loads(attributes(closed)["details"])["call"] == 99_999


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["sigterm", "sigkill"])
async def test_a_child_ignoring_cancel_is_ended_after_the_grace_period_and_replaced(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker, ignore_sigterm: bool
) -> None:
    worker = make_worker(
        [process_activities.ignoring, process_activities.where],
        resolve_timeouts="history",
        max_processes=1,
        cancel_grace_period=0.5,
    )
    async with worker:
        execution = await schedule(swfkit, "ignoring", ignore_sigterm, heartbeat_timeout="2")
        pid = (await reported(dev_server))["pid"]
        await request_cancel(swfkit, execution)
        closed = await closing_event(swfkit, execution)
        assert closed["eventType"] == "ActivityTaskCanceled"
        assert json.loads(attributes(closed)["details"]) == {"pid": pid, "phase": "ignoring"}
        await wait_gone(pid)
        following = await schedule(swfkit, "where", activity_id="a1")
        replacement = await result_of(swfkit, following)
    assert replacement != pid
    assert worker.outcomes == {"canceled": 1, "completed": 1}


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("segfault", "was killed by SIGSEGV"),
        ("exit", "exited with code 3"),
        ("kill", "was killed by SIGKILL"),
    ],
)
async def test_a_crashing_child_fails_its_task_with_the_cause_and_is_replaced(
    swfkit: SWFKit, make_worker: MakeWorker, how: str, reason: str
) -> None:
    worker = make_worker(
        [process_activities.crashing, process_activities.where],
        resolve_timeouts="history",
        max_processes=1,
    )
    async with worker:
        [crashed_pid] = worker.process_ids
        execution = await schedule(swfkit, "crashing", how)
        closed = await closing_event(swfkit, execution)
        assert closed["eventType"] == "ActivityTaskFailed"
        assert attributes(closed)["reason"] == f"activity process {crashed_pid} {reason}" + (
            " (from outside, for example by the out-of-memory killer)" if how == "kill" else ""
        )
        following = await schedule(swfkit, "where", activity_id="a1")
        replacement = await result_of(swfkit, following)
    assert replacement != crashed_pid
    assert worker.outcomes == {"failed": 1, "completed": 1}


async def test_an_exception_crosses_back_with_type_message_and_traceback(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([process_activities.failing], max_processes=1):
        execution = await schedule(swfkit, "failing", "no such table: orders")
        closed = await closing_event(swfkit, execution)
    fields = attributes(closed)
    assert closed["eventType"] == "ActivityTaskFailed"
    assert fields["reason"] == "ValueError: no such table: orders"
    assert fields["details"].startswith("Traceback (most recent call last):\n")
    assert "process_activities.py" in fields["details"]
    assert "in failing\n    raise ValueError(message)" in fields["details"]
    assert fields["details"].endswith("ValueError: no such table: orders")


async def test_shutdown_stops_a_running_child_and_answers_worker_shutdown(
    swfkit: SWFKit, dev_server: DevServer, make_worker: MakeWorker
) -> None:
    worker = make_worker(
        [process_activities.ignoring],
        max_processes=2,
        graceful_shutdown_timeout=0.5,
        cancel_grace_period=0.5,
    )
    async with worker:
        execution = await schedule(swfkit, "ignoring")
        pid = (await reported(dev_server))["pid"]
        children = worker.process_ids
    closed = await closing_event(swfkit, execution)
    assert closed["eventType"] == "ActivityTaskFailed"
    assert attributes(closed)["reason"] == "worker shutdown"
    assert pid in children
    assert len(children) == 2
    assert not [child for child in children if alive(child)]


async def test_a_worker_without_process_activities_starts_no_process(
    swfkit: SWFKit, make_worker: MakeWorker
) -> None:
    async with make_worker([activities.sleeper]) as worker:
        execution = await schedule(swfkit, "sleeper", 0.01)
        await closing_event(swfkit, execution)
        assert worker.process_ids == []
    # And nothing of the process executor is even imported.
    probe = await anyio.run_process(
        [
            sys.executable,
            "-c",
            "import sys, heartbeat_worker\n"
            "from heartbeat_worker import Worker, activity\n"
            "@activity\n"
            "def job() -> None: ...\n"
            "Worker('d', 't', [job])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'multiprocessing'\n"
            "    or m.startswith('heartbeat_worker._process')))",
        ]
    )
    assert probe.stdout.decode().strip() == "[]"
