"""A poll whose connection has closed is never handed a task (unless ``keep_abandoned_polls``),
so a worker restarted against the dev server gets its work at once."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import anyio.abc
import pytest

from heartbeat_worker.devserver import DevServer
from swfkit import ACTIVITY_TASK_LIST, DOMAIN, SWFKit, aio_client, attributes, event_types

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parents[1]
DEADLINE = 30.0
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "PYTHONPATH": str(TESTS),
}


async def _until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds, reading it every 20 ms; fails after the deadline."""
    with anyio.fail_after(DEADLINE):
        while True:
            if condition():
                return
            await anyio.sleep(0.02)


def _polls(server: DevServer, task_list: str, identity: str) -> int:
    return sum(
        1
        for poll in server.snapshot().polls
        if poll.task_list == task_list and poll.identity == identity
    )


async def _wait_for_polls(server: DevServer, task_list: str, count: int, identity: str) -> None:
    await _until(lambda: _polls(server, task_list, identity) >= count)


async def _abandon_a_poll(server: DevServer) -> None:
    """Open an activity poll over HTTP and close its connection while it waits."""
    async with aiohttp.ClientSession() as session:

        async def poll() -> None:
            headers = {
                "X-Amz-Target": "SimpleWorkflowService.PollForActivityTask",
                "Content-Type": "application/x-amz-json-1.0",
            }
            body = {"domain": DOMAIN, "taskList": {"name": ACTIVITY_TASK_LIST}, "identity": "gone"}
            await session.post(server.endpoint_url, json=body, headers=headers)

        async with anyio.create_task_group() as group:
            group.start_soon(poll)
            await _wait_for_polls(server, ACTIVITY_TASK_LIST, 1, "gone")
            group.cancel_scope.cancel()
    # The server learns of the closed connection from its event loop.
    await _until(lambda: _polls(server, ACTIVITY_TASK_LIST, "gone") == 0)


async def test_a_closed_poll_gets_no_task() -> None:
    async with (
        DevServer(poll_timeout=60) as server,
        aio_client(server.endpoint_url) as client,
    ):
        kit = SWFKit(client)
        await kit.setup()
        await _abandon_a_poll(server)
        execution = await kit.start()
        await kit.schedule_activity("a1")
        task = await kit.poll_activity(identity="alive", deadline=5)
        assert task["activityId"] == "a1"
        history = await kit.history(execution)
        (started,) = [event for event in history if event["eventType"] == "ActivityTaskStarted"]
        assert attributes(started)["identity"] == "alive"


async def test_keep_abandoned_polls_hands_the_task_to_the_closed_poll_as_swf_does() -> None:
    async with (
        DevServer(poll_timeout=60, keep_abandoned_polls=True) as server,
        aio_client(server.endpoint_url) as client,
    ):
        kit = SWFKit(client)
        await kit.setup()
        async with aiohttp.ClientSession() as session:

            async def poll() -> None:
                headers = {
                    "X-Amz-Target": "SimpleWorkflowService.PollForActivityTask",
                    "Content-Type": "application/x-amz-json-1.0",
                }
                body = {
                    "domain": DOMAIN,
                    "taskList": {"name": ACTIVITY_TASK_LIST},
                    "identity": "gone",
                }
                await session.post(server.endpoint_url, json=body, headers=headers)

            async with anyio.create_task_group() as group:
                group.start_soon(poll)
                await _wait_for_polls(server, ACTIVITY_TASK_LIST, 1, "gone")
                group.cancel_scope.cancel()
        execution = await kit.start()
        await kit.schedule_activity("a1")

        def started() -> bool:
            view = server.snapshot().task("a1")
            return view is not None and view.state == "started"

        await _until(started)
        history = await kit.history(execution)
        (started,) = [event for event in history if event["eventType"] == "ActivityTaskStarted"]
        assert attributes(started)["identity"] == "gone"


@asynccontextmanager
async def _worker(
    server: DevServer, task_list: str, identity: str
) -> AsyncIterator[anyio.abc.Process]:
    command = [
        sys.executable,
        "-m",
        "heartbeat_worker._cli",
        "run",
        "decider.activities",
        "--domain",
        "hw-decider",
        "--task-list",
        task_list,
        "--endpoint-url",
        server.endpoint_url,
        "--register",
        "--max-concurrency",
        "2",
        "--pollers",
        "2",
        "--identity",
        identity,
    ]
    process = await anyio.open_process(command, env={**os.environ, **ENV}, stdout=None, stderr=None)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.move_on_after(10):
            await process.wait()


async def test_kill_9_a_worker_and_the_next_execute_completes_on_its_first_attempt() -> None:
    task_list = "restarted"
    async with DevServer(poll_timeout=60) as server:
        async with _worker(server, task_list, "first") as first:
            await _wait_for_polls(server, task_list, 2, "first")
            first.kill()
            with anyio.fail_after(DEADLINE):
                await first.wait()
        async with _worker(server, task_list, "second"):
            command = [
                sys.executable,
                "-m",
                "heartbeat_worker._cli",
                "execute",
                "double",
                "--input",
                "21",
                "--domain",
                "hw-decider",
                "--task-list",
                task_list,
                "--start-to-close-timeout",
                "10",
                "--endpoint-url",
                server.endpoint_url,
            ]
            with anyio.fail_after(DEADLINE):
                done = await anyio.run_process(command, env={**os.environ, **ENV}, check=False)
            out = done.stdout.decode()
            assert done.returncode == 0, out + done.stderr.decode()
            assert out.startswith("outcome: completed after 1 attempt"), out
            assert "result: 42" in out
        async with aio_client(server.endpoint_url) as client:
            closed = await client.list_closed_workflow_executions(
                domain="hw-decider", startTimeFilter={"oldestDate": 0}
            )
            (info,) = closed["executionInfos"]
            history = await client.get_workflow_execution_history(
                domain="hw-decider", execution=info["execution"]
            )
            kinds = event_types(history["events"])
            assert kinds.count("ActivityTaskStarted") == 1
            started = history["events"][kinds.index("ActivityTaskStarted")]
            assert attributes(started)["identity"] == "second"
