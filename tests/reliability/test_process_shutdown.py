"""``heartbeat-worker run`` with process activities leaves no child process behind: after
SIGTERM, after SIGINT twice, and after a kill -9 of the worker itself."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import pytest

from heartbeat_worker.devserver import DevServer

from .decide import Decider, attributes
from .processes import WorkerProcess, worker_process
from .secrecy import LogCapture

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

TARGET = "tests.worker.process_activities"
OPTIONS = [
    "--register",
    "--max-processes",
    "2",
    "--graceful-shutdown-timeout",
    "1",
    "--cancel-grace-period",
    "0.5",
]


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs. A zombie has ended: an orphaned child of the worker (such
    as multiprocessing's resource tracker) waits as one until init gets round to it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def wait_gone(pids: set[int], deadline: float) -> None:
    try:
        with anyio.fail_after(deadline):
            while any(running(pid) for pid in pids):  # noqa: ASYNC110 (no event for that)
                await anyio.sleep(0.02)
    except TimeoutError:
        left = {pid: _describe(pid) for pid in pids if running(pid)}
        raise AssertionError(f"still running after {deadline} s: {left}") from None


def _describe(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return "(gone)"
    return f"{state} {command}"


async def running_child(server: DevServer, worker: WorkerProcess) -> int:
    """The child running task ``a0``, from its heartbeat details at the dev server."""
    with anyio.fail_after(20):
        while True:
            task = server.snapshot().task("a0")
            if task is not None and task.details is not None:
                pid: int = json.loads(task.details)["pid"]
                assert pid in children(worker.process.pid)
                return pid
            await anyio.sleep(0.02)


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT, signal.SIGINT]])
async def test_signals_end_the_worker_and_every_child_of_its_pool(
    server: DevServer, decider: Decider, logs: LogCapture, signals: list[signal.Signals]
) -> None:
    async with worker_process(server, TARGET, "procs", *OPTIONS, logs=logs) as worker:
        execution = await decider.schedule("ignoring", [None], task_list="procs")
        busy = await running_child(server, worker)
        pool = children(worker.process.pid)
        # The two children, busy and idle, and multiprocessing's resource tracker: every one
        # of them must end.
        assert len(pool) >= 3
        for signum in signals:
            worker.signal(signum)
        code = await worker.wait(15)
    assert code == 0
    assert busy in pool
    await wait_gone(pool, 1)
    found = await decider.wait_closed(execution, 1)
    assert attributes(found.closing("a0"))["reason"] == "worker shutdown"


async def test_kill_9_of_the_worker_takes_its_children_with_it(
    server: DevServer, decider: Decider, logs: LogCapture
) -> None:
    async with worker_process(server, TARGET, "procs-kill", *OPTIONS, logs=logs) as worker:
        execution = await decider.schedule("ignoring", [None], task_list="procs-kill")
        await running_child(server, worker)
        pool = children(worker.process.pid)
        assert len(pool) >= 3
        worker.kill()
        await worker.wait(10)
        await wait_gone(pool, 5)
    await decider.terminate(execution)
