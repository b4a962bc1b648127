"""``heartbeat-worker run`` when a task cannot be answered before the hard deadline: the task
is logged and counted as left to SWF's timeout, and the exit status says so."""

from __future__ import annotations

import json
import signal

import pytest

from heartbeat_worker.devserver import DevServer

from .decide import Decider
from .processes import worker_process
from .secrecy import LogCapture

pytestmark = pytest.mark.anyio

RESPONDS = [
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondActivityTaskCanceled",
]


async def test_a_task_left_at_the_hard_deadline_makes_run_exit_non_zero(
    server: DevServer, decider: Decider, logs: LogCapture
) -> None:
    options = ["--graceful-shutdown-timeout", "0.2", "--cancel-grace-period", "0.5"]
    async with worker_process(
        server, "tests.reliability.activities", "unanswerable", *options, logs=logs
    ) as worker:
        running = await decider.schedule("long_sleeper", [60], task_list="unanswerable")
        await decider.wait_started(running, 1)
        # Every answer fails from now on (a transient error: the worker keeps retrying).
        server.faults.add("error", operation=RESPONDS, probability=1.0)
        worker.signal(signal.SIGTERM)
        code = await worker.wait(10)
        stderr = worker.stderr
    server.faults.clear()
    assert code == 1
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    left = [line for line in lines if line["event"] == "task left to SWF's timeout"]
    assert len(left) == 1
    assert left[0]["activity_id"] == "a0"
    stopped = next(line for line in lines if line["event"] == "worker stopped")
    assert stopped["tasks_left"] == 1
    await decider.terminate(running)
