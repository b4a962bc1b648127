"""``heartbeat-worker dev-server --state-file``: the state survives SIGKILL and a restart,
timers that fell due while the server was down fire at start-up, and a file the server cannot
use is refused with one line."""

from __future__ import annotations

import re
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from heartbeat_worker import Worker, activity, heartbeat
from heartbeat_worker.devserver import DevServer, StateFileError
from swfkit import (
    ACTIVITY_TASK_LIST,
    DOMAIN,
    TEST_POLL_TIMEOUT,
    SWFKit,
    aio_client,
    attributes,
    complete_workflow_decision,
    event_types,
)

pytestmark = pytest.mark.anyio

DEADLINE = 20.0


class ServerProcess:
    def __init__(self, process: anyio.abc.Process, url: str) -> None:
        self.process = process
        self.url = url


@asynccontextmanager
async def dev_server_process(state_file: Path, port: int = 0) -> AsyncIterator[ServerProcess]:
    """``heartbeat-worker dev-server --state-file`` in a process of its own (on a free port
    unless ``port`` is given)."""
    command = [
        sys.executable,
        "-m",
        "heartbeat_worker._cli",
        "dev-server",
        "--port",
        str(port),
        "--poll-timeout",
        "1",
        "--state-file",
        str(state_file),
    ]
    process = await anyio.open_process(command, stderr=None)
    try:
        assert process.stdout is not None
        line = b""
        with anyio.fail_after(DEADLINE):
            while b"\n" not in line:
                line += await process.stdout.receive(1)
        found = re.search(r"http://[\w.:]+", line.decode())
        assert found is not None, line
        yield ServerProcess(process, found.group(0))
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.move_on_after(10):
            await process.wait()


async def _kill(server: ServerProcess) -> None:
    server.process.kill()  # SIGKILL: nothing of the server runs after this
    with anyio.fail_after(DEADLINE):
        await server.process.wait()


async def test_register_start_schedule_sigkill_restart_and_the_activity_completes(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    async with dev_server_process(state) as first, aio_client(first.url) as client:
        kit = SWFKit(client)
        await kit.setup()
        execution = await kit.start(input="hello")
        decision = await kit.poll_decision()
        await kit.decide(
            [
                {
                    "decisionType": "ScheduleActivityTask",
                    "scheduleActivityTaskDecisionAttributes": {
                        "activityType": {"name": "hw-activity", "version": "1"},
                        "activityId": activity_id,
                        "heartbeatTimeout": "60",
                        "startToCloseTimeout": "60",
                    },
                }
                for activity_id in ("started-before", "scheduled-before")
            ],
            decision,
        )
        task = await kit.poll_activity()
        assert task["activityId"] == "started-before"
        await client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="half")
        before = await kit.history(execution)
        await _kill(first)
    async with dev_server_process(state) as second, aio_client(second.url) as client:
        kit = SWFKit(client)
        # The task started before the crash: its token still works.
        beat = await client.record_activity_task_heartbeat(taskToken=task["taskToken"])
        assert beat["cancelRequested"] is False
        await client.respond_activity_task_completed(taskToken=task["taskToken"], result="one")
        # The task scheduled before the crash is handed to a poll after it.
        other = await kit.poll_activity(identity="after-restart")
        assert other["activityId"] == "scheduled-before"
        await client.respond_activity_task_completed(taskToken=other["taskToken"], result="two")
        # The decider carries on, and the execution completes.
        kit.execution = execution
        decision = await kit.poll_decision()
        await kit.decide([complete_workflow_decision("done")], decision)
        after = await kit.history(execution)
        # The history is whole: every event from before, unchanged, then the new ones.
        assert after[: len(before)] == before
        assert event_types(after)[len(before) :] == [
            "ActivityTaskCompleted",
            "DecisionTaskScheduled",
            "ActivityTaskStarted",
            "ActivityTaskCompleted",
            "DecisionTaskStarted",
            "DecisionTaskCompleted",
            "WorkflowExecutionCompleted",
        ]
        assert [event["eventId"] for event in after] == list(range(1, len(after) + 1))
        described = await client.describe_domain(name=DOMAIN)
        assert described["domainInfo"]["status"] == "REGISTERED"
        closed = await client.count_closed_workflow_executions(
            domain=DOMAIN, startTimeFilter={"oldestDate": 0}
        )
        assert closed["count"] == 1


async def test_timers_and_heartbeat_timeouts_that_passed_while_down_fire_at_start_up(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    async with dev_server_process(state) as first, aio_client(first.url) as client:
        kit = SWFKit(client)
        await kit.setup()
        execution = await kit.start()
        decision = await kit.poll_decision()
        await kit.decide(
            [
                {
                    "decisionType": "StartTimer",
                    "startTimerDecisionAttributes": {"timerId": "t1", "startToFireTimeout": "1"},
                },
                {
                    "decisionType": "ScheduleActivityTask",
                    "scheduleActivityTaskDecisionAttributes": {
                        "activityType": {"name": "hw-activity", "version": "1"},
                        "activityId": "beating",
                        "heartbeatTimeout": "1",
                    },
                },
            ],
            decision,
        )
        task = await kit.poll_activity()
        await client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="last")
        # Heartbeats reach the file within 50 ms, or with the next change that writes history.
        await client.signal_workflow_execution(domain=DOMAIN, signalName="flush", **execution)
        await _kill(first)
    await anyio.sleep(1.5)  # both deadlines pass while no server runs
    async with dev_server_process(state) as second, aio_client(second.url) as client:
        kit = SWFKit(client)
        with anyio.fail_after(DEADLINE):
            while True:
                kinds = event_types(await kit.history(execution))
                if "TimerFired" in kinds and "ActivityTaskTimedOut" in kinds:
                    break
                await anyio.sleep(0.05)
        history = await kit.history(execution)
        (timed_out,) = [e for e in history if e["eventType"] == "ActivityTaskTimedOut"]
        assert attributes(timed_out)["timeoutType"] == "HEARTBEAT"
        assert attributes(timed_out)["details"] == "last"
        with pytest.raises(ClientError) as error:
            await client.record_activity_task_heartbeat(taskToken=task["taskToken"])
        assert error.value.response["Error"]["Code"] == "UnknownResourceFault"


async def _refused(state: Path) -> tuple[int, str]:
    command = [
        sys.executable,
        "-m",
        "heartbeat_worker._cli",
        "dev-server",
        "--port",
        "0",
        "--state-file",
        str(state),
    ]
    with anyio.fail_after(DEADLINE):
        done = await anyio.run_process(command, check=False)
    return done.returncode, done.stderr.decode()


def _other_format(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'format'")
        db.execute("UPDATE meta SET value = '9.9' WHERE key = 'writer'")
    db.close()


def _damaged(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(4096, min(len(data), 12288)):
        data[offset] = 0xA5
    path.write_bytes(bytes(data))


def _bad_record(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE domains SET data = '{\"name\": 1}'")
    db.close()


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (_other_format, "written by heartbeat-worker 9.9 in state format 999"),
        (_damaged, "damaged"),
        (_bad_record, "damaged"),
        (lambda path: path.write_bytes(b"not a database at all" * 100), "damaged"),
    ],
)
async def test_a_file_of_another_format_or_damaged_is_refused_in_one_line(
    tmp_path: Path, spoil: Any, expected: str
) -> None:
    state = tmp_path / "state.sqlite"
    async with DevServer(state_file=state) as server, aio_client(server.endpoint_url) as client:
        kit = SWFKit(client)
        await kit.setup()
        for index in range(30):
            await kit.start(f"wf-{index}", input="x" * 500)
    spoil(state)
    code, err = await _refused(state)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(state) in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in err


async def test_a_file_in_use_by_another_server_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with DevServer(state_file=state) as server, aio_client(server.endpoint_url) as client:
        await SWFKit(client).register_domain()
        with pytest.raises(StateFileError, match="in use by another dev server"):
            await DevServer(state_file=state).start()


async def test_in_process_restart_keeps_heartbeat_details_and_open_polls_carry_on(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    async with DevServer(state_file=state) as server, aio_client(server.endpoint_url) as client:
        kit = SWFKit(client)
        await kit.setup()
        task = await kit.start_activity("a1", heartbeat_timeout="60")
        await client.record_activity_task_heartbeat(taskToken=task["taskToken"], details="d1")
    async with DevServer(state_file=state) as server:
        view = server.snapshot().task("a1")
        assert view is not None
        assert (view.state, view.details, view.heartbeats) == ("started", "d1", 1)
        assert view.heartbeat_left is not None
        assert 50 < view.heartbeat_left <= 60
        assert [domain.name for domain in server.snapshot().domains] == [DOMAIN]
        assert view.task_list == ACTIVITY_TASK_LIST


class Bridge:
    """What the test and the activity running across the restart tell each other."""

    entered: anyio.Event
    release: anyio.Event


BRIDGE = Bridge()


@activity(name="bridge", heartbeat_timeout=60, start_to_close_timeout=300)
async def bridge() -> str:
    heartbeat("before the restart")
    BRIDGE.entered.set()
    await BRIDGE.release.wait()
    heartbeat("after the restart")
    return "crossed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_worker_running_a_task_through_a_server_restart_carries_on(
    tmp_path: Path,
) -> None:
    BRIDGE.entered, BRIDGE.release = anyio.Event(), anyio.Event()
    state, port = tmp_path / "state.sqlite", _free_port()
    session = get_session()
    session.set_credentials("testing", "testing")
    async with dev_server_process(state, port) as first, aio_client(first.url) as client:
        kit = SWFKit(client)
        await kit.setup()
        worker = Worker(
            DOMAIN,
            "bridge-list",
            [bridge],
            endpoint_url=first.url,
            region="us-east-1",
            session=session,
            register_types=True,
            resolve_timeouts="history",
            poll_read_timeout=TEST_POLL_TIMEOUT + 5,
            graceful_shutdown_timeout=2.0,
            cancel_grace_period=1.0,
        )
        async with worker:
            execution = await kit.start()
            await kit.schedule_activity(
                "crossing",
                activity_type={"name": "bridge", "version": "1"},
                task_list="bridge-list",
                heartbeat_timeout="5",
                start_to_close_timeout="60",
            )
            with anyio.fail_after(DEADLINE):
                await BRIDGE.entered.wait()
            await _kill(first)
            async with (
                dev_server_process(state, port) as second,
                aio_client(second.url) as after,
            ):
                assert second.url == first.url
                BRIDGE.release.set()
                kit = SWFKit(after)
                event = await kit.wait_for_event(execution, "ActivityTaskCompleted")
                assert attributes(event)["result"] == '"crossed"'
                kinds = event_types(await kit.history(execution))
                assert kinds.count("ActivityTaskStarted") == 1
                assert "ActivityTaskTimedOut" not in kinds
