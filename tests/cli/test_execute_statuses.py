"""The exit statuses of ``heartbeat-worker execute`` that the other tests do not reach
(docs/execute.md, "Exit status"): closed from outside, interrupted, never scheduled, and a
workflow that timed out as a whole."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from decider.conftest import DOMAIN
from heartbeat_worker import Worker
from heartbeat_worker.devserver import DevServer

from .test_execute import DEADLINE, execute, target

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def execute_in_background(
    server: DevServer, *arguments: str
) -> AsyncIterator[anyio.abc.Process]:
    """``heartbeat-worker execute`` as a process the test controls; killed if left running."""
    command = [sys.executable, "-m", "heartbeat_worker._cli", "execute"]
    command += ["--endpoint-url", server.endpoint_url, *arguments]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
    async with await anyio.open_process(command, env=env) as process:
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()


async def started(server: DevServer, workflow_id: str) -> None:
    """Until the execution's activity task has started and reported progress."""
    with anyio.fail_after(DEADLINE):
        while True:
            tasks = server.snapshot().activity_tasks
            if any(t.workflow_id == workflow_id and t.heartbeats for t in tasks):
                return
            await anyio.sleep(0.02)


async def output(process: anyio.abc.Process) -> tuple[int, str, str]:
    assert process.stdout is not None
    assert process.stderr is not None
    with anyio.fail_after(DEADLINE):
        out = b"".join([chunk async for chunk in process.stdout])
        err = b"".join([chunk async for chunk in process.stderr])
        code = await process.wait()
    return code, out.decode(), err.decode()


async def test_terminated_from_outside_exits_five(
    dev_server: DevServer, worker: Worker, swf_client: Any
) -> None:
    async with execute_in_background(
        dev_server, *target("patient", "--workflow-id", "terminated")
    ) as process:
        await started(dev_server, "terminated")
        await swf_client.terminate_workflow_execution(domain=DOMAIN, workflowId="terminated")
        code, out, err = await output(process)

    assert code == 5, out + err
    assert "terminated" in out.lower()


async def test_a_first_ctrl_c_cancels_the_activity_and_waits_for_its_answer(
    dev_server: DevServer, worker: Worker
) -> None:
    arguments = target("patient", "--workflow-id", "interrupted", "--heartbeat-timeout", "1.5")
    async with execute_in_background(dev_server, *arguments) as process:
        await started(dev_server, "interrupted")
        process.send_signal(signal.SIGINT)
        code, out, err = await output(process)

    assert code == 3, out + err
    assert "requested the activity's cancellation; waiting for its answer" in err
    assert "press Ctrl-C again to terminate the workflow execution" in err
    assert 'cancel details: {"phase":"rolled back"}' in out


async def test_a_second_ctrl_c_terminates_the_execution_and_exits_130(
    dev_server: DevServer, worker: Worker, swf_client: Any
) -> None:
    # The registered 60 s heartbeat timeout: the worker hears of the cancel request only at
    # its next beat, 20 s away, so the second Ctrl-C comes first.
    async with execute_in_background(
        dev_server, *target("patient", "--workflow-id", "terminate-me")
    ) as process:
        await started(dev_server, "terminate-me")
        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(DEADLINE):
            while b"press Ctrl-C again" not in seen:
                seen += await process.stderr.receive()
        process.send_signal(signal.SIGINT)
        code, _, err = await output(process)

    assert code == 130
    assert "terminated: execution workflowId=terminate-me" in seen.decode() + err
    assert "Traceback" not in seen.decode() + err
    described = await swf_client.list_closed_workflow_executions(
        domain=DOMAIN,
        startTimeFilter={"oldestDate": 0},
        executionFilter={"workflowId": "terminate-me"},
    )
    assert [info["closeStatus"] for info in described["executionInfos"]] == ["TERMINATED"]


async def test_an_activity_that_cannot_be_scheduled_exits_one(
    dev_server: DevServer, worker: Worker
) -> None:
    code, out, err = await execute(dev_server, *target("nobody-registered-this"))

    assert code == 1, out + err
    assert "ACTIVITY_TYPE_DOES_NOT_EXIST" in out + err


async def test_a_workflow_timed_out_as_a_whole_exits_four(
    dev_server: DevServer, worker: Worker
) -> None:
    code, out, err = await execute(dev_server, *target("patient", "--execution-timeout", "1"))

    assert code == 4, out + err
